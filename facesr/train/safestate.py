"""Nested training state (optimizer, scheduler, GradScaler, RNG) as safetensors + JSON: nothing is unpickled.

A state is a tree of dicts, lists, tuples, ``collections.Counter``, numbers, strings, None, torch tensors
and numpy arrays (what ``Optimizer.state_dict()``, the schedulers, ``GradScaler`` and the RNG getters
return). :func:`encode` splits it into ``tensors`` (name → tensor, written with safetensors) and a JSON
``skeleton`` in which every non-JSON node is a one-key tagged object:

==================  ===============================================================
``{"$t": "7"}``      the tensor ``tensors["7"]``
``{"$np": "8"}``     a numpy array, stored as the tensor ``tensors["8"]``
``{"$tuple": [..]}`` a tuple
``{"$int": [[k, v], ..]}``  a dict with integer keys (optimizer ``state``)
``{"$counter": [[k, n], ..]}``  a ``Counter`` (MultiStepLR milestones)
``{"$f": "nan"}``    a non-finite float (``nan``, ``inf``, ``-inf``), kept strict JSON
==================  ===============================================================

:func:`decode` accepts exactly these tags (the allow-list) and plain JSON; anything else — another tag,
a tensor name that is not in the file, a dict key starting with ``$`` — is a :class:`CheckpointError`.
Reading uses ``safetensors.torch.load_file`` and ``json.loads`` only, so a crafted file can be refused
but never executed.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facesr.errors import CheckpointError

__all__ = ["decode", "encode", "load", "save"]

_TAGS = ("$t", "$np", "$tuple", "$int", "$counter", "$f")


def encode(obj: Any) -> tuple[dict[str, torch.Tensor], Any]:
    """``(tensors, skeleton)`` for a state tree (see the module docstring); tensors are CPU copies."""
    tensors: dict[str, torch.Tensor] = {}

    def put(t: torch.Tensor) -> str:
        key = str(len(tensors))
        tensors[key] = t.detach().to("cpu").contiguous().clone()
        return key

    def walk(x: Any) -> Any:
        if isinstance(x, torch.Tensor):
            return {"$t": put(x)}
        if isinstance(x, np.ndarray):
            return {"$np": put(torch.from_numpy(np.ascontiguousarray(x)))}
        if isinstance(x, bool) or x is None or isinstance(x, str):
            return x
        if isinstance(x, (int, np.integer)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            x = float(x)
            return x if math.isfinite(x) else {"$f": repr(x)}
        if isinstance(x, Counter):
            return {"$counter": [[walk(k), int(n)] for k, n in x.items()]}
        if isinstance(x, dict):
            if all(isinstance(k, str) for k in x):
                bad = [k for k in x if k.startswith("$")]
                if bad:
                    raise ValueError(f"state keys may not start with '$': {bad}")
                return {k: walk(v) for k, v in x.items()}
            if all(isinstance(k, int) and not isinstance(k, bool) for k in x):
                return {"$int": [[k, walk(v)] for k, v in x.items()]}
            raise ValueError(f"state dict keys must be all str or all int, got {sorted(map(repr, x))[:4]}")
        if isinstance(x, tuple):
            return {"$tuple": [walk(v) for v in x]}
        if isinstance(x, list):
            return [walk(v) for v in x]
        raise ValueError(f"cannot store a {type(x).__name__} in a training state")

    return tensors, walk(obj)


def decode(skeleton: Any, tensors: dict[str, torch.Tensor], *, where: str = "training state") -> Any:
    """The state tree back from :func:`encode`'s output; unknown tags or tensor names → CheckpointError."""

    def bad(why: str) -> CheckpointError:
        return CheckpointError(f"{where}: {why}", hint="the file is not one facesr wrote; resume from another "
                               "checkpoint or start the run again", path=where)

    def tensor(key: Any) -> torch.Tensor:
        if not isinstance(key, str) or key not in tensors:
            raise bad(f"names a tensor {key!r} that is not in the file")
        return tensors[key]

    def walk(x: Any) -> Any:
        if isinstance(x, list):
            return [walk(v) for v in x]
        if not isinstance(x, dict):
            if x is None or isinstance(x, (bool, int, float, str)):
                return x
            raise bad(f"unexpected value {x!r}")
        tags = [k for k in x if k.startswith("$")]
        if not tags:
            return {k: walk(v) for k, v in x.items()}
        if len(x) != 1 or tags[0] not in _TAGS:
            raise bad(f"unknown entry {sorted(x)[:3]}")
        tag, v = tags[0], x[tags[0]]
        if tag == "$t":
            return tensor(v)
        if tag == "$np":
            return tensor(v).numpy()
        if tag == "$f":
            if v not in ("nan", "inf", "-inf"):
                raise bad(f"bad float {v!r}")
            return float(v)
        if not isinstance(v, list) or (tag != "$tuple" and not all(isinstance(p, list) and len(p) == 2 for p in v)):
            raise bad(f"malformed {tag} entry")
        if tag == "$tuple":
            return tuple(walk(e) for e in v)
        if not all(isinstance(k, int) and not isinstance(k, bool) for k, _ in v):
            raise bad(f"{tag} keys must be integers")
        if tag == "$int":
            return {k: walk(e) for k, e in v}
        return Counter({k: int(n) for k, n in v})

    return walk(skeleton)


def save(folder: str | os.PathLike, stem: str, obj: Any) -> list[Path]:
    """Write ``<stem>.safetensors`` and ``<stem>.json`` in ``folder``; returns both paths (not fsynced)."""
    from safetensors.torch import save_file

    tensors, skeleton = encode(obj)
    folder = Path(folder)
    st, js = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    save_file(tensors, str(st), metadata={"format": "facesr-state"})
    js.write_text(json.dumps(skeleton, allow_nan=False))
    return [st, js]


def load(folder: str | os.PathLike, stem: str) -> Any | None:
    """The state written by :func:`save` (tensors on the CPU; ``load_state_dict`` moves optimizer state to its
    parameters' device), or None when neither file exists; damaged or foreign files → CheckpointError."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    st, js = folder / f"{stem}.safetensors", folder / f"{stem}.json"
    if not st.exists() and not js.exists():
        return None
    for p in (st, js):
        if not p.is_file():
            raise CheckpointError(f"{p} is missing (its twin is there)", hint="resume from another checkpoint",
                                  path=str(p))
    try:
        tensors = load_file(str(st))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{st} is not a readable safetensors file ({exc})",
                              hint="resume from another checkpoint", path=str(st)) from None
    try:
        skeleton = json.loads(js.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{js} is not valid JSON ({exc})", hint="resume from another checkpoint",
                              path=str(js)) from None
    return decode(skeleton, tensors, where=str(js))
