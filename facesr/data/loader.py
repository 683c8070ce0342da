"""Streaming a store into PyTorch: chunk-level shuffling, DDP and DataLoader-worker sharding.

:class:`StoreDataset` is a :class:`torch.utils.data.IterableDataset` over one split of a
:class:`~facesr.data.store.FaceStore`. The storage chunk (``store.chunk`` rows along N) is the unit of
reading: a worker reads a whole chunk with one zarr read per array, keeps the rows it was given and
feeds them through a shuffle buffer. Nothing is decoded or resized at training time.

Yielded items (dict keys; per sample, a batch adds a leading dimension):

=============  ========================  =========  ===========================================
key            shape                     dtype      meaning
=============  ========================  =========  ===========================================
``lr``         (3, s, s)                 float32    LR ``lr/<spec>`` in [0, 1] (when ``lr`` is set)
``hr``         (3, 128, 128)             float32    HR in [0, 1] (when ``hr=True``)
``heatmap``    (1, 128, 128)             float32    ``priors/heatmap`` in [0, 1]
``parsing``    (128, 128)                int64      ``priors/parsing`` class ids
``landmarks``  (68, 2)                   float32    HR pixels (x, y); NaN where no face
``<name>``     as stored                 float32 /  any other ``priors/<name>`` (floats → float32,
                                         int64      integers → int64)
``index``      ()                        int64      the sample's row in the store
=============  ========================  =========  ===========================================

``priors`` names what to load beside the images: ``"heatmap"``, ``"parsing"``, ``"landmarks"`` or
any other ``priors/<name>`` array. An array the store lacks is a :class:`StoreError` naming what the
store has (raised when the dataset is built, not in a worker).

``raw=True`` yields the stored bytes instead — ``lr``/``hr`` uint8 (s, s, 3) HWC, the heatmap in its
stored dtype, ``parsing`` uint8 — and :meth:`StoreDataset.to_float` converts a whole batch (on the
GPU if you pass ``device``): 4× less host→device traffic and no per-sample float work on the CPU.
``batch_size=B`` makes the dataset yield whole batches (use ``DataLoader(ds, batch_size=None)`` or
:meth:`StoreDataset.loader`): one ``np.stack`` per key per batch instead of per-sample tensors and
``default_collate``. Both are measured in ``bench/loader.py``.

Ordering rules (deterministic for a given ``(seed, epoch, rank, world_size, num_workers)``):

1. The rows used are those of ``split`` (all splits for ``None``), minus failed samples
   (``drop_invalid``). Chunks holding none of them are never read.
2. ``shuffle=True``: a generator seeded with ``(seed, epoch)`` permutes the chunks and the rows
   inside each chunk; the rows, chunk after chunk, form the epoch's sequence. ``shuffle=False``: the
   sequence is the rows in store order.
3. Ranks (``torch.distributed`` if initialised, else the given ``rank``/``world_size``, else 0/1)
   take contiguous, equal pieces of the sequence. ``remainder="drop"`` (the default when shuffling)
   drops the last ``len % world_size`` rows of the epoch's sequence — different rows each epoch, since
   the sequence is reshuffled; ``"pad"`` wraps around to the start of the sequence (like
   ``DistributedSampler``), so a few rows are seen twice; ``"none"`` (the default without shuffling)
   gives ranks pieces that differ by at most one row, so evaluation sees every row exactly once.
   Every rank sees the same number of rows under ``drop`` and ``pad``, which DDP needs.
4. A rank's piece is cut into ``num_workers`` contiguous, near-equal slices, one per DataLoader
   worker (the same sizes on every rank, so in DDP every rank makes the same number of batches —
   :meth:`StoreDataset.num_batches`; in batch mode each worker ends with its own short batch unless
   ``drop_last``). A worker reads its slice as runs of rows from one chunk; a chunk at a rank or
   worker boundary is read by both sides, each keeping its own rows.
5. Each worker mixes its rows in a shuffle buffer of ``buffer_size`` samples (seeded with
   ``(seed, epoch, rank, worker)``); the buffer holds references into the chunks it read, not copies.

Ordered mode (``shuffle=False``, or :class:`StoreEvalDataset`) yields rows in store order within each
worker; with several DataLoader workers batches arrive in worker round-robin, so sort by ``index``
where order matters (one worker keeps store order).

Recommended for training (the fastest configuration in ``bench/results/loader.json``)::

    ds = StoreDataset(store, "train", lr="bicubic-pil:16", priors=("heatmap",), batch_size=64, raw=True)
    for epoch in range(epochs):
        ds.set_epoch(epoch)
        for batch in ds.loader():                         # ThreadLoader: one background thread
            batch = ds.to_float(batch, device="cuda")     # uint8 over the bus, float on the GPU

DataLoader worker processes work too (``ds.loader(num_workers=2)``), but every batch then crosses a
process boundary through shared memory, which here costs more CPU than reading it.

Epochs: call :meth:`StoreDataset.set_epoch` before each epoch, as with ``DistributedSampler``. The
epoch lives in shared memory, so it also reaches ``persistent_workers``.

Workers reopen an on-disk store by path (safe with ``fork`` and ``spawn``); an in-memory store is
handed over as is (use ``num_workers=0`` or ``fork``).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from facesr.data.store import FaceStore
from facesr.errors import ConfigError, StoreError

__all__ = ["StoreDataset", "StoreEvalDataset", "ThreadLoader", "lr_array_name", "to_float"]

REMAINDERS = ("drop", "pad", "none")


def lr_array_name(lr: str) -> str:
    """Store array of an LR spec: ``"bicubic-pil:16"`` or ``"bicubic-pil_16"`` → ``"lr/bicubic-pil_16"``."""
    s = str(lr).strip()
    if s.startswith("lr/"):
        return s
    method, sep, size = s.rpartition(":")
    return f"lr/{method}_{size}" if sep else f"lr/{s}"


@dataclass(frozen=True)
class _Field:
    key: str  # dict key
    array: str  # store array name
    kind: str  # image | heatmap | parsing | landmarks | generic
    scale: float | None = None  # integer heatmaps: stored value / scale → [0, 1]


def _heatmap_scale(arr) -> float | None:
    """None for float heatmaps; for integer ones the divisor to [0, 1]: attrs ``scale`` (or ``max``), else
    the dtype's maximum."""
    dt = np.dtype(arr.dtype)
    if np.issubdtype(dt, np.floating):
        return None
    if not np.issubdtype(dt, np.integer):
        raise ConfigError(f"priors/heatmap has dtype {dt}; expected a float or an integer (quantised) type")
    attrs = dict(arr.attrs)
    for key in ("scale", "max", "quant_max"):
        if key in attrs:
            return float(attrs[key])
    return float(np.iinfo(dt).max)


