"""Content keys for pipeline stages.

A stage key is ``sha256`` over a canonical JSON document of

* the stage name and its code version (bumped by hand whenever a stage's output would change),
* the stage config (everything that decides the output: crop method, LR spec, heatmap preset, ...),
* the provider config (``provider.config()``: provider name, weight file digests, thresholds),
* the keys of the stages it reads from.

So a change anywhere upstream changes every key downstream, and nothing else. Keys are 16 hex digits.
Paths, worker counts, schedulers and weights *directories* never enter a key: they change where and how
fast, not what.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["canonical_json", "digest", "stage_key"]


def _default(obj: Any) -> Any:
    if hasattr(obj, "tolist"):  # numpy scalars / arrays
        return obj.tolist()
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if hasattr(obj, "__fspath__"):
        return str(obj)
    raise TypeError(f"cannot hash {type(obj).__name__} {obj!r} into a stage key")


def _normalise(obj: Any) -> Any:
    """Tuples → lists, non-finite floats → strings (JSON has no NaN), mapping keys → str."""
    if isinstance(obj, Mapping):
        return {str(k): _normalise(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_normalise(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return repr(obj)
    return obj


def canonical_json(obj: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces) of plain data; the text that gets hashed."""
    return json.dumps(_normalise(obj), sort_keys=True, separators=(",", ":"), default=_default, allow_nan=False)


def digest(obj: Any, n: int = 16) -> str:
    """First ``n`` hex digits of sha256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:n]


def stage_key(name: str, version: int, config: Mapping[str, Any], input_keys: Mapping[str, str]) -> str:
    """The content key of one stage (see the module docstring)."""
    return digest({"stage": name, "version": int(version), "config": dict(config), "inputs": dict(input_keys)})
