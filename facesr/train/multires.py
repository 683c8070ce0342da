"""Multi-resolution training (UFVNet §III-D, §IV-A; issue 10, item 2): one LR size per batch, balanced over
a set of LR arrays (``data.lr: MR8`` or ``bicubic-pil_16,bicubic-pil_32``).

The loader of the first spec yields the batches (HR, priors, ``index`` = the store rows); :class:`MultiResLoader`
then replaces each batch's ``lr`` by the same rows of the scheduled LR array. The schedule is blocks of
``K`` positions (``K`` = the number of sizes), each block a permutation of the ``K`` sizes drawn from
``(seed, epoch, block)``: over an epoch every size gets ``⌊n/K⌋`` or ``⌈n/K⌉`` of the ``n`` batches, and the
size of batch ``p`` depends on nothing but ``(seed, epoch, p)`` — so skipping ``p`` batches on a mid-epoch
resume gives the uninterrupted run's sizes, and every DDP rank trains the same size at each step.
UFVNet's eq. 4 targets follow from the batch's LR side (``facesr.train.objective``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch

__all__ = ["MultiResLoader", "size_schedule"]


def _block(k: int, seed: int, epoch: int, block: int) -> list[int]:
    rng = np.random.Generator(np.random.Philox(key=[int(seed) & 0xFFFFFFFFFFFFFFFF, (int(epoch) << 32) | int(block)]))
    return [int(i) for i in rng.permutation(k)]


def size_schedule(k: int, n: int, seed: int, epoch: int) -> list[int]:
    """Indices into the ``k`` sizes for the first ``n`` batches of ``epoch`` (balanced blocks of ``k``)."""
    return [i for b in range(-(-n // k)) for i in _block(k, seed, epoch, b)][:n]


class MultiResLoader:
    """Wraps the training loader: same batches, ``lr`` from the scheduled spec (see the module docstring).

    ``dataset`` supplies ``epoch`` (set by the trainer before each ``iter``); ``specs`` are store LR names
    (``bicubic-pil_16``), the first being the one the base loader reads.
    """

    def __init__(self, base, dataset, store, specs: Sequence[str], seed: int) -> None:
        from facesr.data import schema

        self.base, self.dataset, self.store, self.seed = base, dataset, store, int(seed)
        self.specs = [schema.lr(s) for s in specs]

    def __len__(self) -> int:
        return len(self.base)

    def _lr(self, k: int, index: torch.Tensor) -> torch.Tensor:
        rows = index.numpy().astype(np.int64)
        uniq, inv = np.unique(rows, return_inverse=True)  # a sorted read, then back to the batch's order
        return torch.from_numpy(np.ascontiguousarray(self.store.read(self.specs[k], uniq)[inv]))

    def __iter__(self) -> Iterator[dict]:
        epoch, k, block, order = int(self.dataset.epoch), len(self.specs), -1, []
        for p, batch in enumerate(self.base):
            if p // k != block:
                block = p // k
                order = _block(k, self.seed, epoch, block)
            i = order[p % k]
            if i:  # spec 0 is what the base loader read already
                batch = dict(batch)
                batch["lr"] = self._lr(i, batch["index"])
            yield batch
