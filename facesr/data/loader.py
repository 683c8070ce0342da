"""Streaming a store into training: raw uint8 batches, chunk-level shuffling, DDP and worker sharding.

:class:`StoreDataset` is a :class:`torch.utils.data.IterableDataset` over one split of a
:class:`~facesr.data.store.FaceStore` that yields whole batches of the *stored* bytes; :func:`to_float`
converts a batch after it reaches the device (4× less host→device traffic than float32, and no per-sample
float work on the CPU). The storage chunk (``store.chunk`` rows) is the unit of reading: a worker reads a
whole chunk with one zarr read per array, keeps the rows it was given and feeds them through a shuffle
buffer. Nothing is decoded or resized at training time. Other loading modes (float samples,
``default_collate``) live in ``bench/loader.py`` only, as baselines.

A batch (dict; ``B`` rows, the last one of a worker may be short unless ``drop_last``):

=============  ======================  =========  ===================  ==================================
key            raw shape               raw dtype  after ``to_float``   from
=============  ======================  =========  ===================  ==================================
``lr``         (B, s, s, 3)            uint8      (B, 3, s, s) f32     ``schema.lr(options.lr)``, [0, 1]
``hr``         (B, H, H, 3)            uint8      (B, 3, H, H) f32     ``schema.HR``, [0, 1]
``heatmap``    (B, H, H)               float16    (B, 1, H, H) f32     ``schema.HEATMAP``, [0, 1]
``parsing``    (B, H, H)               uint8      (B, H, H) int64      ``schema.PARSING`` class ids
``landmarks``  (B, 68, 2)              float32    unchanged            ``schema.LANDMARKS`` (x, y), NaN
``boxes``      (B, K, 6)               float32    unchanged            ``schema.BOXES``
``index``      (B,)                    int64      unchanged            the rows in the store
=============  ======================  =========  ===================  ==================================

``options.priors`` names what to load beside the images: ``heatmap``, ``parsing``, ``landmarks``,
``boxes``, or any other array of the ``priors`` group by its name there. An array the store lacks is a
:class:`~facesr.errors.StoreIncompleteError` naming what the store has (raised when the dataset is built,
not in a worker); a chunk failing its checksum is a :class:`~facesr.errors.StoreCorruptError` naming the
array and chunk. Given a path, the dataset reads the store's newest snapshot (``FaceStore.open(path,
snapshot="latest")``) and refuses a store whose build is running or was interrupted.

Ordering rules (deterministic for a given ``(seed, epoch, rank, world_size, num_workers)``):

1. The rows used are those of ``split`` (all splits for ``None``), minus failed samples
   (``drop_invalid``). Chunks holding none of them are never read.
2. ``shuffle=True``: a generator seeded with ``(seed, epoch)`` permutes the chunks and the rows
   inside each chunk; the rows, chunk after chunk, form the epoch's sequence. ``shuffle=False``: the
   sequence is the rows in store order.
3. Ranks (``torch.distributed`` if initialised, else the given ``rank``/``world_size``, else 0/1)
   take contiguous, equal pieces of the sequence. ``remainder="drop"`` (the default when shuffling)
   drops the last ``len % world_size`` rows of the epoch's sequence; ``"pad"`` wraps around to the start
   (like ``DistributedSampler``), so a few rows are seen twice; ``"none"`` (the default without
   shuffling) gives ranks pieces that differ by at most one row, so evaluation sees every row once.
   Every rank sees the same number of rows under ``drop`` and ``pad``, which DDP needs.
4. A rank's piece is cut into ``num_workers`` contiguous, near-equal slices, one per DataLoader worker
   (the same sizes on every rank, so every rank makes the same number of batches —
   :meth:`StoreDataset.num_batches`). A chunk at a rank or worker boundary is read by both sides.
5. Each worker mixes its rows in a shuffle buffer of ``buffer_size`` samples (seeded with
   ``(seed, epoch, rank, worker)``); the buffer holds references into the chunks it read, not copies.

Ordered mode (``shuffle=False``, or :class:`StoreEvalDataset`) yields rows in store order within each
worker; with several workers batches arrive in worker round-robin (one worker keeps store order).

For training (the fastest configuration in ``bench/results/loader.json``)::

    ds = StoreDataset(store, LoaderOptions(split="train", lr="bicubic-pil:16", priors=("heatmap",), batch_size=64))
    for epoch in range(epochs):
        ds.set_epoch(epoch)                               # reaches persistent workers too
        for batch in ds.loader():                         # ThreadLoader: one background thread
            batch = to_float(batch, device="cuda")        # uint8 over the bus, float on the GPU
"""

