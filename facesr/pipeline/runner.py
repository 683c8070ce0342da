"""Execution: a task graph (:mod:`facesr.pipeline.tasks`) run on one chosen scheduler.

Stages do not know their scheduler (they are pure per-chunk functions, :mod:`facesr.pipeline.stages`);
this module alone picks it:

* ``"sync"`` — dask's synchronous scheduler, one task at a time in this thread (tests, ``--debug``:
  exceptions surface with their own traceback);
* ``"threads"`` — a local thread pool (``workers`` threads);
* ``"processes"`` — a local pool of ``workers`` processes (the default when ``workers > 1``: dlib and the
  heatmap maths hold the GIL), started from a ``forkserver`` on Linux (else spawned). Each worker
  builds its providers once and keeps them. No worker outlives the build, ``kill -9`` included: each one
  gets ``PR_SET_PDEATHSIG`` and watches the build's process through a pidfd (its parent is the forkserver,
  which ends with the build), so it exits within a poll interval of the build's death;
* ``"tcp://host:port"`` (or any other address) — a ``dask.distributed`` scheduler, e.g. a SLURM cluster
  started by dask-jobqueue (``docs/slurm.md``); the store and the dataset must be on storage every worker
  sees, at absolute paths. A cluster with no workers yet is waited for (``on_wait`` says so once) up to
  ``cluster_timeout`` seconds.

Progress is reported per finished task to ``on_result`` in the calling thread.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from facesr.errors import PipelineError
from facesr.pipeline.stages import StageResult

__all__ = ["LOCAL_SCHEDULERS", "RunResult", "run_graph"]

LOCAL_SCHEDULERS = ("sync", "threads", "processes")
#: seconds between a worker's checks that the build is still alive
WATCH_INTERVAL = 0.5


@dataclass
class RunResult:
    """What a run did: each computed task's result, and the number of workers that ran them."""

    results: list[StageResult] = field(default_factory=list)
    workers: int = 0


def _watch_parent(parent_pid: int) -> None:
    """Exit this worker as soon as ``parent_pid`` (the build) has exited: a pidfd turns readable then."""
    import select

    try:
        fd = os.pidfd_open(parent_pid)
    except ProcessLookupError:
        os._exit(1)  # the build is gone already
    except (AttributeError, OSError):  # no pidfd (not Linux ≥ 5.3): poll the pid instead
        fd = None

    def watch() -> None:
        if fd is not None:
            select.select([fd], [], [])
            os._exit(1)
        while True:
            try:
                os.kill(parent_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            threading.Event().wait(WATCH_INTERVAL)

    threading.Thread(target=watch, name="facesr-parent-watch", daemon=True).start()


def _init_worker(parent_pid: int, threads: int) -> None:
    """Process-pool initializer: die with the parent, keep native thread pools small, stay offline."""
    try:  # Linux: SIGKILL this worker when its parent (the build, or the forkserver) dies
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # orphaned already
            os._exit(1)
    except Exception:  # noqa: BLE001 - not Linux: the watcher below still ends it
        pass
    _watch_parent(parent_pid)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "FACESR_THREADS"):
        os.environ[var] = str(threads)
    from facesr.runtime import offline_env

    offline_env()
    try:
        import cv2

        cv2.setNumThreads(threads)
    except Exception:  # noqa: BLE001
        pass


_PRELOAD = ["facesr.pipeline.runner", "facesr.pipeline.stages", "facesr.pipeline.tasks", "facesr.data.store",
            "facesr.data.crop", "facesr.data.images", "facesr.priors.landmarks", "facesr.priors.heatmap",
            "facesr.priors.detectors",
            "facesr.priors.parsing", "dlib", "cv2", "zarr"]


def _mp_context(warm: Sequence = ()):
    """``forkserver`` on Linux (a clean server process imports the pipeline modules once, each worker forks
    from it: fast starts, no inherited threads or locks), else ``spawn``. Plain ``fork`` of a process that
    has used zarr/blosc threads can deadlock, so it is never the default. ``FACESR_MP_START`` overrides.
    ``warm``: providers the server loads before forking (:mod:`facesr.pipeline.warm`); it reads them when it
    starts, so a server already running keeps its first build's (a later build's workers load their own)."""
    import json
    import multiprocessing
    import sys

    from facesr.pipeline import warm as _warm

    method = os.environ.get("FACESR_MP_START") or ("forkserver" if sys.platform.startswith("linux") else "spawn")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        os.environ[_warm.ENV] = json.dumps([list(w) for w in warm], default=str)
        ctx.set_forkserver_preload([*_PRELOAD, "facesr.pipeline.warm"])
    return ctx