def _convert(field: _Field, x: np.ndarray, batched: bool) -> torch.Tensor:
    """Stored numpy → the documented tensor (see module table)."""
    t = torch.from_numpy(np.ascontiguousarray(x))
    return _convert_tensor(field.kind, t, batched, field.scale)


def _convert_tensor(kind: str, t: torch.Tensor, batched: bool, scale: float | None) -> torch.Tensor:
    if kind == "image":  # (…, H, W, 3) uint8 → (…, 3, H, W) float32 [0, 1]
        perm = (0, 3, 1, 2) if batched else (2, 0, 1)
        out = torch.empty(t.permute(perm).shape, dtype=torch.float32, device=t.device)
        return out.copy_(t.permute(perm)).mul_(1.0 / 255.0)
    if kind == "heatmap":  # (…, S, S) → (…, 1, S, S) float32 [0, 1]
        if t.dim() == (3 if batched else 2):
            t = t.unsqueeze(1 if batched else 0)
        out = t.to(torch.float32)
        if scale is not None:
            out = out.mul_(1.0 / scale)
        return out
    if kind == "parsing":
        return t.to(torch.int64)
    if t.is_floating_point():
        return t.to(torch.float32)
    return t.to(torch.int64) if not t.dtype == torch.bool else t


def to_float(batch: Mapping[str, Any], device: torch.device | str | None = None, heatmap_scale: float | None = None,
             non_blocking: bool = True) -> dict[str, Any]:
    """Convert a ``raw=True`` batch (stored dtypes, HWC images) to the documented float layout, after moving it
    to ``device``. ``heatmap_scale``: the divisor of an integer-quantised heatmap (the dataset's
    :meth:`StoreDataset.to_float` passes it for you). Tensors that are already converted pass through."""
    out: dict[str, Any] = {}
    for key, v in batch.items():
        if not isinstance(v, torch.Tensor):
            out[key] = v
            continue
        if device is not None:
            v = v.to(device, non_blocking=non_blocking)
        if key in ("lr", "hr") and v.dtype == torch.uint8:
            out[key] = _convert_tensor("image", v, v.dim() == 4, None)
        elif key == "heatmap" and not (v.dtype == torch.float32 and v.dim() in (3, 4) and v.shape[-3] == 1):
            out[key] = _convert_tensor("heatmap", v, v.dim() >= 3, heatmap_scale)
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


