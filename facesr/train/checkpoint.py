"""Run checkpoints: ``RUN/checkpoints/{last,best}/``, written atomically, checksummed, never unpickled.

One checkpoint is a folder:

==========================  =====================================================================
``model.safetensors``       generator weights (plain state dict of the unwrapped model); its metadata names
                            the model and its arguments (:func:`facesr.export.weights_metadata`), so
                            ``facesr.load(file)`` rebuilds the network from the file alone
``ema.safetensors``         EMA weights, when the preset uses EMA (the same metadata)
``disc.safetensors``        discriminator weights, GAN presets only
``train_state.safetensors`` optimizer / scheduler / GradScaler / RNG tensors (:mod:`facesr.train.safestate`;
``train_state.json``        the rest of that state as tagged JSON; Adam moments are the large part, 2× the model)
``state.json``              epoch, step, step-in-epoch, best score, counters — and ``files``: the size and
                            SHA-256 of every other file, so a damaged file is found before it is read
==========================  =====================================================================

Atomicity: the folder is written as ``<name>.tmp`` (every file flushed and fsynced, ``state.json`` last),
then ``<name>`` is renamed to ``<name>.old``, ``<name>.tmp`` to ``<name>``, and ``<name>.old`` removed.
Each rename is atomic (POSIX ``rename``), so after a kill at any instant either ``<name>`` or
``<name>.old`` is a complete checkpoint; :func:`resolve` picks the first *whole* one (:func:`verify`: state
readable, every listed file present with its size and checksum) of ``<name>``, ``<name>.old``. A ``.tmp``
folder is never read. Resuming (:func:`for_resume`) falls back from ``last`` to ``last.old`` and then to
``best``; when none is whole the error names each file and what is wrong with it.

Nothing here unpickles: weights are safetensors, state is JSON, and a ``train_state.pt`` (the pickle that
earlier facesr versions wrote) is refused with a :class:`~facesr.errors.CheckpointError`, never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from facesr.errors import CheckpointError
from facesr.train import safestate

STATE = "state.json"
TRAIN_STATE = "train_state"  # stem of train_state.safetensors + train_state.json
LEGACY_PICKLE = "train_state.pt"
WEIGHTS = {"model": "model.safetensors", "ema": "ema.safetensors", "disc": "disc.safetensors"}
_HINT = "resume from another checkpoint of the run, or start it again in a new --out"


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tensors(state_dict: dict) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share storage (tied weights, views)
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items() if torch.is_tensor(v)}


def save(
    folder: str | os.PathLike,
    *,
    weights: dict[str, dict],
    state: dict[str, Any],
    train_state: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (see module docstring). ``weights``: name → state dict
    (names from :data:`WEIGHTS`); ``train_state``: a tree for :func:`facesr.train.safestate.save`.
    ``state["model"]`` and ``state["model_args"]`` (the run's facts), when given, go into the generator
    files' metadata for :func:`facesr.load`."""
    from safetensors.torch import save_file

    from facesr.export import weights_metadata

    final = Path(folder)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    meta = {"format": "pt", **{k: str(v) for k, v in (metadata or {}).items()}}
    model = state.get("model")
    generator = weights_metadata(model, state.get("model_args"), meta) if model and "model_args" in state else meta
    written: list[Path] = []
    for name, sd in weights.items():
        if name not in WEIGHTS:
            raise ValueError(f"unknown weight set {name!r}")
        path = tmp / WEIGHTS[name]
        save_file(_tensors(sd), str(path), metadata=generator if name in ("model", "ema") else meta)
        written.append(path)
    if train_state is not None:
        written += safestate.save(tmp, TRAIN_STATE, train_state)
    files = {}
    for path in written:
        _fsync_file(path)
        files[path.name] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    path = tmp / STATE
    path.write_text(json.dumps({**state, "files": files}, indent=2, sort_keys=True))
    _fsync_file(path)
    return _swap_in(tmp, final)


def _swap_in(tmp: Path, final: Path) -> Path:
    """Replace ``final`` by the complete folder ``tmp``; at every instant ``final`` or ``.old`` is whole."""
    old = final.with_name(final.name + ".old")
    _fsync_dir(tmp)
    if final.exists():  # else an earlier swap was cut short and .old is the one whole copy: keep it
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if old.exists():
        shutil.rmtree(old)
    return final


def verify(folder: str | os.PathLike) -> str | None:
    """None when ``folder`` is a whole checkpoint, else what is wrong, naming the file (one line)."""
    folder = Path(folder)
    state_path = folder / STATE
    if not folder.is_dir():
        return f"{folder} does not exist"
    try:
        state = json.loads(state_path.read_text())
    except FileNotFoundError:
        return f"{state_path} is missing"
    except (OSError, ValueError) as exc:
        size = state_path.stat().st_size if state_path.exists() else 0
        return f"{state_path} is unreadable ({'empty file' if size == 0 else exc})"
    if not isinstance(state, dict):
        return f"{state_path} is not a checkpoint state"
    if not (folder / WEIGHTS["model"]).is_file():
        return f"{folder / WEIGHTS['model']} is missing"
    files = state.get("files", {})  # absent in checkpoints written before checksums: nothing to compare
    if not isinstance(files, dict):
        return f"{state_path}: bad 'files' entry"
    for name, want in files.items():
        path = folder / name
        if "/" in name or not isinstance(want, dict):
            return f"{state_path}: bad 'files' entry {name!r}"
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != want.get("bytes"):
            return f"{path} has {path.stat().st_size} bytes, {want.get('bytes')} were written"
        if _sha256(path) != want.get("sha256"):
            return f"{path} fails its SHA-256 checksum (damaged or replaced)"
    return None


