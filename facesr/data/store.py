"""The facesr store: one zarr v3 group per dataset build, laid out by :mod:`facesr.data.schema`.

Everyone asks :class:`FaceStore` for arrays through the schema's specs (``fs.read(schema.HR, sel)``,
``fs.require(schema.HEATMAP)``, ``fs.heatmap(sel)``); the array names, dimensions, dtypes and codecs are
the schema's. All arrays are chunked along ``sample`` by ``chunk`` rows and whole along the rest; every
chunk carries a CRC32C checksum (:func:`facesr.data.schema.codec_chain`); every array carries its
``dimension_names``, so ``xr.open_zarr`` / :meth:`FaceStore.to_xarray` name its dimensions.

Group attributes: ``schema_version``, ``facesr_version``, ``source``, ``crop``, ``lr``, ``chunk``,
``hr_size``, ``codecs``, ``created``; each array's attributes name its producer (provider, preset, weights).
Everything is lossless. A store with an unknown ``schema_version`` is refused with
:class:`~facesr.errors.SchemaVersionError`.

Where: a local folder, a ``file://`` URL or any fsspec URL (:mod:`facesr.data.storage`); ``None`` is an
in-memory store (tests, the demo's scratch work). Consistency (:mod:`facesr.data.snapshots`): a build
commits a snapshot when it ends (:meth:`FaceStore.commit`, which also writes consolidated metadata);
``FaceStore.open(path, snapshot="latest")`` — what training and evaluation use — reads that immutable
snapshot, and refuses a store whose build is running or was interrupted (:class:`StoreIncompleteError`).
"""

from __future__ import annotations

import datetime as _dt
from collections import Counter
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from facesr import __version__
from facesr.data import schema, snapshots
from facesr.data.schema import CODECS, ArraySpec
from facesr.data.storage import Location, locate
from facesr.errors import (SchemaVersionError, StoreCorruptError, StoreError, StoreIncompleteError,
                           StoreNotFoundError)

SCHEMA_VERSION = 1
HR_SIZE = 128
DEFAULT_CHUNK = 256
SPLITS = ("train", "val", "test")

__all__ = ["CODECS", "DEFAULT_CHUNK", "FaceStore", "HR_SIZE", "SCHEMA_VERSION", "SPLITS", "StoreInfo"]

Name = ArraySpec | str


def _key(spec: Name) -> str:
    return spec.name if isinstance(spec, ArraySpec) else str(spec)