def _run_local(dsk: Mapping, keys: Sequence, scheduler: str, workers: int, warm: Sequence = ()) -> None:
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
            mp_context=_mp_context(warm),
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
    on_wait: Callable[[str], None] | None = None,
    cluster_timeout: float | None = None,
    warm: Sequence = (),
) -> RunResult:
    """Compute ``keys`` of the task graph ``dsk`` on ``scheduler``; ``on_result`` sees every
    :class:`StageResult` a key returns (a task's value or its ``.result``: one, or a tuple of them for a chunk's
    task) as it finishes. ``warm``: ``(kind, name, options, weights_dir)`` providers local worker processes
    start with (:mod:`facesr.pipeline.warm`).

    Only the keys no other task depends on are asked for (dask keeps what it returns until the end); the
    others are seen as they finish and released once their dependents are done.
    """
    run = RunResult(workers=workers if scheduler != "sync" else 1)

    def seen(res: Any) -> None:
        res = _small(res)
        for r in res if isinstance(res, tuple) else (res,):  # a chunk's task: one result per stage it ran
            if isinstance(r, StageResult):
                run.results.append(r)
                if on_result is not None:
                    on_result(r)

    wanted = set(keys)
    if scheduler in LOCAL_SCHEDULERS:
        if not keys:
            return run
        from dask.callbacks import Callback

        needed = set().union(*(getattr(t, "dependencies", ()) for t in dsk.values()))
        sinks = [k for k in keys if k not in needed]
        cb = Callback(posttask=lambda key, res, dsk_, state, wid: seen(res) if key in wanted else None)
        with cb:
            _run_local(dsk, sinks, scheduler, workers, warm)
        return run
    return _run_distributed(dsk, keys, scheduler, run, seen, on_wait, cluster_timeout)


def _small(value: Any) -> Any:
    """A task's :class:`StageResult` (its ``.result``), computed beside the value on a cluster worker."""
    return getattr(value, "result", value)


def _run_distributed(dsk, keys, address: str, run: RunResult, seen, on_wait, cluster_timeout) -> RunResult:
    try:
        from distributed import Client, as_completed
    except ImportError as exc:  # pragma: no cover
        raise PipelineError("dask.distributed is not installed", hint="pip install 'dask[distributed]'") from exc
    try:
        client = Client(address, timeout="20s")
    except OSError as exc:
        raise PipelineError(
            f"cannot reach the dask scheduler at {address}: {exc}",
            hint="start it (dask scheduler / dask-jobqueue, see docs/slurm.md) or drop --scheduler",
        ) from None
    try:
        run.workers = len(client.scheduler_info(n_workers=-1)["workers"])
        if keys:
            run.workers = _cluster_workers(client, address, on_wait, cluster_timeout)
            futures = client.get(dict(dsk), list(keys), sync=False)
            # each result is read where its task ran: the arrays never travel to this process
            small = [client.submit(_small, f, pure=False) for f in futures]
            del futures
            for fut in as_completed(small):
                seen(fut.result())
            run.workers = max(run.workers, len(client.scheduler_info(n_workers=-1)["workers"]))
    finally:
        client.close()
    return run


def _cluster_workers(client, address: str, on_wait, timeout: float | None) -> int:
    """The cluster's worker count, waiting for a first worker (saying so once) up to ``timeout`` seconds."""
    n = len(client.scheduler_info(n_workers=-1)["workers"])
    if n:
        return n
    if on_wait is not None:
        wait = "without a limit" if timeout is None else f"for up to {timeout:g} s"
        on_wait(f"the dask cluster at {address} has no workers yet; waiting {wait} (--timeout)")
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError:
        raise PipelineError(
            f"the dask cluster at {address} has no workers after {timeout:g} s",
            hint="start workers (dask worker ADDRESS, or cluster.scale(N)), or raise --timeout",
        ) from None
    return len(client.scheduler_info(n_workers=-1)["workers"])
