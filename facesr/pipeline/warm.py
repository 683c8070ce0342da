"""Providers loaded once in the forkserver, before it forks a build's workers.

Each local worker process would otherwise load dlib's 68-point predictor (~1 s of CPU, 95 MB) and build the
HOG detector (~0.9 s) itself; loaded here, every worker forked from the server starts with them in memory,
shared copy-on-write. The forkserver imports this module once (``runner._mp_context`` lists it in the
preload), reading which providers to load from ``$FACESR_WARM`` (JSON ``[[kind, name, options,
weights_dir], ...]``, set by the runner just before the server starts). Only dlib providers are warmed:
forking a process that has started torch's thread pools is not safe. A provider that fails here is left
alone: its first task loads it and reports the error there.
"""

from __future__ import annotations

import json
import os

ENV = "FACESR_WARM"
WARMABLE = {("landmarker", "dlib68")}

__all__ = ["ENV", "WARMABLE", "warm"]


def warm(specs) -> int:
    """Build each ``(kind, name, options, weights_dir)`` provider into this thread's cache; how many loaded."""
    from facesr.pipeline.providers import provider

    n = 0
    for kind, name, options, weights_dir in specs:
        if (kind, name) not in WARMABLE:
            continue
        try:
            p = provider(kind, name, options, weights_dir)
            getattr(p, "warm", lambda: None)()
            n += 1
        except Exception:  # noqa: BLE001 - the task that needs it raises the real error
            pass
    return n


def _from_env() -> None:
    try:
        specs = json.loads(os.environ.get(ENV) or "[]")
    except ValueError:
        return
    if specs:
        warm(specs)


_from_env()
