"""Interpolation baselines: ``bicubic`` and ``bilinear`` up-sampling to 128×128, no weights.

Forward: ``lr (B, 3, h, w)`` in ``[0, 1]``, any size → ``(B, 3, 128, 128)`` (``hr_size``) with
``torch.nn.functional.interpolate`` (``align_corners=False``, anti-aliased only when shrinking), unclamped
(bicubic overshoots slightly; metrics quantise). ``input_range = "zero_one"``.

Departure: torch's bicubic kernel uses a = −0.75, PIL's (which the papers' "Bicubic" rows and the data
pipeline's ``upscale_back`` in ``facesr.data.degrade`` use) a = −0.5, so scores differ from PIL-bicubic
tables by a few hundredths of a dB. Use ``facesr.data.degrade`` where the exact PIL baseline is needed.
Parameters: 0. MACs: only the interpolation's taps (bicubic 0.8 M, bilinear 0.2 M at 16→128; see
:mod:`facesr.metrics.complexity`).
"""

from __future__ import annotations

import torch
from torch import nn

from facesr.models import MODELS
from facesr.models.layers import resize_to

PARAM_COUNTS: dict[str, int] = {"bicubic": 0, "bilinear": 0}


class Interpolate(nn.Module):
    """``forward(lr (B, 3, h, w) in [0, 1]) → (B, 3, hr_size, hr_size)`` by ``mode`` interpolation."""

    input_range = "zero_one"
    scale = None  # any LR size
    kind = "sr"
    expected_params = 0

    def __init__(self, mode: str = "bicubic", hr_size: int = 128) -> None:
        super().__init__()
        self.mode = mode
        self.hr_size = hr_size

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        return resize_to(lr, self.hr_size, self.mode)

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, hr_size={self.hr_size}"


@MODELS.register("bicubic")
def bicubic(*, hr_size: int = 128) -> Interpolate:
    """Bicubic up-sampling to ``hr_size`` (torch kernel, a = −0.75)."""
    return Interpolate("bicubic", hr_size)


@MODELS.register("bilinear")
def bilinear(*, hr_size: int = 128) -> Interpolate:
    """Bilinear up-sampling to ``hr_size``."""
    return Interpolate("bilinear", hr_size)


__all__ = ["Interpolate", "PARAM_COUNTS", "bicubic", "bilinear"]