@dataclass(frozen=True)
class StoreInfo:
    """What ``facesr data info`` shows (its ``--json`` output is :meth:`as_dict`)."""

    path: str
    n: int
    chunk: int
    chunks: int
    splits: dict[str, dict[str, int]]  # split → {"samples": …, "usable": …}
    failures: int
    failure_reasons: list[dict[str, Any]]  # {"reason", "count", "first_id"}, most common first
    arrays: dict[str, dict[str, Any]]  # name → shape, dims, dtype, chunks, codec, stored/raw bytes, ratio, attrs
    attrs: dict[str, Any]
    snapshot_id: str | None  # the snapshot this handle reads (None: the live store)
    snapshots: list[dict[str, Any]]  # complete snapshots, oldest first
    building: dict[str, Any] | None  # the marker of a running or interrupted build

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class FaceStore:
    """A handle on one store. Construct with :meth:`create` or :meth:`open`."""

    def __init__(self, group: zarr.Group, loc: Location | None, *, root: Location | None = None,
                 snapshot_id: str | None = None, pin: Any = None) -> None:
        self._group = group
        self.location = loc  # where the user said the store is (None: memory)
        self._root = root or loc  # what this handle reads (a snapshot folder, or the store itself)
        self.snapshot_id = snapshot_id
        self._pin = pin
        self._ids: np.ndarray | None = None
        self._split: np.ndarray | None = None

    @property
    def path(self) -> Path | str | None:
        """The store's local path, its URL, or None in memory."""
        if self.location is None:
            return None
        return self.location.path if self.location.is_local else self.location.url

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        path: str | os.PathLike | None,
        *,
        ids: Sequence[str],
        splits: Sequence[str],
        attrs: Mapping[str, Any] | None = None,
        chunk: int = DEFAULT_CHUNK,
        hr_size: int = HR_SIZE,
        overwrite: bool = False,
        storage_options: Mapping[str, Any] | None = None,
    ) -> FaceStore:
        """Create a store for ``len(ids)`` samples with ``ids``, ``split``, ``failure`` and an empty ``hr``."""
        ids_arr = np.asarray(list(ids), dtype=str)
        split_arr = np.asarray(list(splits), dtype=str)
        if ids_arr.ndim != 1 or len(ids_arr) == 0:
            raise StoreError("a store needs at least one sample id")
        if len(split_arr) != len(ids_arr):
            raise StoreError(f"{len(ids_arr)} ids but {len(split_arr)} split labels")
        if len(np.unique(ids_arr)) != len(ids_arr):
            dup = next(i for i, c in Counter(ids_arr.tolist()).items() if c > 1)
            raise StoreError(f"sample ids must be unique; {dup!r} appears twice")
        bad = sorted(set(split_arr.tolist()) - set(SPLITS))
        if bad:
            raise StoreError(f"unknown split label(s) {bad}; expected {SPLITS}")
        if chunk < 1:
            raise StoreError(f"chunk must be positive, got {chunk}")

        loc = None if path is None else locate(path, dict(storage_options or {}))
        if loc is None:
            zstore = zarr.storage.MemoryStore()
        else:
            if loc.exists():
                if not overwrite:
                    raise StoreError(f"{loc} already exists", hint="pass --overwrite, or choose another --store")
                if not (loc.has("zarr.json") or (loc.is_local and loc.path.is_dir() and not any(loc.path.iterdir()))):
                    raise StoreError(f"{loc} is not a zarr store; --overwrite deletes only a store",
                                     hint="choose another --store", path=str(loc))
                loc.remove()
            zstore = loc.zarr_store(read_only=False)
        group = zarr.open_group(zstore, mode="w", zarr_format=3)
        n = len(ids_arr)
        group.attrs.update({
            "schema_version": SCHEMA_VERSION,
            "facesr_version": __version__,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "chunk": int(chunk),
            "hr_size": int(hr_size),
            "codecs": {k: schema.codec_repr(schema.codec_chain(k)) for k in ("image", "float", "dense")},
            **dict(attrs or {}),
        })
        store = cls(group, loc)
        store._new(schema.IDS, (n,), str, chunks=(n,))[:] = ids_arr
        store._new(schema.SPLIT, (n,), str, chunks=(n,))[:] = split_arr
        store._new(schema.FAILURE, (n,), str, chunks=(chunk,))
        store.require(schema.HR)
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r", *, snapshot: str | None = None,
             storage_options: Mapping[str, Any] | None = None) -> FaceStore:
        """Open an existing store read-only (``"r"``) or for updates (``"r+"``).

        ``snapshot=None`` reads the live store (inspection, builds); ``"latest"`` — for training and
        evaluation — reads the newest committed snapshot and refuses a running or interrupted build
        (:func:`facesr.data.snapshots.resolve`); any other value pins that snapshot id.
        """
        loc = locate(path, dict(storage_options or {}))
        if not loc.exists():
            raise StoreNotFoundError(f"no store at {loc}", hint="build one with `facesr data prepare ... --store STORE`",
                                     path=str(loc))
        if not loc.has("zarr.json"):
            raise StoreNotFoundError(f"{loc} is not a facesr store (no zarr.json)", path=str(loc))
        root, sid, pin = loc, None, None
        if snapshot is not None and loc.is_local:
            if mode != "r":
                raise StoreError("snapshots are read-only; open them with mode='r'")
            folder, sid = snapshots.resolve(loc.path, snapshot)
            if sid is not None:
                pin = snapshots.ReaderPin(loc.path, sid)
                root = Location(path=folder)
        elif snapshot is not None:  # a URL keeps no snapshots; this still refuses a running or interrupted build
            snapshots.resolve(loc, snapshot)
        try:
            group = zarr.open_group(root.zarr_store(read_only=mode == "r"), mode=mode, zarr_format=3,
                                    use_consolidated=False)  # consolidated metadata may predate a running build
        except (FileNotFoundError, ValueError, KeyError, zarr.errors.GroupNotFoundError) as exc:
            raise StoreNotFoundError(f"{loc} is not a facesr store ({exc})", path=str(loc)) from None
        version = group.attrs.get("schema_version")
        if version is None:
            raise StoreNotFoundError(f"{loc} is a zarr group but not a facesr store (no schema_version)", path=str(loc))
        if version != SCHEMA_VERSION:
            raise SchemaVersionError(
                f"{loc} has schema version {version}; this facesr ({__version__}) reads version {SCHEMA_VERSION}",
                hint="rebuild the store with this facesr, or install the facesr that wrote it", path=str(loc))
        return cls(group, loc, root=root, snapshot_id=sid, pin=pin)

    def reopen(self) -> FaceStore:
        """A new handle on the same view (the same snapshot), e.g. in a DataLoader worker."""
        if self.location is None:
            return self
        return FaceStore.open(self.location, snapshot=self.snapshot_id)

    def commit(self) -> dict[str, Any] | None:
        """End of a build: write consolidated metadata (so ``xr.open_zarr(path)`` opens it) and, for a
        local store, link a new snapshot and clear the ``building`` marker. Returns the snapshot stamp."""
        if self._root is None:
            return None
        with warnings.catch_warnings():  # "consolidated metadata is not part of the v3 spec (yet)"
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(self._group.store)
        if not self.location.is_local:
            return None
        return snapshots.commit(self.location.path)

    # ------------------------------------------------------------------ basic facts
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    def update_attrs(self, **values: Any) -> None:
        self._group.attrs.update(values)

    @property
    def n(self) -> int:
        return int(self._group[schema.IDS.name].shape[0])

    def __len__(self) -> int:
        return self.n

    @property
    def chunk(self) -> int:
        return int(self._group.attrs["chunk"])

    @property
    def hr_size(self) -> int:
        return int(self._group.attrs.get("hr_size", HR_SIZE))

    @property
    def ids(self) -> np.ndarray:
        if self._ids is None:
            self._ids = self.read(schema.IDS)
        return self._ids

    @property
    def splits(self) -> np.ndarray:
        if self._split is None:
            self._split = self.read(schema.SPLIT)
        return self._split

    def failures(self) -> np.ndarray:
        """Per-sample failure reason, ``""`` where the sample is usable."""
        return self.read(schema.FAILURE)

    def valid(self) -> np.ndarray:
        return self.failures() == ""

    def indices(self, split: str | None = None, *, valid_only: bool = True) -> np.ndarray:
        """Sample indices of ``split`` (all splits for None), optionally only the usable ones."""
        if split is not None and split not in SPLITS:
            raise StoreError(f"unknown split {split!r}; expected one of {SPLITS}")
        mask = np.ones(self.n, bool) if split is None else self.splits == split
        if valid_only:
            mask &= self.valid()
        return np.flatnonzero(mask)

    def chunk_slices(self) -> list[slice]:
        """Row ranges of the storage chunks along N, the unit of pipeline work and of streaming."""
        c, n = self.chunk, self.n  # ``n`` reads the ids array's metadata: once, not per chunk
        return [slice(s, min(s + c, n)) for s in range(0, n, c)]

    # ------------------------------------------------------------------ arrays
    def names(self) -> list[str]:
        """All array names, nested ones as ``group/name`` (``lr/bicubic-pil_16``, ``priors/heatmap``)."""
        out: list[str] = []

        def walk(g: zarr.Group, prefix: str) -> None:
            for key, node in g.members():
                if isinstance(node, zarr.Group):
                    walk(node, f"{prefix}{key}/")
                else:
                    out.append(prefix + key)

        walk(self._group, "")
        return sorted(out)

    def __contains__(self, spec: Name) -> bool:
        return isinstance(self._group.get(_key(spec)), zarr.Array)

    def array(self, spec: Name) -> zarr.Array:
        """The zarr array of ``spec`` (or a name); a clear StoreIncompleteError listing what exists if absent."""
        name = _key(spec)
        node = self._group.get(name)  # one metadata read (``in`` and then ``[]`` would read it twice)
        if not isinstance(node, zarr.Array):
            have = ", ".join(self.names())
            raise StoreIncompleteError(f"{self._where()} has no array {name!r} (it has: {have})",
                                       hint=_hint_for(name), name=name, path=self._where())
        return node

    def read(self, spec: Name, sel: slice | np.ndarray | int = slice(None)) -> np.ndarray:
        """Rows ``sel``; string arrays come back as plain ``str`` arrays; a bad checksum is StoreCorruptError."""
        name = _key(spec)
        arr = self.array(name)
        try:
            a = np.asarray(arr[sel])
        except (ValueError, RuntimeError) as exc:
            raise self.corrupt(name, _bad_chunks(arr, _chunks_of(arr, sel, self.n)), exc) from None
        # zarr returns numpy's variable-width StringDType; callers get plain fixed-width str arrays.
        return np.array(a.tolist(), dtype=str) if a.dtype.kind == "T" else a

    def heatmap(self, sel: slice | np.ndarray | int = slice(None)) -> np.ndarray:
        """``priors/heatmap`` rows ``sel`` as float32 in [0, 1], shape ``(…, H, W)``."""
        arr = self.array(schema.HEATMAP)
        if not np.issubdtype(np.dtype(arr.dtype), np.floating):
            raise SchemaVersionError(f"{self._where()}: priors/heatmap is {arr.dtype}; this facesr reads float heatmaps",
                                     hint="rebuild the heatmap with `facesr priors build`")
        return self.read(schema.HEATMAP, sel).astype(np.float32, copy=False)

    def write(self, spec: Name, start: int, values: np.ndarray) -> None:
        """Write ``values`` to rows ``start : start + len(values)`` (chunk-aligned writes are race-free)."""
        self.array(spec)[start : start + len(values)] = values

    def require(
        self,
        spec: Name,
        tail: tuple[int, ...] | None = None,
        dtype: str | np.dtype | type | None = None,
        *,
        fill_value: Any = None,
        codec: str | None = None,
        attrs: Mapping[str, Any] | None = None,
        **sizes: int,
    ) -> zarr.Array:
        """Return the array of ``spec`` (an :class:`ArraySpec`, or a name the schema knows), creating it if needed.

        Its shape is ``spec.shape(N, hr=hr_size, **sizes)`` (e.g. ``require(schema.BOXES, boxes=16)``);
        dtype, dimension names and codec are the spec's. ``tail``/``dtype``/``codec`` override them (older
        callers and benchmarks; a name the schema does not know needs ``tail`` and ``dtype``). An existing
        array with another shape or dtype is an error (the caller changed its output and must
        :meth:`delete` first). ``attrs`` are merged into the array's attributes either way.
        """
        if not isinstance(spec, ArraySpec):
            known = schema.spec_for(str(spec))
            if known is None:
                if tail is None or dtype is None:
                    raise StoreError(f"{spec!r} is not an array of the store schema; give tail and dtype")
                kind = np.dtype(dtype)
                spec = ArraySpec(str(spec), (), str(kind), codec="float" if kind.kind == "f" else "dense")
            else:
                spec = known
        shape = (self.n, *tail) if tail is not None else spec.shape(self.n, hr=self.hr_size, **sizes)
        if dtype is str or (dtype is None and spec.dtype == "str"):
            dt: Any = str
        else:
            dt = np.dtype(dtype if dtype is not None else spec.dtype)
        name = spec.name
        if name in self:
            arr = self._group[name]
            if tuple(arr.shape) != shape or (dt is not str and arr.dtype != np.dtype(dt)):
                raise StoreError(
                    f"{self._where()} array {name!r} is {arr.shape} {arr.dtype}, not {shape} {np.dtype(dt)}",
                    hint=f"delete it first (FaceStore.delete({name!r})) or rebuild the store")
        else:
            arr = self._new(spec, shape, dt, chunks=(self.chunk, *shape[1:]), codec=codec, fill_value=fill_value)
        if attrs:
            arr.attrs.update(dict(attrs))
        return arr

    def delete(self, spec: Name) -> None:
        if spec in self:
            del self._group[_key(spec)]

    def iter_chunks(self, spec: Name) -> Iterator[tuple[slice, np.ndarray]]:
        for sl in self.chunk_slices():
            yield sl, self.read(spec, sl)

    # ------------------------------------------------------------------ integrity and views
    def corrupt(self, name: str, chunks: Sequence[int], exc: BaseException) -> StoreCorruptError:
        """The one-line error for a chunk that fails its checksum or cannot be decoded."""
        where = "chunk " + ", ".join(map(str, chunks)) if chunks else "a chunk"
        rows = f" (rows {chunks[0] * self.chunk}–{min((chunks[-1] + 1) * self.chunk, self.n) - 1})" if chunks else ""
        return StoreCorruptError(
            f"{self._where()}: {name} {where}{rows} is corrupt ({str(exc).splitlines()[0][:80]})",
            hint="`facesr priors verify` lists every bad chunk; rebuild the store or restore it from a copy",
            name=name, chunk=list(chunks), path=self._where())

    def scrub(self, names: Sequence[Name] | None = None,
              progress: Callable[[str, int], None] | None = None) -> list[StoreCorruptError]:
        """Read and checksum every chunk of ``names`` (default: every array); one error per bad chunk."""
        bad: list[StoreCorruptError] = []
        for name in [_key(s) for s in names] if names is not None else self.names():
            arr = self.array(name)
            for idx in np.ndindex(*arr.cdata_shape):
                try:
                    arr.get_block_selection(idx)
                except (ValueError, RuntimeError, TypeError) as exc:
                    bad.append(self.corrupt(name, [idx[0]], exc))
                if progress is not None:
                    progress(name, idx[0])
        return bad

    def to_xarray(self):
        """An ``xarray.DataTree`` of the store (groups ``/``, ``/lr``, ``/priors`` …) with the schema's
        dimension names, ``sample`` labelled by the ids, and the group attributes (provenance)."""
        import xarray as xr

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = xr.open_datatree(self._group.store, engine="zarr", consolidated=False, zarr_format=3)
        tree.dataset = tree.to_dataset(inherit=False).assign_coords(sample=np.asarray(self.ids))
        return tree

    def info(self) -> StoreInfo:
        """Samples, splits, failures, arrays, provenance and snapshots (``facesr data info``)."""
        fails, valid = self.failures(), self.valid()
        bad = np.flatnonzero(~valid)
        reasons: dict[str, int] = {}
        for r in fails[bad].tolist():
            reasons[r] = reasons.get(r, 0) + 1
        arrays: dict[str, dict[str, Any]] = {}
        for name in self.names():
            arr = self._group[name]
            is_str = arr.dtype.kind in "TUSO"
            raw = None if is_str else int(np.prod(arr.shape)) * np.dtype(arr.dtype).itemsize
            stored = _stored_bytes(arr)
            arrays[name] = {
                "shape": tuple(arr.shape), "dims": tuple(arr.metadata.dimension_names or ()),
                "dtype": "str" if is_str else str(arr.dtype), "chunks": tuple(arr.chunks),
                "codec": ",".join(type(c).__name__ for c in arr.compressors) or "none",
                "codec_short": schema.codec_short(arr.compressors), "stored_bytes": stored, "raw_bytes": raw,
                "ratio": round(raw / stored, 2) if raw and stored else None, "attrs": dict(arr.attrs),
            }
        local = self.location is not None and self.location.is_local
        return StoreInfo(
            path=self._where(), n=self.n, chunk=self.chunk, chunks=len(self.chunk_slices()),
            splits={s: {"samples": c, "usable": int((valid & (self.splits == s)).sum())}
                    for s in SPLITS if (c := int((self.splits == s).sum()))},
            failures=int(len(bad)),
            failure_reasons=[{"reason": r, "count": c, "first_id": str(self.ids[bad[fails[bad] == r][0]])}
                             for r, c in sorted(reasons.items(), key=lambda kv: -kv[1])],
            arrays=arrays, attrs=self.attrs, snapshot_id=self.snapshot_id,
            snapshots=snapshots.list_snapshots(self.location.path) if local else [],
            building=snapshots.building(self.location) if self.location is not None else None,
        )

    # ------------------------------------------------------------------ internals
    def _new(self, spec: ArraySpec, shape, dtype, *, chunks, codec: str | None = None,
             fill_value: Any = None) -> zarr.Array:
        if dtype is str:
            fill_value = "" if fill_value is None else fill_value
        elif fill_value is None:
            fill_value = np.nan if np.issubdtype(np.dtype(dtype), np.floating) else 0
        dims = spec.dims if len(spec.dims) == len(shape) else None
        return self._group.create_array(spec.name, shape=shape, dtype=dtype, chunks=chunks,
                                        compressors=schema.codec_chain(codec or spec.codec),
                                        fill_value=fill_value, dimension_names=dims)

    def _where(self) -> str:
        if self.location is None:
            return "<memory store>"
        return str(self.location) + (f"@{self.snapshot_id}" if self.snapshot_id else "")