class StoreDataset(IterableDataset):
    """Stream one split of a store; see the module docstring for the keys and the ordering rules.

    Args:
        store: a store path or an open :class:`FaceStore`.
        split: ``"train"``, ``"val"``, ``"test"`` or ``None`` (all).
        lr: LR spec (``"bicubic-pil_16"`` or ``"bicubic-pil:16"``), or ``None`` for no LR.
        priors: extra arrays, e.g. ``("heatmap", "parsing", "landmarks")``.
        hr: load the HR image.
        shuffle, seed: chunk-level shuffling, seeded per epoch with ``(seed, epoch)``.
        buffer_size: shuffle buffer in samples (0 or 1: no buffer).
        drop_invalid: skip samples whose ``failure`` is set.
        rank, world_size: override ``torch.distributed``.
        remainder: ``"drop"`` / ``"pad"`` / ``"none"``; default ``"drop"`` when shuffling, else ``"none"``.
        batch_size: yield batches of this size instead of samples (last one may be short unless
            ``drop_last``).
        raw: yield stored dtypes; convert with :meth:`to_float`.
    """

    def __init__(
        self,
        store: str | os.PathLike | FaceStore,
        split: str | None = "train",
        lr: str | None = "bicubic-pil_16",
        priors: Sequence[str] = ("heatmap",),
        hr: bool = True,
        shuffle: bool = True,
        seed: int = 0,
        buffer_size: int = 512,
        drop_invalid: bool = True,
        rank: int | None = None,
        world_size: int | None = None,
        remainder: str | None = None,
        batch_size: int | None = None,
        drop_last: bool = False,
        raw: bool = False,
    ) -> None:
        super().__init__()
        if isinstance(store, FaceStore):
            self._store: FaceStore | None = store
            self._path: Path | None = store.path
        else:
            self._path = Path(store)
            self._store = FaceStore.open(self._path)
        st = self._store
        if isinstance(priors, str):
            priors = (priors,)
        self.split = split
        self.shuffle = bool(shuffle)
        self.seed = int(seed)
        self.buffer_size = int(buffer_size)
        self.raw = bool(raw)
        self.batch_size = None if batch_size is None else int(batch_size)
        self.drop_last = bool(drop_last)
        if self.batch_size is not None and self.batch_size < 1:
            raise ConfigError(f"batch_size must be positive, got {batch_size}")
        remainder = remainder or ("drop" if self.shuffle else "none")
        if remainder not in REMAINDERS:
            raise ConfigError(f"remainder must be one of {REMAINDERS}, got {remainder!r}")
        self.remainder = remainder

        dr, dw = _dist_rank_world()
        self.rank = dr if rank is None else int(rank)
        self.world_size = dw if world_size is None else int(world_size)
        if not 0 <= self.rank < self.world_size:
            raise ConfigError(f"rank {self.rank} is outside world size {self.world_size}")

        # fields (validated now, so a missing array fails here and not inside a worker)
        fields: list[_Field] = []
        if lr:
            fields.append(_Field("lr", lr_array_name(lr), "image"))
        if hr:
            fields.append(_Field("hr", "hr", "image"))
        for p in priors:
            if p == "landmarks":
                fields.append(_Field("landmarks", "landmarks", "landmarks"))
            elif p == "heatmap":
                fields.append(_Field("heatmap", "priors/heatmap", "heatmap", _heatmap_scale(st.array("priors/heatmap"))))
            elif p == "parsing":
                fields.append(_Field("parsing", "priors/parsing", "parsing"))
            else:
                name = p if p.startswith("priors/") else f"priors/{p}"
                fields.append(_Field(name.split("/", 1)[1], name, "generic"))
        keys = [f.key for f in fields]
        if len(set(keys)) != len(keys) or "index" in keys:
            raise ConfigError(f"duplicate or reserved output keys {keys}")
        for f in fields:
            st.array(f.array)  # StoreError listing what the store has
        if not fields:
            raise ConfigError("nothing to load: set lr, hr or priors")
        self.fields: tuple[_Field, ...] = tuple(fields)

        rows = st.indices(split, valid_only=drop_invalid)
        self._chunk = st.chunk
        # per chunk (in store order) the wanted rows
        cid = rows // self._chunk
        bounds = np.flatnonzero(np.diff(cid)) + 1
        self._chunk_ids = cid[np.r_[0, bounds]] if len(rows) else np.zeros(0, np.int64)
        self._chunk_rows = np.split(rows, bounds) if len(rows) else []
        self.total = int(len(rows))
        if self.total == 0:
            raise StoreError(f"{st._where()} has no {'usable ' if drop_invalid else ''}samples in split {split!r}",
                             hint="see `facesr data info STORE` for splits and failures")
        if self.remainder == "drop" and self.total < self.world_size:
            raise ConfigError(f"split {split!r} has {self.total} samples, fewer than {self.world_size} ranks")
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self._zarrs: dict[str, Any] | None = None
        self._n = st.n

    # --------------------------------------------------------------------------- public
    @property
    def heatmap_scale(self) -> float | None:
        return next((f.scale for f in self.fields if f.key == "heatmap"), None)

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
        """Samples this rank sees per epoch (also in batch mode; see :meth:`num_batches` for batches)."""
        return self.per_rank()

    def to_float(self, batch: Mapping[str, Any], device: torch.device | str | None = None,
                 non_blocking: bool = True) -> dict[str, Any]:
        """:func:`to_float` with this dataset's heatmap scale."""
        return to_float(batch, device, self.heatmap_scale, non_blocking)

    def loader(self, batch_size: int | None = None, num_workers: int = 0, prefetch: int = 4,
               pin_memory: bool = False, **kwargs: Any):
        """An iterable of batches over this dataset.

        Batch mode (``batch_size`` given at construction) with ``num_workers=0``: a :class:`ThreadLoader`
        (one background thread, no worker processes, no inter-process copies — the fastest here, see
        ``bench/results/loader.json``). Otherwise a ``DataLoader`` (per-sample mode needs ``batch_size``
        here), with persistent workers and ``prefetch`` batches per worker.
        """
        if self.batch_size is not None and num_workers == 0:
            if batch_size not in (None, self.batch_size):
                raise ConfigError(f"the dataset yields batches of {self.batch_size}; got batch_size={batch_size}")
            return ThreadLoader(self, prefetch=prefetch, pin_memory=pin_memory)
        if num_workers > 0:
            kwargs.setdefault("persistent_workers", True)
            kwargs.setdefault("prefetch_factor", prefetch)
        if self.batch_size is not None:
            return torch.utils.data.DataLoader(self, batch_size=None, num_workers=num_workers,
                                               pin_memory=pin_memory, **kwargs)
        if batch_size is None:
            raise ConfigError("per-sample mode needs batch_size (or build the dataset with batch_size=B)")
        return torch.utils.data.DataLoader(self, batch_size=batch_size, num_workers=num_workers,
                                           pin_memory=pin_memory, **kwargs)

    def worker_counts(self, num_workers: int = 1) -> list[int]:
        """Samples each DataLoader worker of this rank yields per epoch (the same on every rank under
        ``drop``/``pad``, so every rank makes the same number of batches)."""
        base, extra = divmod(self.per_rank(), max(1, num_workers))
        return [base + (1 if w < extra else 0) for w in range(max(1, num_workers))]

    def num_batches(self, num_workers: int = 1, batch_size: int | None = None, drop_last: bool | None = None) -> int:
        """Batches this rank yields per epoch: in batch mode, or through a DataLoader with ``batch_size``
        (each worker ends with its own short batch unless ``drop_last``)."""
        b = batch_size or self.batch_size
        if b is None:
            raise ConfigError("num_batches needs batch_size in per-sample mode")
        drop = self.drop_last if drop_last is None else drop_last
        return sum(c // b if drop else -(-c // b) for c in self.worker_counts(num_workers))

    def plan(self, epoch: int | None = None, worker: int = 0, num_workers: int = 1) -> list[tuple[int, np.ndarray]]:
        """The (chunk id, store rows) runs one worker of this rank reads in ``epoch``, in reading order.

        Worker ``w`` takes the ``w``-th of ``num_workers`` contiguous, near-equal slices of the rank's
        piece (:meth:`worker_counts`); a chunk cut by a slice boundary is read by both workers."""
        epoch = self.epoch if epoch is None else int(epoch)
        seq, cid = self._sequence(epoch)
        seq, cid = self._rank_piece(seq, cid)
        counts = self.worker_counts(num_workers)
        start = sum(counts[:worker])
        seq, cid = seq[start : start + counts[worker]], cid[start : start + counts[worker]]
        if len(seq) == 0:
            return []
        bounds = np.flatnonzero(np.diff(cid)) + 1
        starts = np.r_[0, bounds]
        return [(int(cid[s]), r) for s, r in zip(starts, np.split(seq, bounds))]

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
        if self._zarrs is None:
            if self._store is None:
                self._store = FaceStore.open(self._path)
            self._zarrs = {f.key: self._store.array(f.array) for f in self.fields}
        return self._zarrs

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        if self._path is not None:
            state["_store"] = None  # reopened by path in the worker
        state["_zarrs"] = None
        return state

    def _read_run(self, arrays: dict[str, Any], chunk_id: int, rows: np.ndarray) -> dict[str, np.ndarray]:
        start = chunk_id * self._chunk
        sl = slice(start, min(start + self._chunk, self._n))
        local = rows - start
        full = len(local) == sl.stop - sl.start and np.array_equal(local, np.arange(len(local)))
        out = {}
        for f in self.fields:
            block = np.asarray(arrays[f.key][sl])  # one read per array per chunk
            out[f.key] = block if full else block[local]
        out["index"] = rows.astype(np.int64)
        return out

    def _items(self) -> Iterator[tuple[dict[str, np.ndarray], int]]:
        """(chunk data, row within it) in this worker's final order."""
        info = get_worker_info()
        worker, nworkers = (0, 1) if info is None else (info.id, info.num_workers)
        epoch = self.epoch
        runs = self.plan(epoch, worker, nworkers)
        store = self._arrays()
        if not self.shuffle or self.buffer_size <= 1:
            for cid, rows in runs:
                data = self._read_run(store, cid, rows)
                for i in range(len(rows)):
                    yield data, i
            return
        rng = np.random.default_rng([self.seed, epoch, self.rank, worker, 1])
        buf: list[tuple[dict[str, np.ndarray], int]] = []
        cap = self.buffer_size
        for cid, rows in runs:
            data = self._read_run(store, cid, rows)
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
        items = self._items()
        if self.batch_size is None:
            for data, i in items:
                yield self._sample(data, i)
            return
        pending: list[tuple[dict[str, np.ndarray], int]] = []
        for it in items:
            pending.append(it)
            if len(pending) == self.batch_size:
                yield self._batch(pending)
                pending = []
        if pending and not self.drop_last:
            yield self._batch(pending)

    def _sample(self, data: dict[str, np.ndarray], i: int) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for f in self.fields:
            x = data[f.key][i]
            out[f.key] = torch.from_numpy(np.array(x)) if self.raw else _convert(f, x, batched=False)
        out["index"] = torch.tensor(int(data["index"][i]), dtype=torch.int64)
        return out

    def _batch(self, items: list[tuple[dict[str, np.ndarray], int]]) -> dict[str, torch.Tensor]:
        # group consecutive items by chunk so each chunk is gathered with one fancy index
        out: dict[str, torch.Tensor] = {}
        keys = [f.key for f in self.fields] + ["index"]
        stacked = {k: _gather([d[k] for d, _ in items], [i for _, i in items]) for k in keys}
        for f in self.fields:
            x = stacked[f.key]
            out[f.key] = torch.from_numpy(x) if self.raw else _convert(f, x, batched=True)
        out["index"] = torch.from_numpy(stacked["index"].astype(np.int64))
        return out


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
    """Iterate a batch-mode :class:`StoreDataset` in one background thread, ``prefetch`` batches ahead.

    Zarr decompression releases the GIL, and a batch never crosses a process boundary, so this costs
    the main process only the loader's own work (``bench/loader.py``: worker processes add more CPU in
    inter-process copies than the whole loading takes). ``pin_memory`` pins each batch in the thread.
    An exception in the thread is re-raised in the consumer; leaving the loop early stops the thread.
    """

    _END = object()

    def __init__(self, dataset: StoreDataset, prefetch: int = 4, pin_memory: bool = False) -> None:
        if dataset.batch_size is None:
            raise ConfigError("ThreadLoader needs a StoreDataset built with batch_size=B")
        self.dataset = dataset
        self.prefetch = max(1, int(prefetch))
        self.pin_memory = bool(pin_memory)

    def __len__(self) -> int:
        return self.dataset.num_batches(1)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        import queue
        import threading

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
    ``StoreDataset`` with ``shuffle=False`` and ``remainder="none"``."""

    def __init__(self, store: str | os.PathLike | FaceStore, split: str | None = "val", **kwargs: Any) -> None:
        kwargs.setdefault("shuffle", False)
        kwargs.setdefault("remainder", "none")
        super().__init__(store, split, **kwargs)