def is_complete(folder: Path) -> bool:
    return verify(folder) is None


def resolve(folder: str | os.PathLike) -> Path | None:
    """The whole checkpoint at ``folder`` (or its ``.old`` twin after an interrupted swap), else None."""
    folder = Path(folder)
    for cand in (folder, folder.with_name(folder.name + ".old")):
        if cand.is_dir() and is_complete(cand):
            return cand
    return None


def exists(run: str | os.PathLike) -> bool:
    """Whether a run folder holds any checkpoint at all (whole or not): a new run must not overwrite it."""
    ck = Path(run) / "checkpoints"
    return any((ck / n).is_dir() for n in ("last", "last.old", "best", "best.old"))


def for_resume(run: str | os.PathLike) -> tuple[Path, list[str]]:
    """The checkpoint to resume ``run`` from — ``last``, else ``last.old``, else ``best`` (and ``best.old``) —
    and a note per candidate passed over. No whole candidate: CheckpointError naming each one's fault."""
    ck = Path(run) / "checkpoints"
    problems = []
    for name in ("last", "last.old", "best", "best.old"):
        cand = ck / name
        if not cand.is_dir():
            continue
        why = verify(cand)
        if why is None:
            return cand, problems
        problems.append(why)
    if not problems:
        raise CheckpointError(f"--resume: no checkpoint in {ck}", hint="start the run without --resume",
                              path=str(ck))
    raise CheckpointError(f"--resume: no whole checkpoint in {ck}: " + "; ".join(problems), hint=_HINT,
                          path=str(ck))


def find(run_or_ckpt: str | os.PathLike, which: str = "best") -> Path:
    """Checkpoint folder from a run folder (``which``: best, falling back to last; or last) or a
    checkpoint folder given directly."""
    p = Path(run_or_ckpt)
    direct = resolve(p)
    if direct is not None:
        return direct
    order = {"best": ("best", "last"), "last": ("last",)}.get(which)
    if order is None:
        from facesr.errors import ConfigError

        raise ConfigError(f"unknown checkpoint {which!r}", hint="use 'best' or 'last'")
    faults = []
    for name in order:
        found = resolve(p / "checkpoints" / name)
        if found is not None:
            return found
        if (p / "checkpoints" / name).is_dir():
            faults.append(verify(p / "checkpoints" / name))
    if faults or (p / STATE).exists():
        why = "; ".join(f for f in faults if f) or verify(p)
        raise CheckpointError(f"no whole checkpoint in {p}: {why}", hint=_HINT, path=str(p))
    raise CheckpointError(
        f"no checkpoint in {p}",
        hint="pass a run folder written by `facesr train --out RUN` (it holds checkpoints/last)", path=str(p))


def load_state(folder: Path) -> dict:
    path = Path(folder) / STATE
    try:
        state = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"{path} is unreadable ({exc})", hint=_HINT, path=str(path)) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path} is not a checkpoint state", hint=_HINT, path=str(path))
    return state


def load_weights(folder: Path, name: str = "model") -> dict[str, torch.Tensor] | None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(folder) / WEIGHTS[name]
    if not path.is_file():
        return None
    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{path} is not a readable safetensors file ({exc})", hint=_HINT,
                              path=str(path)) from None


def load_generator(folder: Path, prefer_ema: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """``(state dict, "ema" | "model")``: the generator weights to use, EMA ones when the run has them."""
    sd = load_weights(folder, "ema") if prefer_ema else None
    if sd is not None:
        return sd, "ema"
    return load_weights(folder, "model"), "model"


def load_train_state(folder: Path) -> dict | None:
    """Optimizer / scheduler / scaler / RNG state (:mod:`facesr.train.safestate`), or None when absent.
    A legacy ``train_state.pt`` pickle is refused, never opened."""
    folder = Path(folder)
    if (folder / LEGACY_PICKLE).exists():
        raise CheckpointError(
            f"{folder / LEGACY_PICKLE} is a pickle; facesr never unpickles training state (it can run code)",
            hint="resume from a checkpoint written by this facesr (train_state.safetensors + .json), or start "
                 "a new run initialised from these weights: --set model.init=RUN", path=str(folder / LEGACY_PICKLE))
    state = safestate.load(folder, TRAIN_STATE)
    if state is not None and not isinstance(state, dict):
        raise CheckpointError(f"{folder / (TRAIN_STATE + '.json')} is not a training state", hint=_HINT)
    return state


__all__ = ["LEGACY_PICKLE", "STATE", "TRAIN_STATE", "WEIGHTS", "exists", "find", "for_resume", "is_complete",
           "load_generator", "load_state", "load_train_state", "load_weights", "resolve", "save", "verify"]
