"""Build a store: ``build_store`` (all stages + verify) and ``prepare_store`` (ingest → crop → degrade).

::

    build_store("stores/celeba.zarr", BuildOptions(lr=("bicubic-pil:16",)),
                source=SourceSpec("celeba", "/data/celeba"), run=RunOptions(workers=2))

A build holds the store's lock throughout (a second build waits, then finds everything done; leaving the
lock commits a snapshot, :mod:`facesr.pipeline.lock`) and runs in three steps:

1. **reconcile** (:mod:`facesr.pipeline.reconcile`): open or create the store, plan the stages, drop the
   markers of stale keys, create the output arrays with their provenance attributes, list pending chunks;
2. **task graph** (:mod:`facesr.pipeline.tasks`, run by :mod:`facesr.pipeline.runner`): every pending
   (stage, chunk) in one dask graph, data passed along its edges; committed chunks are skipped, so an
   interrupted build resumes;
3. **commit** (:func:`commit`): mark arrays and stages complete in the store's record, then verify.

Group attribute ``pipeline`` records the plan (stage → key, config, deps, outputs) so that
``facesr priors status`` can tell done from pending without the build options; each output array's
attributes carry ``stage``, ``stage_key``, ``complete`` and the provider/preset/weights used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from facesr.pipeline.lock import StoreLock
from facesr.pipeline.options import BuildOptions, RunOptions, SourceSpec
from facesr.pipeline.reconcile import Reconciled, check_paths, pending_rows, reconcile
from facesr.pipeline.runner import run_graph
from facesr.pipeline.stages import StageResult
from facesr.pipeline.status import pipeline_status
from facesr.pipeline.tasks import task_graph

__all__ = ["BuildOptions", "BuildReport", "Reporter", "RunOptions", "SourceSpec", "build_store", "commit",
           "pipeline_status", "prepare_store"]


class Reporter(Protocol):
    """Where a build tells its progress (the CLI renders it with rich; the library never prints)."""

    def begin(self, stages: Sequence[tuple[str, int, int]]) -> None:
        """``(stage, total rows, rows already done)`` for each per-chunk stage, in plan order."""

    def advance(self, result: StageResult) -> None: ...

    def message(self, text: str) -> None: ...


class _Quiet:
    def begin(self, stages) -> None:
        pass

    def advance(self, result) -> None:
        pass

    def message(self, text) -> None:
        pass


@dataclass
class BuildReport:
    """What a build did: per stage rows computed/skipped and time; the verify report when run.

    ``workers`` is the number that ran the tasks (a dask cluster's real worker count)."""

    store: str
    n: int
    chunk: int
    scheduler: str
    workers: int
    seconds: float
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    invalidated: list[str] = field(default_factory=list)
    verify: dict[str, Any] | None = None
    failures: int = 0
    checks: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _absolute(path) -> str:
    """A local store path made absolute (workers may run elsewhere); a URL as given."""
    from facesr.data.storage import locate

    loc = locate(path)
    return str(Path(loc.path).absolute()) if loc.is_local else str(loc)


def build_store(
    path: str | os.PathLike,
    options: BuildOptions | None = None,
    *,
    source: SourceSpec | None = None,
    run: RunOptions | None = None,
    reporter: Reporter | None = None,
) -> BuildReport:
    """Build (or finish, or extend) the store at ``path``; see the module docstring.

    With ``source`` the store is created when absent (or replaced with ``run.overwrite``); an existing
    store built from other records is refused. Without it the store must exist and its recorded ingest,
    crop and LR sets are reused.
    """
    options = options or BuildOptions()
    run = (run or RunOptions()).resolved()
    source = source.resolved() if source is not None else None
    rep = reporter or _Quiet()
    t0 = time.perf_counter()
    where = _absolute(path)
    if source is not None:
        check_paths(where, source.root)
    with StoreLock(where, timeout=run.lock_timeout, on_wait=rep.message):
        rc = reconcile(where, options, source, run, rep)
        stats, ran = _run_tasks(where, rc, run, rep)
        report = commit(rc, stats, ran, run, priors=options.priors)
    report.seconds = round(time.perf_counter() - t0, 3)
    return report


def prepare_store(path: str | os.PathLike, options: BuildOptions | None = None, *, source: SourceSpec,
                  run: RunOptions | None = None, reporter: Reporter | None = None) -> BuildReport:
    """``facesr data prepare``: ingest, crop and degrade only (no priors, no verify)."""
    options = replace(options or BuildOptions(), priors=False)
    return build_store(path, options, source=source, run=replace(run or RunOptions(), verify=False),
                       reporter=reporter)


def _run_tasks(where: str, rc: Reconciled, run: RunOptions, rep) -> tuple[dict, Any]:
    """Step 2: the task graph of every pending chunk, run with progress; returns (per-stage stats, run)."""
    fs, plan = rc.fs, rc.plan
    stats: dict[str, dict[str, Any]] = {}
    totals = []
    for st in plan:
        if not st.per_chunk:
            continue
        done_rows = fs.n - pending_rows(fs, rc.pending[st.name])
        totals.append((st.name, fs.n, done_rows))
        stats[st.name] = {"key": st.key, "rows": 0, "chunks": 0, "seconds": 0.0, "skipped_rows": done_rows}
    dsk, keys = task_graph(where, plan, rc.pending, fs.chunk_slices(), rc.records)
    rep.begin(totals)

    def on_result(res: StageResult) -> None:
        s = stats[res.stage]
        if res.skipped:
            s["skipped_rows"] += res.n
        else:
            s["rows"] += res.n
            s["chunks"] += 1
            s["seconds"] += res.seconds
            s["cpu_s"] = s.get("cpu_s", 0.0) + res.cpu
        rep.advance(res)

    # the landmarker every pending landmark chunk needs, loaded once before the workers fork
    warm = [("landmarker", st.config["name"], st.config["options"], run.weights_dir)
            for st in plan if st.name == "landmarks" and rc.pending.get(st.name)]
    t_run = time.perf_counter()
    ran = run_graph(dsk, keys, scheduler=run.scheduler, workers=run.workers, on_result=on_result,
                    on_wait=rep.message, cluster_timeout=run.cluster_timeout, warm=warm)
    stats["_run"] = {"seconds": round(time.perf_counter() - t_run, 3)}
    return stats, ran


def _lr_files_check(rc: Reconciled) -> dict[str, int]:
    """For a source with LR files: how many differ from their spec, summed over every chunk's marker (this
    run's and earlier ones'), recorded in the LR array's attributes."""
    crop = rc.plan["crop"]
    given = crop.config.get("lr_files")
    if given is None:
        return {}
    nchunks = len(rc.fs.chunk_slices())
    differ = sum(int(rc.ledger.info("crop", crop.key, i).get("lr_files_differ", 0)) for i in range(nchunks))
    rc.fs.array(given["array"]).attrs.update({"lr_files": {**crop.attrs["lr_files"], "differ_from_spec": differ}})
    return {"lr_files_differ": differ}


def commit(rc: Reconciled, stats: dict, ran, run: RunOptions, *, priors: bool) -> BuildReport:
    """Step 3: mark every planned array and stage complete, then run ``verify`` (when asked) into the record."""
    fs, plan = rc.fs, rc.plan
    for st in plan:
        for o in st.outputs if st.per_chunk else ():
            if o.stored and o.name in fs:
                fs.array(o.name).attrs.update({"complete": True})
    final = dict(fs.attrs.get("pipeline", {}))
    for name in plan.names():
        if name != "verify":
            final[name] = {**final[name], "complete": True}
    fs.update_attrs(pipeline=final)
    checks = _lr_files_check(rc)
    seconds = stats["_run"]["seconds"]
    for name, s in stats.items():
        if not name.startswith("_"):
            s["images_per_s"] = round(s["rows"] / s["seconds"], 2) if s["seconds"] > 0 else None
    stats["_run"]["images_per_s"] = round(fs.n / seconds, 2) if seconds > 0 else None
    report = BuildReport(store=str(fs.path), n=fs.n, chunk=fs.chunk, scheduler=run.scheduler,
                         workers=int(ran.workers or run.workers), seconds=0.0, stages=stats, invalidated=rc.stale,
                         failures=int((~fs.valid()).sum()), checks=checks)
    verify = run.verify if run.verify is not None else priors
    if verify and "verify" in plan:
        from facesr.pipeline.verify import verify_store

        vr = verify_store(fs, plan=plan, ledger=rc.ledger, strict=run.strict, min_usable=run.min_usable)
        vr["stage_key"] = plan["verify"].key
        fs.update_attrs(verify=vr)
        final = dict(fs.attrs["pipeline"])
        final["verify"] = {**final["verify"], "complete": True, "ok": vr["ok"]}
        fs.update_attrs(pipeline=final)
        report.verify = vr
    return report
