"""Build a store: ``prepare_store`` (ingest → crop → degrade) and ``build_store`` (all stages + verify).

Both hold the store's lock for the whole build (a second build waits, then finds everything done), plan
the stages (:mod:`facesr.pipeline.graph`), drop the commit markers of stale keys, create the output
arrays with their provenance attributes, and run every pending (stage, chunk) task in one dask graph
(:mod:`facesr.pipeline.runner`). Interrupted builds resume: committed chunks are skipped.

Group attribute ``pipeline`` records the plan (stage → key, config, deps, outputs) so that
``facesr priors status`` can tell done from pending without the build options; each output array's
attributes carry ``stage``, ``stage_key``, ``complete`` and the provider/preset/weights used.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from facesr.errors import ConfigError, PipelineError, StoreError
from facesr.pipeline.graph import BuildOptions, Plan, describe, invalidated, plan_build
from facesr.pipeline.hashing import digest, stage_key
from facesr.pipeline.lock import Ledger, StoreLock, state_dir
from facesr.pipeline.runner import LOCAL_SCHEDULERS, Payload, execute, run_graph
from facesr.pipeline.stages import Stage, StageResult

__all__ = ["BuildReport", "Reporter", "build_store", "prepare_store", "pipeline_status"]


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
    """What a build did: per stage rows computed/skipped and time; the verify report when run."""

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

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


# ----------------------------------------------------------------------------------------- helpers


def _lr_names(specs: Sequence[str]) -> dict[str, tuple[str, int]]:
    if not specs:
        return {}
    from facesr.data.degrade import LRSpec

    out = {}
    for spec in specs:
        parsed = LRSpec.parse(spec)
        out[spec] = (parsed.name, parsed.size)
    return out


def _parse_lr(lr: str | Sequence[str] | None) -> list[str]:
    """LR specs from ``"a:16,b:32"`` or a list of such, normalised to ``METHOD:SIZE`` and deduplicated."""
    if lr is None:
        return []
    from facesr.data.degrade import LRSpec

    items = (x.strip() for item in ([lr] if isinstance(lr, str) else lr) for x in str(item).split(","))
    return list(dict.fromkeys(str(LRSpec.parse(x)) for x in items if x))


def _records(dataset: str, root: str | os.PathLike, source_options: Mapping[str, Any] | None, limit: int | None):
    from facesr.data.sources import open_source

    src = open_source(dataset, root, **dict(source_options or {}))
    records = list(src.records())
    if limit is not None:
        if limit < 1:
            raise ConfigError(f"--limit must be positive, got {limit}")
        records = records[: int(limit)]
    if not records:
        raise PipelineError(f"the {dataset} source at {root} has no records")
    cfg = dict(src.config())
    hashed_cfg = {k: v for k, v in cfg.items() if k not in ("root", "path")}
    ingest = {
        "dataset": dataset,
        "source": hashed_cfg,
        "limit": limit,
        "records": digest([[r.id, r.split, Path(str(r.path)).name] for r in records]),
        "n": len(records),
    }
    return records, ingest, cfg


def _record_payload(r) -> dict:
    meta = dict(getattr(r, "meta", None) or {})
    keep = {}
    for k in ("landmarks", "box"):
        if meta.get(k) is not None:
            keep[k] = np.asarray(meta[k]).tolist()
    return {"path": str(r.path), "meta": keep}


def _default_scheduler(workers: int) -> str:
    return "processes" if workers > 1 else "sync"


# ----------------------------------------------------------------------------------------- build


def build_store(
    store: str | os.PathLike,
    *,
    dataset: str | None = None,
    root: str | os.PathLike | None = None,
    source_options: Mapping[str, Any] | None = None,
    crop: str | None = None,
    crop_options: Mapping[str, Any] | None = None,
    lr: str | Sequence[str] | None = None,
    limit: int | None = None,
    chunk: int | None = None,
    priors: bool = True,
    detector: str = "landmarks",
    detector_options: Mapping[str, Any] | None = None,
    parser: str = "landmarks",
    parser_options: Mapping[str, Any] | None = None,
    heatmap: str = "paper",
    heatmap_overrides: Mapping[str, Any] | None = None,
    landmarker: Mapping[str, Any] | None = None,
    weights_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    debug: bool = False,
    verify: bool | None = None,
    overwrite: bool = False,
    lock_timeout: float | None = None,
    reporter: Reporter | None = None,
) -> BuildReport:
    """Build (or finish, or extend) the store at ``store``; see the module docstring.

    With ``dataset``/``root`` the store is created when absent (or when ``overwrite``); an existing store
    built from other records is refused. Without them the store must exist and its recorded ingest/crop
    are reused (``--crop`` must then match). ``lr``: specs like ``"bicubic-pil:16,bicubic-pil:32"``;
    LR arrays already in the store stay planned. ``scheduler``: ``sync``/``threads``/``processes`` or a
    dask.distributed address; default ``processes`` for ``workers > 1`` (``sync`` with ``debug``).
    """
    from facesr.data.store import DEFAULT_CHUNK, FaceStore

    rep = reporter or _Quiet()
    t0 = time.perf_counter()
    path = Path(store)
    workers = int(workers or os.cpu_count() or 1)
    if debug:
        scheduler = "sync"
    scheduler = scheduler or _default_scheduler(workers)
    if scheduler not in LOCAL_SCHEDULERS and "://" not in scheduler:
        raise ConfigError(f"unknown scheduler {scheduler!r}", hint="sync, threads, processes or tcp://host:port")
    if verify is None:
        verify = priors
    if dataset is not None and root is None:
        raise ConfigError("--dataset needs --root (the dataset folder)")
    # bad options fail here, before a store is (re)created with --overwrite
    lr_specs = _parse_lr(lr)
    if crop is not None:
        from facesr.data.crop import check_options

        check_options(crop, crop_options or {})

    with StoreLock(path, timeout=lock_timeout, on_wait=rep.message):
        ledger = Ledger(path)
        records = None
        if dataset is not None:
            records, ingest_cfg, source_cfg = _records(dataset, root, source_options, limit)
            ikey = stage_key("ingest", 1, ingest_cfg, {})
            fs = _open_or_create(path, ledger, records, ingest_cfg, source_cfg, ikey, chunk or DEFAULT_CHUNK,
                                 overwrite=overwrite, crop=crop or "aligned", rep=rep)
        else:
            if not path.exists():
                raise StoreError(f"no store at {path}", hint="pass --dataset NAME --root DIR to create it")
            fs = FaceStore.open(path, mode="r+")
        recorded = fs.attrs.get("pipeline", {})
        if records is None:
            ingest_cfg = (recorded.get("ingest") or {}).get("config")
            if ingest_cfg is None:
                raise StoreError(f"{path} was not built by the facesr pipeline (no ingest record)",
                                 hint="rebuild it with --dataset NAME --root DIR")
        rec_crop = (recorded.get("crop") or {}).get("config") or {}
        if crop is None:
            crop = rec_crop.get("method", "aligned")
            if crop_options is None:
                crop_options = rec_crop.get("options")
        for name, entry in recorded.items():  # LR sets already in the store stay planned
            if name.startswith("degrade/") and entry.get("config", {}).get("spec") not in lr_specs:
                lr_specs.append(entry["config"]["spec"])
        opts = BuildOptions(
            crop=crop, crop_options=dict(crop_options or {}), size=fs.hr_size, lr=tuple(lr_specs), priors=priors,
            landmarker=landmarker, detector=detector, detector_options=dict(detector_options or {}),
            parser=parser, parser_options=dict(parser_options or {}), heatmap=heatmap,
            heatmap_overrides=dict(heatmap_overrides or {}), weights_dir=str(weights_dir) if weights_dir else None,
        )
        lr_names = _lr_names(opts.lr)
        plan = plan_build(opts, ingest_cfg, lr_names)
        # keep recorded stages this build does not plan (e.g. priors when running `data prepare` again)
        rec_keys = {k: v.get("key") for k, v in recorded.items()}
        stale = [s for s in invalidated(plan, rec_keys) if s in rec_keys]
        if stale:
            rep.message("config changed for: " + ", ".join(stale) + " (recomputed with their downstream stages)")
        if records is None and _pending_chunks(fs, ledger, plan["crop"], rec_keys):
            raise PipelineError(
                f"{path}: the crop stage is not complete for this config and no dataset was given",
                hint="pass --dataset NAME --root DIR (the images are needed to crop)",
            )
        _prepare_arrays(fs, ledger, plan, rec_keys)
        new_record = dict(recorded)
        for entry in describe(plan):
            prev = recorded.get(entry["name"], {})
            entry["complete"] = bool(prev.get("complete")) and prev.get("key") == entry["key"]
            new_record[entry["name"]] = entry
        fs.update_attrs(pipeline=new_record, crop=opts.crop, lr=[lr_names[x][0] for x in opts.lr])

        # ---------------------------------------------------------------- the task graph
        slices = fs.chunk_slices()
        dsk: dict = {}
        pending: dict[str, set[int]] = {}
        stats: dict[str, dict[str, Any]] = {}
        totals = []
        ledger.mark("ingest", plan["ingest"].key, 0, {"n": fs.n})
        for st in plan:
            if not st.per_chunk:
                continue
            todo = _pending_chunks(fs, ledger, st, rec_keys)
            pending[st.name] = todo
            done_rows = fs.n - sum(slices[i].stop - slices[i].start for i in todo)
            totals.append((st.name, fs.n, done_rows))
            stats[st.name] = {"key": st.key, "rows": 0, "chunks": 0, "seconds": 0.0, "skipped_rows": done_rows}
            for i in sorted(todo):
                sl = slices[i]
                extra = None
                if st.fn == "crop":
                    extra = Payload([_record_payload(r) for r in records[sl]])
                deps = [(d, i) for d in st.deps if i in pending.get(d, ())]
                dsk[(st.name, i)] = (execute, str(path), st, i, sl.start, sl.stop, extra, *deps)
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

        t_run = time.perf_counter()
        run_graph(dsk, list(dsk), scheduler=scheduler, workers=workers, on_result=on_result)
        run_seconds = time.perf_counter() - t_run

        # ---------------------------------------------------------------- commit the record
        for st in plan:
            if st.per_chunk:
                for o in st.outputs:
                    if o.dtype != "str" and o.name in fs:
                        fs.array(o.name).attrs.update({"complete": True})
        final = dict(fs.attrs.get("pipeline", {}))
        for name in plan.names():
            if name != "verify":
                final[name] = {**final[name], "complete": True}
        fs.update_attrs(pipeline=final)
        for s in stats.values():
            s["images_per_s"] = round(s["rows"] / s["seconds"], 2) if s["seconds"] > 0 else None
        report = BuildReport(
            store=str(path), n=fs.n, chunk=fs.chunk, scheduler=scheduler, workers=workers,
            seconds=0.0, stages=stats, invalidated=stale, failures=int((~fs.valid()).sum()),
        )
        report.stages["_run"] = {"seconds": round(run_seconds, 3),
                                 "images_per_s": round(fs.n / run_seconds, 2) if run_seconds > 0 else None}
        if verify and "verify" in plan:
            from facesr.pipeline.verify import verify_store

            vr = verify_store(fs, plan=plan, ledger=ledger)
            vr["stage_key"] = plan["verify"].key
            fs.update_attrs(verify=vr)
            final = dict(fs.attrs["pipeline"])
            final["verify"] = {**final["verify"], "complete": True, "ok": vr["ok"]}
            fs.update_attrs(pipeline=final)
            report.verify = vr
        report.seconds = round(time.perf_counter() - t0, 3)
        return report


def prepare_store(
    out: str | os.PathLike,
    *,
    dataset: str,
    root: str | os.PathLike,
    crop: str = "aligned",
    lr: str | Sequence[str] | None = None,
    chunk: int | None = None,
    limit: int | None = None,
    **kwargs: Any,
) -> BuildReport:
    """``facesr data prepare``: ingest, crop and degrade only (no priors, no verify)."""
    return build_store(out, dataset=dataset, root=root, crop=crop, lr=lr, chunk=chunk, limit=limit, priors=False,
                       verify=False, **kwargs)


def _open_or_create(path: Path, ledger: Ledger, records, ingest_cfg, source_cfg, ikey: str, chunk: int, *,
                    overwrite: bool, crop: str, rep: Reporter):
    from facesr.data.store import FaceStore

    ingest_done = ledger.is_done("ingest", ikey, 0)
    if path.exists() and not overwrite:
        if ingest_done:
            fs = FaceStore.open(path, mode="r+")
            if fs.n == len(records):
                return fs
        try:
            fs = FaceStore.open(path, mode="r")
            rec = (fs.attrs.get("pipeline") or {}).get("ingest")
        except StoreError:
            # only an empty folder or a half-created zarr group may be recreated without --overwrite
            if path.is_dir() and any(p.name != "zarr.json" for p in path.iterdir()):
                raise StoreError(f"{path} exists and is not a facesr store",
                                 hint="choose another path, or pass --overwrite to replace it") from None
            rec = None
        if rec is not None and rec.get("key") != ikey:
            raise StoreError(
                f"{path} was built from other records ({rec.get('config', {}).get('dataset')}, "
                f"{rec.get('config', {}).get('n')} samples)",
                hint="pass --overwrite to rebuild it, or choose another store path",
            )
        rep.message(f"{path} is an unfinished store: recreating it")
    ledger.clear()
    fs = FaceStore.create(
        path,
        ids=[r.id for r in records],
        splits=[r.split for r in records],
        attrs={"source": _jsonable(source_cfg), "crop": crop},
        chunk=int(chunk),
        overwrite=True,
    )
    fs.update_attrs(pipeline={"ingest": {"name": "ingest", "key": ikey, "deps": [], "outputs": ["ids", "split"],
                                         "config": ingest_cfg, "complete": True}})
    ledger.mark("ingest", ikey, 0, {"n": len(records)})
    return fs


def _jsonable(obj):
    import json

    return json.loads(json.dumps(obj, default=str))


def _pending_chunks(fs, ledger: Ledger, st: Stage, rec_keys: Mapping[str, str]) -> set[int]:
    nchunks = len(fs.chunk_slices())
    arrs = [o.name for o in st.outputs if o.dtype != "str"]
    # without markers (a copied store) the arrays' own completion record decides
    trusted = rec_keys.get(st.name) == st.key and bool(arrs) and all(
        a in fs and fs.array(a).attrs.get("complete") and fs.array(a).attrs.get("stage_key") == st.key for a in arrs
    )
    return set(range(nchunks)) - ledger.committed(st.name, st.key, nchunks, trusted)


def _prepare_arrays(fs, ledger: Ledger, plan: Plan, rec_keys: Mapping[str, str]) -> None:
    """Drop stale markers and mismatching arrays, create outputs, stamp provenance attrs."""
    for st in plan:
        if not st.per_chunk:
            continue
        ledger.prune(st.name, st.key)
        for o in st.outputs:
            if o.dtype == "str":
                continue
            attrs = {"stage": st.name, "stage_key": st.key, "complete": False, **dict(st.attrs)}
            if o.name in fs:
                arr = fs.array(o.name)
                same = tuple(arr.shape) == (fs.n, *o.tail) and str(arr.dtype) == o.dtype
                if arr.attrs.get("stage_key") == st.key and same:
                    continue  # resuming this very stage: keep the attrs as they are
                if not same:
                    fs.delete(o.name)
            fs.require(o.name, o.tail, o.dtype, attrs=attrs)


def pipeline_status(store: str | os.PathLike) -> dict[str, Any]:
    """Per stage: key, chunks done/total (from the markers), complete flag; for ``facesr priors status``."""
    from facesr.data.store import FaceStore

    fs = FaceStore.open(store)
    ledger = Ledger(store)
    rec = fs.attrs.get("pipeline", {})
    nchunks = len(fs.chunk_slices())
    out: dict[str, Any] = {"store": str(store), "n": fs.n, "chunk": fs.chunk, "chunks": nchunks,
                           "state_dir": str(state_dir(store)), "stages": {}}
    for name, entry in rec.items():
        key = entry.get("key", "")
        if name in ("ingest", "verify"):
            total = 1
            done_idx = {0} if entry.get("complete") else set()
        else:
            total = nchunks
            done_idx = ledger.committed(name, key, nchunks, bool(entry.get("complete")))
        out["stages"][name] = {
            "key": key,
            "done": len(done_idx),
            "total": total,
            "pending": [i for i in range(total) if i not in done_idx],
            "complete": len(done_idx) == total,
            "deps": entry.get("deps", []),
            "outputs": entry.get("outputs", []),
        }
    v = fs.attrs.get("verify")
    if v:
        out["verify"] = {"ok": v.get("ok"), "stage_key": v.get("stage_key")}
    return out
