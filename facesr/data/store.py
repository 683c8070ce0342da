"""The facesr store: one zarr v3 group per dataset build.

This module is the only code that knows array names, chunking, codecs and the schema version;
everyone else asks :class:`FaceStore` for arrays by name.

Layout (N samples, all arrays chunked along N by ``chunk`` rows so a chunk is the unit of work and of
streaming; HR pixel coordinates are ``(x, y)``, origin top-left):

=====================  =====================  =========  ==============================================
name                   shape                  dtype      meaning
=====================  =====================  =========  ==============================================
``ids``                (N,)                   str        the dataset's own file stem, unique
``split``              (N,)                   str        ``train`` / ``val`` / ``test``
``failure``            (N,)                   str        ``""`` when the sample is usable, else why not
``hr``                 (N, 128, 128, 3)       uint8      RGB HR crop
``lr/<spec>``          (N, s, s, 3)           uint8      LR made by ``facesr.data.degrade`` (spec name,
                                                         e.g. ``lr/bicubic-pil_16``)
``landmarks``          (N, 68, 2)             float32    68 points in HR pixels, NaN where no face
``priors/<name>``      (N, ...)               any        written by the priors pipeline
=====================  =====================  =========  ==============================================

Group attributes: ``schema_version``, ``facesr_version``, ``source``, ``crop``, ``lr``, ``chunk``,
``codecs``, ``created``; each array's attributes name its producer (provider, preset, weights).
Everything is lossless. A store with an unknown ``schema_version`` is refused with :class:`SchemaError`.

Codecs, chosen by ``bench/codecs.py`` on real CelebA arrays (``bench/results/codecs_store.json``): photos
barely compress (1.1–1.2×), so image arrays use Blosc-LZ4 with byte shuffle, which reads fastest of the
lossless codecs (750 MB/s here); float arrays (heatmaps, landmarks) use the same, which beats Zstd on
both ratio and speed there (2.33× at 675 MB/s against 2.14× at 430 MB/s); class maps and masks use
Zstd-3, which shrinks them 46× (Blosc-LZ4 16×).
"""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

from facesr import __version__
from facesr.errors import SchemaError, StoreError

SCHEMA_VERSION = 1
HR_SIZE = 128
DEFAULT_CHUNK = 256
SPLITS = ("train", "val", "test")

# name → compressors; "image" for uint8 photos, "float" for float arrays, "dense" for class maps and the rest.
CODECS: dict[str, tuple] = {
    "image": (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),),
    "float": (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),),
    "dense": (ZstdCodec(level=3),),
    "none": (),
}

__all__ = ["CODECS", "DEFAULT_CHUNK", "FaceStore", "HR_SIZE", "SCHEMA_VERSION", "SPLITS", "StoreInfo"]


@dataclass(frozen=True)
class StoreInfo:
    """A summary for ``facesr data info`` and ``facesr priors status``."""

    path: str
    n: int
    chunk: int
    splits: dict[str, int]
    failures: int
    arrays: dict[str, dict[str, Any]]  # name → shape, dtype, chunks, codec, stored bytes, attrs
    attrs: dict[str, Any]


