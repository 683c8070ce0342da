"""Execution: (stage, chunk) tasks as a plain dask graph, run on one chosen scheduler.

Stages do not know their scheduler (they are pure per-chunk functions, :mod:`facesr.pipeline.stages`);
this module alone picks it:

* ``"sync"`` — dask's synchronous scheduler, one task at a time in this thread (tests, ``--debug``:
  exceptions surface with their own traceback);
* ``"threads"`` — a local thread pool (``workers`` threads);
* ``"processes"`` — a local pool of ``workers`` processes (the default when ``workers > 1``: dlib and the
  heatmap maths hold the GIL), started from a ``forkserver`` on Linux (else spawned). Each worker
  builds its providers once and keeps them; workers die with their parent
  (``PR_SET_PDEATHSIG``), so ``kill -9`` of a build leaves no writer behind;
* ``"tcp://host:port"`` (or any other address) — a ``dask.distributed`` scheduler, e.g. a SLURM cluster
  started by dask-jobqueue (``docs/slurm.md``); the store must be on storage every worker sees.

Each task (:func:`execute`) skips a chunk whose commit marker exists, otherwise reads the chunk's input
arrays, runs the stage, writes its outputs, then writes the marker (:mod:`facesr.pipeline.lock`).
Progress is reported per finished task to ``on_result`` in the calling thread.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from facesr.errors import PipelineError
from facesr.pipeline.lock import Ledger
from facesr.pipeline.stages import Stage, StageResult, run_chunk

__all__ = ["LOCAL_SCHEDULERS", "Payload", "execute", "run_graph"]

LOCAL_SCHEDULERS = ("sync", "threads", "processes")

_local = threading.local()


def _open_store(path: str):
    from facesr.data.store import FaceStore

    cache = getattr(_local, "stores", None)
    if cache is None:
        cache = _local.stores = {}
    if path not in cache:
        cache[path] = FaceStore.open(path, mode="r+")
    return cache[path]


class Payload:
    """Opaque per-chunk extra data (e.g. the crop stage's records): dask must not look inside it for keys."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def execute(store_path: str, stage: Stage, chunk: int, start: int, stop: int, extra: Any, *deps: Any) -> StageResult:
    """Run one (stage, chunk) task: skip if committed, else read → compute → write → commit."""
    if isinstance(extra, Payload):
        extra = extra.value
    ledger = Ledger(store_path)
    if ledger.is_done(stage.name, stage.key, chunk):
        return StageResult(stage.name, chunk, stop - start, 0.0, skipped=True)
    cpu0 = time.process_time()
    store = _open_store(store_path)
    sl = slice(start, stop)
    try:
        inputs = {name: store.read(name, sl) for name in stage.reads}
        out, seconds = run_chunk(stage, inputs, extra)
        for name, values in out.items():
            if len(values) != stop - start:
                raise PipelineError(f"stage {stage.name} returned {len(values)} rows of {name!r} for {stop - start}")
            store.write(name, start, values)
    except PipelineError:
        raise
    except Exception as exc:
        raise PipelineError(
            f"stage {stage.name!r} failed on chunk {chunk} (rows {start}-{stop - 1}): {type(exc).__name__}: {exc}",
            hint="rerun with --debug for the traceback; finished chunks are kept",
        ) from exc
    failures = 0
    if "failure" in out:
        failures = int((out["failure"].astype(str) != "").sum())
    ledger.mark(stage.name, stage.key, chunk, {"n": stop - start, "seconds": round(seconds, 4), "pid": os.getpid()})
    return StageResult(stage.name, chunk, stop - start, seconds, failures=failures, cpu=time.process_time() - cpu0)


def _init_worker(parent_pid: int, threads: int) -> None:
    """Process-pool initializer: die with the parent, keep native thread pools small, stay offline."""
    try:  # Linux: SIGKILL this worker when its parent dies
        import ctypes
        import signal

        # PR_SET_PDEATHSIG. The parent is the build (spawn) or the forkserver, which exits when the build dies.
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
        if os.getppid() == 1:  # orphaned already
            os._exit(1)
    except Exception:  # noqa: BLE001 - not Linux: best effort
        pass
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "FACESR_THREADS"):
        os.environ[var] = str(threads)
    from facesr.runtime import offline_env

    offline_env()
    try:
        import cv2

        cv2.setNumThreads(threads)
    except Exception:  # noqa: BLE001
        pass


_PRELOAD = ["facesr.pipeline.runner", "facesr.pipeline.stages", "facesr.data.store", "facesr.data.crop",
            "facesr.data.images", "facesr.priors.landmarks", "facesr.priors.heatmap", "facesr.priors.detectors",
            "facesr.priors.parsing", "dlib", "cv2", "zarr"]


def _mp_context():
    """``forkserver`` on Linux (a clean server process imports the pipeline modules once, each worker forks
    from it: fast starts, no inherited threads or locks), else ``spawn``. Plain ``fork`` of a process that
    has used zarr/blosc threads can deadlock, so it is never the default. ``FACESR_MP_START`` overrides."""
    import multiprocessing
    import sys

    method = os.environ.get("FACESR_MP_START") or ("forkserver" if sys.platform.startswith("linux") else "spawn")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(_PRELOAD)
    return ctx


def _run_local(dsk: Mapping, keys: Sequence, scheduler: str, workers: int) -> None:
    if scheduler == "sync":
        from dask.local import get_sync

        get_sync(dict(dsk), list(keys))
    elif scheduler == "threads":
        from dask.threaded import get

        get(dict(dsk), list(keys), num_workers=workers)
    else:
        from concurrent.futures import ProcessPoolExecutor

        import dask.multiprocessing

        pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(os.getpid(), 1),
        )
        try:
            dask.multiprocessing.get(
                dict(dsk), list(keys), num_workers=workers, pool=pool, optimize_graph=False
            )
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def run_graph(
    dsk: Mapping,
    keys: Sequence,
    *,
    scheduler: str = "sync",
    workers: int = 1,
    on_result: Callable[[StageResult], None] | None = None,
) -> list[StageResult]:
    """Compute ``keys`` of the task graph ``dsk`` on ``scheduler``; ``on_result`` sees each task's result."""
    results: list[StageResult] = []
    if not keys:
        return results

    def seen(res: Any) -> None:
        if isinstance(res, StageResult):
            results.append(res)
            if on_result is not None:
                on_result(res)

    if scheduler in LOCAL_SCHEDULERS:
        from dask.callbacks import Callback

        cb = Callback(posttask=lambda key, res, dsk_, state, wid: seen(res))
        with cb:
            _run_local(dsk, keys, scheduler, workers)
        return results

    # a dask.distributed scheduler address
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover
        raise PipelineError("dask.distributed is not installed", hint="pip install 'dask[distributed]'") from exc
    try:
        client = Client(scheduler, timeout="20s")
    except OSError as exc:
        raise PipelineError(
            f"cannot reach the dask scheduler at {scheduler}: {exc}",
            hint="start it (dask scheduler / dask-jobqueue, see docs/slurm.md) or drop --scheduler",
        ) from None
    try:
        futures = client.get(dict(dsk), list(keys), sync=False)
        for fut in as_completed(futures):
            seen(fut.result())
    finally:
        client.close()
    return results
