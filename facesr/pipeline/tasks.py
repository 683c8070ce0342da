"""The build's task graph: one dask task per pending (stage, chunk), its inputs passed through graph keys.

For every per-chunk stage ``S`` and chunk ``i`` still to do, the graph holds

* ``(S, i)`` — :func:`execute`: run ``S`` on chunk ``i`` with the arrays it reads, write its outputs to the
  store, commit the chunk's marker, and return a :class:`ChunkOutput` (the outputs, for downstream tasks);
* its inputs as ``TaskRef`` s to the tasks of the stages that produce them: ``(D, i)`` when ``D`` runs too,
  else ``("load", D, i)`` — :func:`load`, which reads ``D``'s committed chunk from the store;
A task hands its arrays on only when a pending task reads them (``hand_on``); a sink (degrade, heatmap,
parse, or a stage whose consumers are all committed) returns its :class:`StageResult` alone, so a chunk's
arrays are released as soon as its consumers are done and are never gathered into the calling process.

So data moves along graph edges, and a stage never depends on another's side effects. Tasks are plain
functions of their arguments (store path, stage, rows), so any dask scheduler can run them.
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

__all__ = ["ChunkOutput", "Records", "execute", "load", "task_graph"]

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
            hand_on: bool, *upstream: ChunkOutput) -> ChunkOutput:
    """Run one (stage, chunk) task: compute from the upstream arrays → write → commit the marker. The
    outputs travel on in the returned :class:`ChunkOutput` only when ``hand_on`` (a pending task reads them)."""
    ledger = Ledger(store_path)
    if ledger.is_done(stage.name, stage.key, chunk):  # committed meanwhile (e.g. a resumed distributed task)
        out = load(store_path, stage, start, stop) if hand_on else ChunkOutput()
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
    return ChunkOutput(out if hand_on else {}, result)


def task_graph(store_path: str, plan, pending: Mapping[str, set[int]], slices: Sequence[slice],
               records: Sequence[Mapping] | None) -> tuple[dict, list]:
    """``(graph, keys)`` computing every ``pending`` (stage → chunk indices) task of ``plan``.

    ``records``: the crop stage's ``{"path", "meta"}`` per store row (needed only when crop chunks are
    pending). ``keys`` are the ``(stage, chunk)`` task keys; each value is a :class:`ChunkOutput` whose
    ``result`` is the task's :class:`StageResult`.
    """
    from dask._task_spec import Task, TaskRef

    read = {(d, i) for st in plan if st.per_chunk for i in pending.get(st.name, ()) for d in st.deps}
    dsk: dict = {}
    keys: list = []
    for st in plan:
        if not st.per_chunk:
            continue
        for i in sorted(pending.get(st.name, ())):
            sl = slices[i]
            ups = []
            for d in st.deps:
                dep = plan[d]
                if not dep.per_chunk:
                    continue
                if i in pending.get(d, ()):
                    ups.append(TaskRef((d, i)))
                else:
                    k = ("load", d, i)
                    dsk.setdefault(k, Task(k, load, store_path, dep, sl.start, sl.stop))
                    ups.append(TaskRef(k))
            recs = None
            if st.name == "crop":
                if records is None:
                    raise PipelineError("the crop stage needs the source records")
                recs = Records(records[sl])
            dsk[(st.name, i)] = Task((st.name, i), execute, store_path, st, i, sl.start, sl.stop, recs,
                                     (st.name, i) in read, *ups)
            keys.append((st.name, i))
    return dsk, keys