def _chunks_of(arr: zarr.Array, sel: Any, n: int) -> list[int]:
    """Chunk numbers along ``sample`` that a row selection touches (for error messages)."""
    c = arr.chunks[0]
    if isinstance(sel, slice):
        start, stop, _ = sel.indices(n)
        return list(range(start // c, max(start, stop - 1) // c + 1))
    rows = np.atleast_1d(np.asarray(sel))
    return sorted({int(r) // c for r in rows.tolist()}) if rows.dtype.kind in "iu" else []


def _bad_chunks(arr: zarr.Array, chunks: list[int]) -> list[int]:
    """Which of ``chunks`` (along ``sample``) fail to decode, checked one by one (all of them if none does)."""
    bad = []
    rest = (0,) * (arr.ndim - 1)
    for c in chunks:
        try:
            arr.get_block_selection((c, *rest))
        except (ValueError, RuntimeError):
            bad.append(c)
    return bad or chunks


def _stored_bytes(arr: zarr.Array) -> int | None:
    try:
        return int(arr.nbytes_stored())
    except Exception:  # not all stores can tell (e.g. some remote ones)
        return None


def _hint_for(name: str) -> str:
    spec = schema.spec_for(name)
    if spec is not None and spec.is_prior:
        return "build priors with `facesr priors build --store STORE`"
    if name.startswith(schema.LR_GROUP + "/"):
        return "add the LR set with `facesr data prepare ... --lr METHOD:SIZE`"
    return "see `facesr data info STORE` for what the store holds"
