"""Geometric self-ensemble (GVTNet+, the "+" of EDSR/RCAN/GVTNet tables), for any SR model.

The eight transforms are the dihedral group of the square: ``rot90`` by k ∈ {0, 1, 2, 3} quarter turns,
each with and without a horizontal flip — the same set as BasicSR's ``hflip`` / ``vflip`` / ``transpose``
test-time augmentation. Every transformed LR is super-resolved, the output transformed back by the inverse
(flip first, then rotate by −k), and the eight outputs averaged::

    self_ensemble(f, x) = 1/8 · Σ_t  t⁻¹( f( t(x) ) )

A model that commutes with all eight transforms gives back its plain output; any model gives the mean
of the eight inverted outputs. Pure: no state, the model is called eight times on batches of x's size
(memory as for one call), in the order k = 0..3, unflipped then flipped.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["TRANSFORMS", "invert", "self_ensemble", "transform"]

#: (quarter turns, horizontal flip) for the eight transforms, identity first
TRANSFORMS: tuple[tuple[int, bool], ...] = tuple((k, f) for k in range(4) for f in (False, True))


def transform(x: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """``(…, H, W)`` → rotated ``k`` quarter turns (counter-clockwise), then flipped left–right if ``flip``."""
    y = torch.rot90(x, k, dims=(-2, -1)) if k % 4 else x
    return y.flip(-1) if flip else y


def invert(y: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """The inverse of :func:`transform`: unflip, then rotate back by ``−k``."""
    y = y.flip(-1) if flip else y
    return torch.rot90(y, -k, dims=(-2, -1)) if k % 4 else y


def self_ensemble(predict: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Mean over the eight transforms ``t`` of ``t⁻¹(predict(t(x)))``; ``x`` ``(B, C, h, w)``, output as
    ``predict``'s (averaged in float32 at least)."""
    total = None
    for k, flip in TRANSFORMS:
        out = invert(predict(transform(x, k, flip)), k, flip)
        out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
        total = out.clone() if total is None else total.add_(out)
    return total / len(TRANSFORMS)
