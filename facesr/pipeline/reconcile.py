"""Reconcile a build with the store it targets: open or create the store, decide the options the store's
record leaves open, plan the stages, drop what a changed config made stale, and list the pending chunks.

Rules:

* The store never overlaps the dataset: a store path equal to, inside or containing ``--root`` is refused
  (``--overwrite`` there would delete the images).
* ``--overwrite`` replaces only a facesr store (a zarr group whose attributes carry ``schema_version``), or
  an empty folder; anything else at the path is refused and left alone.
* A store built from other records is refused without ``--overwrite``; without a source the store must
  exist, and its recorded ingest, crop and LR sets are reused (LR sets already in it stay planned).
* A stage whose key changed has its markers pruned and its arrays recreated when their shape changed; a
  chunk is pending unless its marker (or, for a store copied without its state folder, the array's own
  ``complete`` record) says it is done under the current key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from facesr.data import schema
from facesr.errors import ConfigError, PipelineError, StoreError, StoreNotFoundError
from facesr.pipeline.graph import Plan, describe, invalidated, plan_build
from facesr.pipeline.hashing import digest, stage_key
from facesr.pipeline.lock import Ledger
from facesr.pipeline.options import BuildOptions, RunOptions, SourceSpec, default_crop
from facesr.pipeline.stages import VERSIONS, Stage

__all__ = ["Reconciled", "check_paths", "is_facesr_store", "read_source", "reconcile"]


@dataclass
class Reconciled:
    """A store ready for the task graph: its plan, the chunks each stage still needs, what went stale."""

    fs: Any  # FaceStore
    ledger: Ledger
    plan: Plan
    records: list | None
    pending: dict[str, set[int]]
    stale: list[str]
    options: BuildOptions


# ------------------------------------------------------------------------------------------ the source


def read_source(source: SourceSpec) -> tuple[list, dict, dict]:
    """``(records, ingest config, source config)`` of a dataset; ``limit`` keeps the split proportions."""
    from facesr.data.sources import limit_records, open_source

    src = open_source(source.dataset, source.root, **dict(source.options))
    records = list(src.records())
    if source.limit is not None:
        records = limit_records(records, int(source.limit))
    if not records:
        raise PipelineError(f"the {source.dataset} source at {source.root} has no records")
    cfg = dict(src.config())
    ingest = {
        "dataset": source.dataset,
        "source": {k: v for k, v in cfg.items() if k not in ("root", "path")},
        "limit": source.limit,
        "records": digest([[r.id, r.split, Path(str(r.path)).name] for r in records]),
        "n": len(records),
    }
    return records, ingest, cfg


def _record_payload(r) -> dict:
    meta = dict(getattr(r, "meta", None) or {})
    keep: dict[str, Any] = {k: np.asarray(meta[k]).tolist() for k in ("landmarks", "box") if meta.get(k) is not None}
    if meta.get("lr_path"):
        keep["lr_path"] = str(meta["lr_path"])
    return {"path": str(r.path), "meta": keep}


# ------------------------------------------------------------------------------------------ path safety


def check_paths(store, root) -> None:
    """ConfigError when the store path is the dataset folder, inside it, or holds it."""
    from facesr.data.storage import locate

    loc = locate(store)
    if not loc.is_local:
        return
    s, r = Path(loc.path).absolute().resolve(), Path(root).absolute().resolve()
    if s == r or r in s.parents or s in r.parents:
        where = "is" if s == r else ("is inside" if r in s.parents else "contains")
        raise ConfigError(f"the store {s} {where} the dataset folder {r}",
                          hint="put the store outside the dataset (e.g. stores/NAME.zarr)", path=str(s))


def is_facesr_store(path) -> bool:
    """Whether ``path`` holds a facesr store: a zarr group whose attributes carry ``schema_version``."""
    from facesr.data.storage import locate

    loc = locate(path)
    if not loc.is_local:
        try:
            from facesr.data.store import FaceStore

            FaceStore.open(path)
            return True
        except StoreError:
            return False
    try:
        meta = json.loads((Path(loc.path) / "zarr.json").read_text())
    except (OSError, ValueError):
        return False
    return meta.get("node_type") == "group" and "schema_version" in (meta.get("attributes") or {})


def _replaceable(path) -> bool:
    """An empty folder or a half-created zarr group (only ``zarr.json``): recreated without ``--overwrite``."""
    p = Path(path)
    return p.is_dir() and all(x.name == "zarr.json" for x in p.iterdir())


def _exists(path) -> bool:
    from facesr.data.storage import locate

    return locate(path).exists()


# ------------------------------------------------------------------------------------------ open / create


def _open_or_create(path, ledger: Ledger, records, ingest_cfg, source_cfg, ikey: str, chunk: int, *,
                    overwrite: bool, crop: str, rep):
    from facesr.data.store import FaceStore

    if _exists(path):
        facesr = is_facesr_store(path)
        if not facesr and not _replaceable(path):
            raise StoreError(f"{path} exists and is not a facesr store; refusing to replace it"
                             + (" (--overwrite deletes only a facesr store)" if overwrite else ""),
                             hint="choose another store path", path=str(path))
        if facesr and not overwrite:
            fs = FaceStore.open(path, mode="r+")
            rec = (fs.attrs.get("pipeline") or {}).get("ingest") or {}
            if rec.get("key") == ikey and fs.n == len(records):
                return fs
            if rec.get("key") not in (None, ikey):
                raise StoreError(
                    f"{path} was built from other records ({rec.get('config', {}).get('dataset')}, "
                    f"{rec.get('config', {}).get('n')} samples)",
                    hint="pass --overwrite to rebuild it, or choose another store path", path=str(path))
            rep.message(f"{path} is an unfinished store: recreating it")
    ledger.clear()
    fs = FaceStore.create(path, ids=[r.id for r in records], splits=[r.split for r in records],
                          attrs={"source": json.loads(json.dumps(source_cfg, default=str)), "crop": crop},
                          chunk=int(chunk), overwrite=True)
    fs.update_attrs(pipeline={"ingest": {"name": "ingest", "key": ikey, "deps": [], "config": ingest_cfg,
                                         "outputs": [schema.IDS.name, schema.SPLIT.name], "complete": True}})
    ledger.mark("ingest", ikey, 0, {"n": len(records)})
    return fs


def _lr_files(records, opts: BuildOptions, recorded_crop: Mapping[str, Any]) -> dict | None:
    """For a source with LR files (``pairs``): the LR spec they are stored under — the ``--lr`` spec of their
    size, else ``bicubic-pil`` at their size (the DIC convention, checked bit for bit by the crop stage)."""
    if records is None:
        prev = recorded_crop.get("lr_files")
        return None if prev is None else {"spec": prev["spec"]}
    first = next((r for r in records if (r.meta or {}).get("lr_path")), None)
    if first is None:
        return None
    from facesr.data.degrade import LRSpec
    from facesr.data.images import image_size

    w, h = image_size(first.meta["lr_path"])
    for spec in opts.lr:
        if LRSpec.parse(spec).size == w:
            return {"spec": spec}
    return {"spec": str(LRSpec("bicubic-pil", int(w)))}


def _pending_chunks(fs, ledger: Ledger, st: Stage, rec_keys: Mapping[str, str]) -> set[int]:
    nchunks = len(fs.chunk_slices())
    arrs = [o.name for o in st.outputs if o.stored]
    # without markers (a copied store) the arrays' own completion record decides
    trusted = rec_keys.get(st.name) == st.key and bool(arrs) and all(
        a in fs and fs.array(a).attrs.get("complete") and fs.array(a).attrs.get("stage_key") == st.key for a in arrs
    )
    return set(range(nchunks)) - ledger.committed(st.name, st.key, nchunks, trusted)


def _prepare_arrays(fs, ledger: Ledger, plan: Plan) -> None:
    """Drop stale markers and mismatching arrays, create outputs, stamp provenance attrs."""
    for st in plan:
        if not st.per_chunk:
            continue
        ledger.prune(st.name, st.key)
        for o in st.outputs:
            if not o.stored:
                continue
            attrs = {"stage": st.name, "stage_key": st.key, "complete": False, **dict(st.attrs)}
            if o.name in fs:
                arr = fs.array(o.name)
                same = tuple(arr.shape) == (fs.n, *o.tail) and str(arr.dtype) == o.dtype
                if arr.attrs.get("stage_key") == st.key and same:
                    continue  # resuming this very stage: keep the attrs as they are
                if not same:
                    fs.delete(o.name)
            fs.require(o.spec, o.tail, o.dtype, attrs=attrs)


# ------------------------------------------------------------------------------------------ reconcile


def reconcile(path, options: BuildOptions, source: SourceSpec | None, run: RunOptions, rep) -> Reconciled:
    """Open or create the store at ``path`` and plan what this build must still compute (module docstring)."""
    from facesr.data.store import DEFAULT_CHUNK, FaceStore

    ledger = Ledger(path)
    records = None
    if source is not None:
        records, ingest_cfg, source_cfg = read_source(source)
        ikey = stage_key("ingest", VERSIONS["ingest"], ingest_cfg, {})
        fs = _open_or_create(path, ledger, records, ingest_cfg, source_cfg, ikey, options.chunk or DEFAULT_CHUNK,
                             overwrite=run.overwrite, crop=options.crop or default_crop(source.dataset), rep=rep)
    else:
        if not _exists(path):
            raise StoreNotFoundError(f"no store at {path}", hint="pass --dataset NAME --root DIR to create it",
                                     path=str(path))
        fs = FaceStore.open(path, mode="r+")
    recorded = dict(fs.attrs.get("pipeline", {}))
    if records is None:
        ingest_cfg = (recorded.get("ingest") or {}).get("config")
        if ingest_cfg is None:
            raise StoreError(f"{path} was not built by the facesr pipeline (no ingest record)",
                             hint="rebuild it with --dataset NAME --root DIR", path=str(path))
    rec_crop = (recorded.get("crop") or {}).get("config") or {}
    crop = options.crop or rec_crop.get("method") or default_crop(ingest_cfg.get("dataset"))
    crop_options = options.crop_options
    if crop_options is None:
        crop_options = rec_crop.get("options", {}) if crop == rec_crop.get("method") else {}
    lr = list(options.lr)
    for name, entry in recorded.items():  # LR sets already in the store stay planned
        spec = entry.get("config", {}).get("spec") if name.startswith("degrade/") else None
        if spec and spec not in lr:
            lr.append(spec)
    opts = replace(options, crop=crop, crop_options=dict(crop_options), size=fs.hr_size, lr=tuple(lr))
    plan = plan_build(opts, ingest_cfg, weights_dir=run.weights_dir, lr_files=_lr_files(records, opts, rec_crop))
    rec_keys = {k: v.get("key") for k, v in recorded.items()}
    stale = [s for s in invalidated(plan, rec_keys) if s in rec_keys]
    if stale:
        rep.message("config changed for: " + ", ".join(stale) + " (recomputed with their downstream stages)")
    if records is None and _pending_chunks(fs, ledger, plan["crop"], rec_keys):
        raise PipelineError(f"{path}: the crop stage is not complete for this config and no dataset was given",
                            hint="pass --dataset NAME --root DIR (the images are needed to crop)")
    _prepare_arrays(fs, ledger, plan)
    new_record = dict(recorded)
    for entry in describe(plan):
        prev = recorded.get(entry["name"], {})
        entry["complete"] = bool(prev.get("complete")) and prev.get("key") == entry["key"]
        new_record[entry["name"]] = entry
    from facesr.data.degrade import LRSpec

    given = plan["crop"].config.get("lr_files")
    lr_specs = list(dict.fromkeys([*([given["spec"]] if given else []), *opts.lr]))
    fs.update_attrs(pipeline=new_record, crop=opts.crop, lr=[LRSpec.parse(x).name for x in lr_specs])
    ledger.mark("ingest", plan["ingest"].key, 0, {"n": fs.n})
    pending = {st.name: _pending_chunks(fs, ledger, st, rec_keys) for st in plan if st.per_chunk}
    payload = None if records is None else [_record_payload(r) for r in records]
    return Reconciled(fs, ledger, plan, payload, pending, stale, opts)


def pending_rows(fs, pending: Sequence[int]) -> int:
    slices = fs.chunk_slices()
    return sum(slices[i].stop - slices[i].start for i in pending)