from __future__ import annotations

import math
import os
import queue
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from facesr.data import schema
from facesr.data.schema import ArraySpec
from facesr.data.store import FaceStore
from facesr.errors import ConfigError, SchemaVersionError, StoreError

__all__ = ["LoaderOptions", "StoreDataset", "StoreEvalDataset", "ThreadLoader", "to_float"]

REMAINDERS = ("drop", "pad", "none")
#: ``options.priors`` short names: the last part of the spec's name (heatmap, parsing, landmarks, boxes)
_NAMED_PRIORS = {s.name.rsplit("/", 1)[-1]: s for s in (schema.HEATMAP, schema.PARSING, schema.LANDMARKS, schema.BOXES)}


@dataclass(frozen=True)
class LoaderOptions:
    """What a :class:`StoreDataset` reads and in which order (module docstring: keys and ordering rules)."""

    split: str | None = "train"  # train / val / test, None: all
    lr: str | None = "bicubic-pil:16"  # LR spec (``bicubic-pil:16`` or ``bicubic-pil_16``), None: no LR
    priors: tuple[str, ...] = ("heatmap",)
    hr: bool = True
    batch_size: int = 64
    drop_last: bool = False
    shuffle: bool = True
    seed: int = 0
    buffer_size: int = 512  # shuffle buffer in samples (0 or 1: none)
    drop_invalid: bool = True  # skip samples whose ``failure`` is set
    rank: int | None = None  # None: torch.distributed, else 0
    world_size: int | None = None
    remainder: str | None = None  # drop / pad / none; default drop when shuffling, else none

    def __post_init__(self) -> None:
        if isinstance(self.priors, str):
            object.__setattr__(self, "priors", (self.priors,))
        object.__setattr__(self, "priors", tuple(self.priors))
        if self.batch_size is None or int(self.batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive number, got {self.batch_size}")
        if self.remainder is not None and self.remainder not in REMAINDERS:
            raise ConfigError(f"remainder must be one of {REMAINDERS}, got {self.remainder!r}")


@dataclass(frozen=True)
class _Field:
    key: str  # batch key
    spec: ArraySpec


def to_float(batch: Mapping[str, Any], device: torch.device | str | None = None,
             non_blocking: bool = True) -> dict[str, Any]:
    """A raw batch (module table) moved to ``device`` and converted: images to ``(B, 3, H, W)`` float32 in
    [0, 1], the heatmap to ``(B, 1, H, W)`` float32, parsing to int64. Converted tensors pass through."""
    out: dict[str, Any] = {}
    for key, v in batch.items():
        if not isinstance(v, torch.Tensor):
            out[key] = v
            continue
        if device is not None:
            v = v.to(device, non_blocking=non_blocking)
        if v.dtype == torch.uint8 and v.dim() == 4 and v.shape[-1] == 3:  # (B, H, W, 3) → (B, 3, H, W)
            out[key] = torch.empty(v.permute(0, 3, 1, 2).shape, dtype=torch.float32, device=v.device).copy_(
                v.permute(0, 3, 1, 2)).mul_(1.0 / 255.0)
        elif key == "heatmap" and v.dim() == 3:
            out[key] = v.unsqueeze(1).to(torch.float32)
        elif key in ("parsing", "index"):
            out[key] = v.to(torch.int64)
        elif v.is_floating_point():
            out[key] = v.to(torch.float32)
        else:
            out[key] = v
    return out


def _dist_rank_world() -> tuple[int, int]:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _options(options: LoaderOptions | str | None, kwargs: dict[str, Any]) -> LoaderOptions:
    """``StoreDataset(store, LoaderOptions(...))``, or the older ``StoreDataset(store, split, lr=…, …)``."""
    kwargs = dict(kwargs)
    if kwargs.pop("raw", True) is not True:
        raise ConfigError("the loader yields raw batches only; convert them with facesr.data.loader.to_float")
    known = {f.name for f in fields(LoaderOptions)}
    bad = sorted(set(kwargs) - known)
    if bad:
        raise ConfigError(f"unknown loader option(s) {bad}", hint=f"LoaderOptions has {sorted(known)}")
    if isinstance(options, LoaderOptions):
        return replace(options, **kwargs) if kwargs else options
    if options is not None:
        kwargs.update(split=options)
    return LoaderOptions(**kwargs)


class StoreDataset(IterableDataset):
    """Stream one split of a store as raw batches; see the module docstring for the keys and the order.

    ``store``: a path / URL (its newest snapshot is read) or an open :class:`FaceStore`.
    ``options``: a :class:`LoaderOptions`; keyword arguments override its fields (``StoreDataset(store,
    "train", lr=…, batch_size=…)`` keeps working).
    """

    def __init__(self, store: str | os.PathLike | FaceStore, options: LoaderOptions | str | None = None,
                 **kwargs: Any) -> None:
        super().__init__()
        o = _options(options, kwargs)
        self.options = o
        self._store: FaceStore | None = store if isinstance(store, FaceStore) else \
            FaceStore.open(store, snapshot="latest")
        st = self._store
        self.split, self.shuffle, self.seed = o.split, bool(o.shuffle), int(o.seed)
        self.buffer_size, self.batch_size, self.drop_last = int(o.buffer_size), int(o.batch_size), bool(o.drop_last)
        self.remainder = o.remainder or ("drop" if self.shuffle else "none")
        dr, dw = _dist_rank_world()
        self.rank = dr if o.rank is None else int(o.rank)
        self.world_size = dw if o.world_size is None else int(o.world_size)
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} is outside world size {self.world_size}")

        fields_: list[_Field] = []
        if o.lr:
            fields_.append(_Field("lr", schema.lr(o.lr)))
        if o.hr:
            fields_.append(_Field(schema.HR.name, schema.HR))
        for p in o.priors:
            spec = _NAMED_PRIORS.get(p) or schema.spec_for(p) or ArraySpec(f"{schema.PRIORS_GROUP}/{p}", (), "")
            fields_.append(_Field(spec.name.rsplit("/", 1)[-1], spec))
        keys = [f.key for f in fields_]
        if len(set(keys)) != len(keys) or "index" in keys:
            raise ConfigError(f"duplicate or reserved output keys {keys}")
        if not fields_:
            raise ConfigError("nothing to load: set lr, hr or priors")
        for f in fields_:
            arr = st.array(f.spec)  # StoreIncompleteError listing what the store has, here and not in a worker
            if f.spec is schema.HEATMAP and not np.issubdtype(np.dtype(arr.dtype), np.floating):
                raise SchemaVersionError(f"{st._where()}: {f.spec.name} is {arr.dtype}; this facesr reads float "
                                         "heatmaps", hint="rebuild it with `facesr priors build`")
        self.fields: tuple[_Field, ...] = tuple(fields_)

        rows = st.indices(o.split, valid_only=o.drop_invalid)
        self._chunk = st.chunk
        cid = rows // self._chunk
        bounds = np.flatnonzero(np.diff(cid)) + 1
        self._chunk_ids = cid[np.r_[0, bounds]] if len(rows) else np.zeros(0, np.int64)
        self._chunk_rows = np.split(rows, bounds) if len(rows) else []
        self.total = int(len(rows))
        if self.total == 0:
            raise StoreError(f"{st._where()} has no {'usable ' if o.drop_invalid else ''}samples in split {o.split!r}",
                             hint="see `facesr data info STORE` for splits and failures")
        if self.remainder == "drop" and self.total < self.world_size:
            raise ConfigError(f"split {o.split!r} has {self.total} samples, fewer than {self.world_size} ranks")
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._zarrs: dict[str, Any] | None = None
        self._pid = os.getpid()
        self._n = st.n

    # --------------------------------------------------------------------------- public
    @property
    def store(self) -> FaceStore:
        return self._store

    @property
    def snapshot_id(self) -> str | None:
        """The store snapshot this dataset reads (None: a store never committed by a build)."""
        return self._store.snapshot_id

    @property
    def epoch(self) -> int:
        return int(self._epoch.item())

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's shuffle (reaches persistent workers too)."""
        self._epoch.fill_(int(epoch))

    def per_rank(self) -> int:
        """Samples this rank sees per epoch."""
        n, w = self.total, self.world_size
        if self.remainder == "drop":
            return n // w
        if self.remainder == "pad":
            return math.ceil(n / w)
        return n // w + (1 if self.rank < n % w else 0)

    def __len__(self) -> int:
        """Samples this rank sees per epoch (see :meth:`num_batches` for batches)."""
        return self.per_rank()

    def to_float(self, batch: Mapping[str, Any], device: torch.device | str | None = None,
                 non_blocking: bool = True) -> dict[str, Any]:
        """:func:`to_float`."""
        return to_float(batch, device, non_blocking)

    def loader(self, num_workers: int = 0, prefetch: int = 4, pin_memory: bool = False, **kwargs: Any):
        """An iterable of batches: a :class:`ThreadLoader` with ``num_workers=0`` (the fastest here, see
        ``bench/results/loader.json``), else a ``DataLoader`` with persistent workers."""
        if num_workers == 0:
            return ThreadLoader(self, prefetch=prefetch, pin_memory=pin_memory)
        kwargs.setdefault("persistent_workers", True)
        kwargs.setdefault("prefetch_factor", prefetch)
        return torch.utils.data.DataLoader(self, batch_size=None, num_workers=num_workers,
                                           pin_memory=pin_memory, **kwargs)

    def worker_counts(self, num_workers: int = 1) -> list[int]:
        """Samples each DataLoader worker of this rank yields per epoch (equal on every rank under drop/pad)."""
        base, extra = divmod(self.per_rank(), max(1, num_workers))
        return [base + (1 if w < extra else 0) for w in range(max(1, num_workers))]

    def num_batches(self, num_workers: int = 1) -> int:
        """Batches this rank yields per epoch (each worker ends with its own short batch unless drop_last)."""
        b = self.batch_size
        return sum(c // b if self.drop_last else -(-c // b) for c in self.worker_counts(num_workers))

    def plan(self, epoch: int | None = None, worker: int = 0, num_workers: int = 1) -> list[tuple[int, np.ndarray]]:
        """The (chunk id, store rows) runs one worker of this rank reads in ``epoch``, in reading order."""
        epoch = self.epoch if epoch is None else int(epoch)
        seq, cid = self._rank_piece(*self._sequence(epoch))
        counts = self.worker_counts(num_workers)
        start = sum(counts[:worker])
        seq, cid = seq[start : start + counts[worker]], cid[start : start + counts[worker]]
        if len(seq) == 0:
            return []
        bounds = np.flatnonzero(np.diff(cid)) + 1
        return [(int(cid[s]), r) for s, r in zip(np.r_[0, bounds], np.split(seq, bounds))]

    # --------------------------------------------------------------------------- internals
    def _sequence(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's rows (all ranks) and their chunk ids."""
        if self.shuffle:
            rng = np.random.default_rng([self.seed, epoch])
            order = rng.permutation(len(self._chunk_rows))
            parts = [rng.permutation(self._chunk_rows[i]) for i in order]
            ids = [np.full(len(self._chunk_rows[i]), self._chunk_ids[i]) for i in order]
        else:
            parts, ids = self._chunk_rows, [np.full(len(r), c) for c, r in zip(self._chunk_ids, self._chunk_rows)]
        return np.concatenate(parts), np.concatenate(ids)

    def _rank_piece(self, seq: np.ndarray, cid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n, w, r = len(seq), self.world_size, self.rank
        if self.remainder == "none":
            base, extra = divmod(n, w)
            start = r * base + min(r, extra)
            stop = start + base + (1 if r < extra else 0)
            return seq[start:stop], cid[start:stop]
        per = self.per_rank()
        if self.remainder == "pad" and per * w > n:
            reps = math.ceil(per * w / n)
            seq, cid = np.tile(seq, reps)[: per * w], np.tile(cid, reps)[: per * w]
        return seq[r * per : (r + 1) * per], cid[r * per : (r + 1) * per]

    def _arrays(self) -> dict[str, Any]:
        """The zarr arrays of the fields, opened once per process."""
        if self._zarrs is None or self._pid != os.getpid():
            if self._store is None:  # a spawned worker: the same snapshot as the parent
                self._store = FaceStore.open(self._location, snapshot=self._snapshot)
            elif self._pid != os.getpid():  # a forked worker: no event loop or socket of the parent's
                self._store = self._store.reopen()
            self._pid = os.getpid()
            self._zarrs = {f.key: self._store.array(f.spec) for f in self.fields}
        return self._zarrs

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        st = self._store
        if st is not None and st.location is not None:  # reopened by location in the worker
            state.update(_store=None, _location=st.location, _snapshot=st.snapshot_id)
        state["_zarrs"] = None
        return state

    def _read_run(self, arrays: dict[str, Any], chunk_id: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        start = chunk_id * self._chunk
        sl = slice(start, min(start + self._chunk, self._n))
        local = rows - start
        full = len(local) == sl.stop - sl.start and np.array_equal(local, np.arange(len(local)))
        out = {}
        for f in self.fields:
            try:
                block = np.asarray(arrays[f.key][sl])  # one read per array per chunk
            except (ValueError, RuntimeError) as exc:  # the CRC32C check (or a decoder) refused the chunk
                raise self._store.corrupt(f.spec.name, [chunk_id], exc) from None
            out[f.key] = block if full else block[local]
        out["index"] = rows.astype(np.int64)
        return out

    def _items(self) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """(chunk data, row within it) in this worker's final order."""
        info = get_worker_info()
        worker, nworkers = (0, 1) if info is None else (info.id, info.num_workers)
        epoch = self.epoch
        runs = self.plan(epoch, worker, nworkers)
        arrays = self._arrays()
        if not self.shuffle or self.buffer_size <= 1:
            for cid, rows in runs:
                data = self._read_run(arrays, cid, rows)
                for i in range(len(rows)):
                    yield data, i
            return
        rng = np.random.default_rng([self.seed, epoch, self.rank, worker, 1])
        buf: list[tuple[dict[str, np.ndarray], int]] = []
        cap = self.buffer_size
        for cid, rows in runs:
            data = self._read_run(arrays, cid, rows)
            m = len(rows)
            fill = min(m, max(0, cap - len(buf)))
            buf.extend((data, i) for i in range(fill))
            if fill < m:
                picks = rng.integers(0, cap, size=m - fill)
                for i, j in zip(range(fill, m), picks.tolist()):
                    yield buf[j]
                    buf[j] = (data, i)
        for j in rng.permutation(len(buf)).tolist():
            yield buf[j]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        pending: list[tuple[dict[str, np.ndarray], int]] = []
        for it in self._items():
            pending.append(it)
            if len(pending) == self.batch_size:
                yield self._batch(pending)
                pending = []
        if pending and not self.drop_last:
            yield self._batch(pending)

    def _batch(self, items: list[tuple[dict[str, np.ndarray], int]]) -> dict[str, torch.Tensor]:
        keys = [f.key for f in self.fields] + ["index"]
        return {k: torch.from_numpy(_gather([d[k] for d, _ in items], [i for _, i in items])) for k in keys}


def _gather(arrays: list[np.ndarray], rows: list[int]) -> np.ndarray:
    """Stack ``arrays[k][rows[k]]`` for all k; runs from the same array use one fancy index."""
    first = arrays[0]
    if all(a is first for a in arrays):
        return first[np.asarray(rows)]
    out = np.empty((len(rows), *first.shape[1:]), dtype=first.dtype)
    for k, (a, r) in enumerate(zip(arrays, rows)):
        out[k] = a[r]
    return out


class ThreadLoader:
    """Iterate a :class:`StoreDataset` in one background thread, ``prefetch`` batches ahead.

    Zarr decompression releases the GIL, and a batch never crosses a process boundary, so this costs
    the main process only the loader's own work (``bench/loader.py``). ``pin_memory`` pins each batch in
    the thread. An exception in the thread is re-raised in the consumer; leaving the loop early stops it.
    """

    _END = object()

    def __init__(self, dataset: StoreDataset, prefetch: int = 4, pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.prefetch = max(1, int(prefetch))
        self.pin_memory = bool(pin_memory)

    def __len__(self) -> int:
        return self.dataset.num_batches(1)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item: Any) -> bool:
            while not stop.is_set():
                try:
                    q.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def run() -> None:
            try:
                for batch in self.dataset:
                    if self.pin_memory:
                        batch = {k: v.pin_memory() for k, v in batch.items()}
                    if not put(batch):
                        return
                put(self._END)
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer
                put(exc)

        thread = threading.Thread(target=run, name="facesr-store-loader", daemon=True)
        thread.start()
        try:
            while True:
                item = q.get()
                if item is self._END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5)


class StoreEvalDataset(StoreDataset):
    """Every usable sample of a split in store order, sharded contiguously across ranks (no drop, no pad):
    ``StoreDataset`` with ``shuffle=False`` and ``remainder="none"`` (split ``val`` unless given)."""

    def __init__(self, store: str | os.PathLike | FaceStore, options: LoaderOptions | str | None = None,
                 **kwargs: Any) -> None:
        if isinstance(options, LoaderOptions):
            kwargs = {"shuffle": False, "remainder": "none", **kwargs}
        else:
            kwargs.setdefault("shuffle", False)
            kwargs.setdefault("remainder", "none")
            if options is None:
                kwargs = {**dict(split="val"), **kwargs}
        super().__init__(store, options, **kwargs)
