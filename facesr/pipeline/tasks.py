"""The build's task graph: one dask task per chunk with work to do, running that chunk's pending stages.

For every chunk ``i`` with a pending stage, the graph holds one task ``("chunk", i)`` —
:func:`execute_chunk` — that runs the chunk's pending stages in plan order (crop, degrade, landmarks,
detect, heatmap, parse), each through :func:`execute`: compute from the arrays it reads, write its outputs
to the store, commit the chunk's marker. A stage's outputs go to the next stage of the same task in memory;
inputs from a stage an earlier run committed are read from the store (:func:`load`). Each task returns its
:class:`StageResult` s only, so no image ever travels between processes: per-stage tasks had to pickle
every chunk's HR through the scheduler to three consumers (measured: ~2 s of CPU over the 5,340 shared
CelebA faces). A failed stage stops its chunk's task; the stages before it stay committed, so a rerun
resumes there.

Tasks are plain functions of their arguments (store path, stages, rows), so any dask scheduler can run them.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from facesr.data import schema
from facesr.errors import FacesrError, PipelineError
from facesr.pipeline.lock import Ledger
from facesr.pipeline.stages import Stage, StageResult, lr_files_differ, run_chunk

__all__ = ["ChunkOutput", "Records", "Steps", "execute", "execute_chunk", "load", "task_graph"]

_local = threading.local()


def _open_store(path: str):
    """The store at ``path``, opened once per worker thread."""
    from facesr.data.store import FaceStore

    cache = getattr(_local, "stores", None)
    if cache is None:
        cache = _local.stores = {}
    if path not in cache:
        cache[path] = FaceStore.open(path, mode="r+")
    return cache[path]


class Records:
    """The crop stage's per-chunk records, opaque to dask (it must not look inside them for keys)."""

    __slots__ = ("value",)

    def __init__(self, value: Sequence[Mapping]) -> None:
        self.value = list(value)


class Steps:
    """One chunk's pending stages for :func:`execute_chunk`, opaque to dask: ``(stage, its per-chunk dependency
    stages, crop records or None)`` each."""

    __slots__ = ("value",)

    def __init__(self, value: Sequence[tuple[Stage, tuple[Stage, ...], Records | None]]) -> None:
        self.value = list(value)


@dataclass
class ChunkOutput:
    """What a task hands downstream: its chunk's arrays (by schema name) and, for a computed task, its result."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    result: StageResult | None = None


def _stored(stage: Stage) -> list[str]:
    """The arrays of ``stage`` that a downstream task may read (its outputs, ``failure`` included)."""
    return [o.name for o in stage.outputs]


def load(store_path: str, stage: Stage, start: int, stop: int) -> ChunkOutput:
    """The committed outputs of ``stage`` for rows ``[start, stop)``, read from the store."""
    store = _open_store(store_path)
    sl = slice(start, stop)
    return ChunkOutput({name: store.read(name, sl) for name in _stored(stage)})


def _inputs(stage: Stage, upstream: Sequence[ChunkOutput]) -> dict[str, np.ndarray]:
    have: dict[str, np.ndarray] = {}
    for up in upstream:
        have.update(up.arrays)
    missing = [r for r in stage.reads if r not in have]
    if missing:  # a planning bug, never a user's
        raise PipelineError(f"stage {stage.name}: no upstream task provides {missing}")
    return {r: have[r] for r in stage.reads}


def execute(store_path: str, stage: Stage, chunk: int, start: int, stop: int, records: Records | None,
            *upstream: ChunkOutput) -> ChunkOutput:
    """Run one (stage, chunk) task: compute from the upstream arrays → write → commit the marker. The
    outputs go on to the chunk's later stages in the returned :class:`ChunkOutput`."""
    ledger = Ledger(store_path)
    if ledger.is_done(stage.name, stage.key, chunk):  # committed meanwhile (e.g. a resumed distributed task)
        out = load(store_path, stage, start, stop)
        out.result = StageResult(stage.name, chunk, stop - start, 0.0, skipped=True)
        return out
    cpu0 = time.process_time()
    store = _open_store(store_path)
    try:
        out, seconds = run_chunk(stage, _inputs(stage, upstream), None if records is None else records.value)
        for name, values in out.items():
            if len(values) != stop - start:
                raise PipelineError(f"stage {stage.name} returned {len(values)} rows of {name!r} for {stop - start}")
            store.write(name, start, values)
    except FacesrError:  # the user's kind of error (junk weights, a corrupt chunk): its own line and hint
        raise
    except Exception as exc:
        raise PipelineError(
            f"stage {stage.name!r} failed on chunk {chunk} (rows {start}-{stop - 1}): {type(exc).__name__}: {exc}",
            hint="rerun with --debug for the traceback; finished chunks are kept",
        ) from exc
    failures = 0
    if schema.FAILURE.name in out:
        failures = int((out[schema.FAILURE.name].astype(str) != "").sum())
    checks = {}
    if "lr_files" in stage.config:
        checks["lr_files_differ"] = lr_files_differ(out, stage.config)
    ledger.mark(stage.name, stage.key, chunk, {"n": stop - start, "seconds": round(seconds, 4), "pid": os.getpid(),
                                               **checks})
    result = StageResult(stage.name, chunk, stop - start, seconds, failures=failures,
                         cpu=time.process_time() - cpu0, checks=checks)
    return ChunkOutput(out, result)


def execute_chunk(store_path: str, steps: Steps, chunk: int, start: int, stop: int) -> ChunkOutput:
    """Run one chunk's pending stages in order (module docstring); returns a :class:`ChunkOutput` whose
    ``result`` is the tuple of the stages' :class:`StageResult` s."""
    outs: dict[str, ChunkOutput] = {}
    results = []
    for stage, deps, records in steps.value:
        ups = []
        for dep in deps:
            if dep.name not in outs:  # committed by an earlier run: read its rows once
                outs[dep.name] = load(store_path, dep, start, stop)
            ups.append(outs[dep.name])
        out = execute(store_path, stage, chunk, start, stop, records, *ups)
        outs[stage.name] = out
        results.append(out.result)
    return ChunkOutput({}, tuple(results))


def task_graph(store_path: str, plan, pending: Mapping[str, set[int]], slices: Sequence[slice],
               records: Sequence[Mapping] | None) -> tuple[dict, list]:
    """``(graph, keys)`` running every ``pending`` (stage → chunk indices) stage of ``plan``: one
    :func:`execute_chunk` task ``("chunk", i)`` per chunk with pending work (``keys``, in chunk order).

    ``records``: the crop stage's ``{"path", "meta"}`` per store row (needed only when crop chunks are
    pending).
    """
    from dask._task_spec import Task

    dsk: dict = {}
    keys: list = []
    stages = [st for st in plan if st.per_chunk]
    for i, sl in enumerate(slices):
        steps = []
        for st in stages:
            if i not in pending.get(st.name, ()):
                continue
            recs = None
            if st.name == "crop":
                if records is None:
                    raise PipelineError("the crop stage needs the source records")
                recs = Records(records[sl])
            steps.append((st, tuple(plan[d] for d in st.deps if plan[d].per_chunk), recs))
        if steps:
            dsk[("chunk", i)] = Task(("chunk", i), execute_chunk, store_path, Steps(steps), i, sl.start, sl.stop)
            keys.append(("chunk", i))
    return dsk, keys
