"""Light U-Net for ×8 face SR (seed 000, "You Only Landmark Once").

Paper: R. Carraro, A. Briotto, E. Hysa, M. Fiorucci, L. Ballan, "You Only Landmark Once: Lightweight U-Net
Face Super Resolution with YOLO-World Landmark Heatmaps" (``shared/papers/000_yolo_landmark_unet.txt``):
architecture §II-A and Fig. 1; efficiency Table III (7.3M params / 4.00 GMACs; 1 refinement head 7.1M /
1.28 GMACs). The heatmap prior and losses (§II-B, §II-C) live in ``facesr.priors`` and ``facesr.train``.
Released code: the authors' notebook (https://anonymous.4open.science/r/You_Only_Landmark_Once-20CF); this is
an independent re-implementation of its layer layout (parameter counts match exactly).

Forward: ``lr (B, 3, h, w)`` in ``[0, 1]`` with ``h = w = 128 / scale`` → ``[-1, 1]`` (the paper's range,
``input_range = "minus1_1"``) → network → ``[0, 1]``, unclamped, ``(B, 3, scale·h, scale·w)``. Sides must be
multiples of 8 (three stride-2 levels).

Architecture (3×3 convs with bias, no normalisation, LeakyReLU 0.2 everywhere):

* encoder at LR size: DoubleConv 3→48 (stride 1), 48→96, 96→192, 192→384 (stride 2 each; 16→8→4→2);
* bottleneck: DoubleConv 384→384 (2×2);
* decoder: 3 × [bilinear ×2 (``align_corners=False``) → concat skip → DoubleConv]: 384+192→192,
  192+96→96, 96+48→48 (back to LR size);
* learned upsampling: log2(scale) × [nearest ×2 → conv 48→48 → LReLU] (16→32→64→128 at ×8);
* refinement head: conv 1×1 48→48 → ``refine_blocks`` residual blocks (conv-act-conv + x) → conv 1×1 48→3;
* global skip: + bilinear upsample of the input (``align_corners=False``), no output clamp.

The paper says the decoder upsampling and the global skip use "bilinear or bicubic, matching the input
degradation"; the released notebook uses bilinear for both. ``interp="bicubic"`` selects bicubic.

Variants (parameters exact, asserted in ``tests/models``; GMACs at batch 1 by :mod:`facesr.metrics.complexity`,
equal to fvcore's — the paper reports 4.00
and 1.28, and 7.3M / 7.1M parameters):

================  ==================================  ============  =======
name              config                              params        GMACs
================  ==================================  ============  =======
``unet_light``    ×8 (16→128), 5 refinement blocks    7,306,371     3.99
``unet_light_1rh``×8 (16→128), 1 refinement block     7,140,099     1.27
``unet_light_x4`` ×4 (32→128), 5 refinement blocks    7,285,587     4.28
================  ==================================  ============  =======

Departure (×4): the paper covers only ×8. For 32×32 inputs facesr keeps the encoder/decoder unchanged
(fully convolutional: the bottleneck sits at 4×4 instead of 2×2) and uses two learned upsampling stages
instead of three (one conv 48→48 fewer, hence −20,784 parameters). Default PyTorch init (the notebook does
not re-initialise).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from facesr.errors import ConfigError
from facesr.models import MODELS
from facesr.models.layers import DoubleConv, ResidualBlock, conv1x1, conv3x3, make_act
from facesr.models.ranges import from_model_range, to_model_range

PARAM_COUNTS: dict[str, int] = {"unet_light": 7_306_371, "unet_light_1rh": 7_140_099, "unet_light_x4": 7_285_587}


class UpBlock(nn.Module):
    """Decoder block: interpolate ×2 → concat skip → DoubleConv. ``(N, c_in, h, w), (N, c_skip, 2h, 2w) →
    (N, c_out, 2h, 2w)``."""

    def __init__(self, c_in: int, c_skip: int, c_out: int, interp: str = "bilinear", act: str = "leakyrelu") -> None:
        super().__init__()
        self.interp = interp
        self.conv = DoubleConv(c_in + c_skip, c_out, 1, act)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode=self.interp, align_corners=False)
        return self.conv(torch.cat([x, skip], 1))


class LearnedUpsample(nn.Sequential):
    """Nearest ×2 → conv 3×3 → act: ``(N, c, h, w) → (N, c, 2h, 2w)`` (no checkerboard artefacts)."""

    def __init__(self, channels: int, act: str = "leakyrelu") -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"), conv3x3(channels, channels), make_act(act, channels)
        )


class RefineHead(nn.Sequential):
    """Conv 1×1 c→c → ``blocks`` residual blocks → conv 1×1 c→3."""

    def __init__(self, channels: int, blocks: int, act: str = "leakyrelu") -> None:
        super().__init__(conv1x1(channels, channels), *(ResidualBlock(channels, act) for _ in range(blocks)),
                         conv1x1(channels, 3))


class UNetLight(nn.Module):
    """Light U-Net: ``forward(lr (B, 3, h, w) in [0, 1]) → SR (B, 3, scale·h, scale·w) in [0, 1]`` (unclamped)."""

    input_range = "minus1_1"
    kind = "sr"

    def __init__(
        self,
        scale: int = 8,
        base_channels: int = 48,
        refine_blocks: int = 5,
        interp: str = "bilinear",
        act: str = "leakyrelu",
    ) -> None:
        super().__init__()
        if scale < 2 or scale & (scale - 1):
            raise ConfigError(f"unet_light scale must be a power of two ≥ 2, got {scale}")
        if interp not in ("bilinear", "bicubic"):
            raise ConfigError(f"unet_light interp must be bilinear or bicubic, got {interp!r}")
        self.scale = scale
        self.interp = interp
        c = [base_channels * 2**i for i in range(4)]  # 48, 96, 192, 384
        self.enc = nn.ModuleList([DoubleConv(3, c[0], 1, act), DoubleConv(c[0], c[1], 2, act),
                                  DoubleConv(c[1], c[2], 2, act), DoubleConv(c[2], c[3], 2, act)])
        self.bottleneck = DoubleConv(c[3], c[3], 1, act)
        self.dec = nn.ModuleList([UpBlock(c[3], c[2], c[2], interp, act), UpBlock(c[2], c[1], c[1], interp, act),
                                  UpBlock(c[1], c[0], c[0], interp, act)])
        self.upsample = nn.Sequential(*(LearnedUpsample(c[0], act) for _ in range(int(math.log2(scale)))))
        self.head = RefineHead(c[0], refine_blocks, act)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        h, w = lr.shape[-2:]
        if h % 8 or w % 8:
            raise ConfigError(f"unet_light needs input sides divisible by 8, got {h}×{w}")
        x = to_model_range(lr, self.input_range)
        skips = []
        f = x
        for i, block in enumerate(self.enc):
            f = block(f)
            if i < len(self.enc) - 1:
                skips.append(f)
        f = self.bottleneck(f)
        for block, skip in zip(self.dec, reversed(skips)):
            f = block(f, skip)
        y = self.head(self.upsample(f))
        y = y + F.interpolate(x, scale_factor=self.scale, mode=self.interp, align_corners=False)
        return from_model_range(y, self.input_range)


def _build(name: str, defaults: dict, overrides: dict) -> UNetLight:
    args = {**defaults, **overrides}
    try:
        model = UNetLight(**args)
    except TypeError as exc:
        raise ConfigError(f"bad option for {name}: {exc}",
                          hint="options: scale, base_channels, refine_blocks, interp, act") from None
    arch = {k: v for k, v in args.items() if k != "interp"}
    model.expected_params = PARAM_COUNTS[name] if arch == defaults else None
    return model


_PAPER = {"scale": 8, "base_channels": 48, "refine_blocks": 5, "act": "leakyrelu"}


@MODELS.register("unet_light")
def unet_light(**overrides) -> UNetLight:
    """Light U-Net ×8 (16→128), 5 refinement blocks: 7,306,371 parameters, 3.99 GMACs."""
    return _build("unet_light", dict(_PAPER), overrides)


@MODELS.register("unet_light_1rh")
def unet_light_1rh(**overrides) -> UNetLight:
    """Light U-Net ×8 with one refinement block (the paper's "1 RH"): 7,140,099 parameters, 1.27 GMACs."""
    return _build("unet_light_1rh", {**_PAPER, "refine_blocks": 1}, overrides)


@MODELS.register("unet_light_x4")
def unet_light_x4(**overrides) -> UNetLight:
    """Light U-Net ×4 (32→128; two learned upsamplers, see the module docstring): 7,285,587 parameters."""
    return _build("unet_light_x4", {**_PAPER, "scale": 4}, overrides)


__all__ = ["PARAM_COUNTS", "UNetLight", "unet_light", "unet_light_1rh", "unet_light_x4"]