class FaceStore:
    """A handle on one store. Construct with :meth:`create` or :meth:`open`.

    ``path=None`` gives an in-memory store with the same behaviour (tests, the demo's scratch work).
    """

    def __init__(self, group: zarr.Group, path: Path | None) -> None:
        self._group = group
        self.path = path
        self._ids: np.ndarray | None = None
        self._split: np.ndarray | None = None

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
    ) -> FaceStore:
        """Create a store for ``len(ids)`` samples with ``ids``, ``split``, ``failure`` and an empty ``hr``."""
        ids_arr = np.asarray(list(ids), dtype=str)
        split_arr = np.asarray(list(splits), dtype=str)
        if ids_arr.ndim != 1 or len(ids_arr) == 0:
            raise StoreError("a store needs at least one sample id")
        if len(split_arr) != len(ids_arr):
            raise StoreError(f"{len(ids_arr)} ids but {len(split_arr)} split labels")
        if len(np.unique(ids_arr)) != len(ids_arr):
            dup = _first_duplicate(ids_arr)
            raise StoreError(f"sample ids must be unique; {dup!r} appears twice")
        bad = sorted(set(split_arr.tolist()) - set(SPLITS))
        if bad:
            raise StoreError(f"unknown split label(s) {bad}; expected {SPLITS}")
        if chunk < 1:
            raise StoreError(f"chunk must be positive, got {chunk}")

        root = _storage(path)
        if path is not None and Path(path).exists() and not overwrite:
            raise StoreError(f"{path} already exists", hint="pass --overwrite, or choose another --out")
        group = zarr.open_group(root, mode="w", zarr_format=3)
        n = len(ids_arr)
        group.attrs.update(
            {
                "schema_version": SCHEMA_VERSION,
                "facesr_version": __version__,
                "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "chunk": int(chunk),
                "hr_size": int(hr_size),
                "codecs": {"image": _codec_repr("image"), "dense": _codec_repr("dense")},
                **dict(attrs or {}),
            }
        )
        store = cls(group, None if path is None else Path(path))
        store._new("ids", (n,), str, chunks=(max(n, 1),), codec="none")[:] = ids_arr
        store._new("split", (n,), str, chunks=(max(n, 1),), codec="none")[:] = split_arr
        store._new("failure", (n,), str, chunks=(chunk,), codec="none")
        store.require("hr", (hr_size, hr_size, 3), "uint8")
        return store

    @classmethod
    def open(cls, path: str | os.PathLike, mode: str = "r") -> FaceStore:
        """Open an existing store read-only (``"r"``) or for updates (``"r+"``)."""
        p = Path(path)
        if not p.exists():
            raise StoreError(f"no store at {p}", hint="build one with `facesr data prepare ... --out STORE`")
        try:
            group = zarr.open_group(str(p), mode=mode, zarr_format=3)
        except (FileNotFoundError, ValueError, zarr.errors.GroupNotFoundError) as exc:
            raise StoreError(f"{p} is not a facesr store ({exc})") from None
        version = group.attrs.get("schema_version")
        if version is None:
            raise StoreError(f"{p} is a zarr group but not a facesr store (no schema_version)")
        if version != SCHEMA_VERSION:
            raise SchemaError(
                f"{p} has schema version {version}; this facesr ({__version__}) reads version {SCHEMA_VERSION}",
                hint="rebuild the store with this facesr, or install the facesr that wrote it",
            )
        return cls(group, p)

    # ------------------------------------------------------------------ basic facts
    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self._group.attrs)

    def update_attrs(self, **values: Any) -> None:
        self._group.attrs.update(values)

    @property
    def n(self) -> int:
        return int(self._group["ids"].shape[0])

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
            self._ids = self.read("ids")
        return self._ids

    @property
    def splits(self) -> np.ndarray:
        if self._split is None:
            self._split = self.read("split")
        return self._split

    def failures(self) -> np.ndarray:
        """Per-sample failure reason, ``""`` where the sample is usable."""
        return self.read("failure")

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
        c = self.chunk
        return [slice(s, min(s + c, self.n)) for s in range(0, self.n, c)]

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

    def __contains__(self, name: str) -> bool:
        try:
            node = self._group[name]
        except KeyError:
            return False
        return isinstance(node, zarr.Array)

    def array(self, name: str) -> zarr.Array:
        """The zarr array ``name``; a clear StoreError listing what exists if absent."""
        if name not in self:
            have = ", ".join(self.names())
            raise StoreError(f"{self._where()} has no array {name!r} (it has: {have})", hint=_hint_for(name))
        return self._group[name]

    def read(self, name: str, sel: slice | np.ndarray | int = slice(None)) -> np.ndarray:
        """Rows ``sel`` of array ``name``; string arrays come back as plain ``str`` arrays."""
        a = np.asarray(self.array(name)[sel])
        # zarr returns numpy's variable-width StringDType; callers get plain fixed-width str arrays.
        return np.array(a.tolist(), dtype=str) if a.dtype.kind == "T" else a

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        """Write ``values`` to rows ``start : start + len(values)`` (chunk-aligned writes are race-free)."""
        arr = self.array(name)
        arr[start : start + len(values)] = values

    def require(
        self,
        name: str,
        tail: tuple[int, ...],
        dtype: str | np.dtype | type,
        *,
        fill_value: Any = None,
        codec: str | None = None,
        attrs: Mapping[str, Any] | None = None,
    ) -> zarr.Array:
        """Return array ``name`` of shape ``(N, *tail)``, creating it if needed.

        An existing array with another shape or dtype is an error (the caller changed its output and
        must :meth:`delete` first). ``codec`` defaults to "image" for uint8 with 3 trailing channels,
        "float" for floating dtypes, else "dense". ``attrs`` are merged into the array's attributes either way.
        """
        shape = (self.n, *tail)
        if name in self:
            arr = self._group[name]
            if tuple(arr.shape) != shape or (dtype is not str and arr.dtype != np.dtype(dtype)):
                raise StoreError(
                    f"{self._where()} array {name!r} is {arr.shape} {arr.dtype}, not {shape} {np.dtype(dtype)}",
                    hint=f"delete it first (FaceStore.delete({name!r})) or rebuild the store",
                )
        else:
            if codec is None:
                kind = np.dtype(dtype)
                if kind == np.uint8 and tail[-1:] == (3,):
                    codec = "image"
                else:
                    codec = "float" if kind.kind == "f" else "dense"
            arr = self._new(name, shape, dtype, chunks=(self.chunk, *tail), codec=codec, fill_value=fill_value)
        if attrs:
            arr.attrs.update(dict(attrs))
        return arr

    def delete(self, name: str) -> None:
        if name in self:
            del self._group[name]

    def info(self) -> StoreInfo:
        arrays: dict[str, dict[str, Any]] = {}
        for name in self.names():
            arr = self._group[name]
            arrays[name] = {
                "shape": tuple(arr.shape),
                "dtype": str(arr.dtype),
                "chunks": tuple(arr.chunks),
                "codec": ",".join(type(c).__name__ for c in arr.compressors) or "none",
                "stored_bytes": _stored_bytes(arr),
                "attrs": dict(arr.attrs),
            }
        split_counts = {s: c for s in SPLITS if (c := int((self.splits == s).sum()))}
        return StoreInfo(
            path=self._where(),
            n=self.n,
            chunk=self.chunk,
            splits=split_counts,
            failures=int((~self.valid()).sum()),
            arrays=arrays,
            attrs=self.attrs,
        )

    def iter_chunks(self, name: str) -> Iterator[tuple[slice, np.ndarray]]:
        arr = self.array(name)
        for sl in self.chunk_slices():
            yield sl, np.asarray(arr[sl])

    # ------------------------------------------------------------------ internals
    def _new(self, name: str, shape, dtype, *, chunks, codec: str, fill_value: Any = None) -> zarr.Array:
        if dtype is str:
            fill_value = "" if fill_value is None else fill_value
        elif fill_value is None:
            fill_value = np.nan if np.issubdtype(np.dtype(dtype), np.floating) else 0
        return self._group.create_array(
            name,
            shape=shape,
            dtype=dtype,
            chunks=chunks,
            compressors=CODECS[codec],
            fill_value=fill_value,
        )

    def _where(self) -> str:
        return str(self.path) if self.path is not None else "<memory store>"


def _storage(path: str | os.PathLike | None):
    if path is None:
        return zarr.storage.MemoryStore()
    return str(path)


def _codec_repr(kind: str) -> str:
    return ",".join(f"{type(c).__name__}({_codec_args(c)})" for c in CODECS[kind]) or "none"


def _codec_args(codec) -> str:
    d = codec.to_dict().get("configuration", {})
    return ", ".join(f"{k}={v}" for k, v in d.items() if k in ("cname", "clevel", "shuffle", "level"))


def _stored_bytes(arr: zarr.Array) -> int | None:
    try:
        return int(arr.nbytes_stored())
    except Exception:  # not all stores can tell (e.g. some remote ones)
        return None


def _first_duplicate(ids: np.ndarray) -> str:
    seen: set[str] = set()
    for i in ids.tolist():
        if i in seen:
            return i
        seen.add(i)
    return ""


def _hint_for(name: str) -> str:
    if name.startswith("priors/") or name == "landmarks":
        return "build priors with `facesr priors build --store STORE`"
    if name.startswith("lr/"):
        return "add the LR set with `facesr data prepare ... --lr METHOD:SIZE`"
    return "see `facesr data info STORE` for what the store holds"
