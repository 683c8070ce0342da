"""W-Net: a facial feature-guided face super-resolution network.

Paper: H. Liu, Y. Yang, Y. Liu, "W-Net: A Facial Feature-Guided Face Super-Resolution Network"
(arXiv 2406.00676; ``shared/papers/001_wnet.txt``): Parsing Block (§3.1, eqs. 2-8), LR-Parsing map
Fusion module LPF (§3.2, eqs. 9-11), multi-scale multiple reconstruction — the W (§3.3, eqs. 12-19) —
and the SCAB encoder-decoder (eqs. 20-23). No public code exists; the defaults follow the equations (64-channel
convolutions, eq. 23 without skips) and every width the paper does not give is facesr's choice.

Forward: ``lr (B, 3, h, w)`` in ``[0, 1]`` → ``{"sr": (B, 3, S, S), "parsing": (B, P, S, S)}`` with
``S = hr_size`` (128), both unclamped. The paper super-resolves the bicubic-upscaled LR image ``I^d`` (its
feature maps reach 1024×1024 = 8·128 after three ×2 up-samplings), so the LR is first resized to S×S with
bicubic interpolation (``align_corners=False``); images stay in ``[0, 1]`` (the paper names no other range).
``parsing`` is the Parsing Block's estimate of the binarised BiSeNet map (skin 1, else 0) on the same S×S
grid, ``P = 3`` channels as eq. 8 says (the target is the binary map repeated on 3 channels; set
``parsing_channels=1`` for a single-channel head).

Structure (the paper gives the 64 of eqs. 2 and 14-19; the other widths are facesr's choices):

* Parsing Block: conv 3×3 3→64 (eq. 2) → ``parsing_res_blocks`` = 3 residual blocks (conv-ReLU-conv + x)
  → hourglass of depth 4 (Newell-style: one residual block per node, max-pool down, nearest up) →
  multi-scale feature attention unit (eqs. 4-7: y1 = ReLU(1×1, 64→32), y2, y3 = ReLU(3×3, 64→32),
  y4 = ReLU(3×3, 96→64) "doubled", y5 = ReLU(3×3, 32→16) "halved", CA + SA on cat(y2, y4, y5) (112 ch),
  1×1 112→64, + F_Deep) → conv 3×3 64→P (eq. 8).
* LPF(c) on features ``F_LR`` (c ch) and a parsing map (P ch): the map is first lifted to c channels by a
  conv 3×3 (``F_parsing``; eq. 10 adds F_parsing to F_LR, so they must have equal widths, which the paper
  leaves implicit); then eqs. 9-11 exactly: three conv 3×3, CA + SA → conv 3×3, pixel attention
  (1×1 conv + sigmoid) weighting, conv 3×3 on the concatenation, conv 1×1 on the sum, four-way sum.
  No activations beyond the attentions (none are drawn in Fig. 3).
* The W (eqs. 12-19): F¹ = cat(I^d, parsing); three times [Upsample → LPF with the parsing map enlarged
  by nearest neighbour] (eqs. 13-17: 2×, 4×, 8×, i.e. 256², 512², 1024²), then three times
  [Downsample → LPF] (eqs. 18-19: 4×, 2×, 1×). Upsample = conv 3×3 → PixelShuffle ×2 → BatchNorm and
  Downsample = conv 3×3 → PixelUnshuffle ×2 → BatchNorm (the paper's "Pixel Shuffle / invPixelShuffle and
  BatchNorm" modules, the conv being eqs. 14-19's f_{3×3,64}). Every one of those six convs has 64 outputs:
  the fusions see ``up_widths = (16, 16, 16)`` channels on the way up (the shuffle divides 64 by 4) and
  ``down_widths = (256, 256, 256)`` on the way down (4×, 2×, 1×: the unshuffle multiplies 64 by 4; the conv
  before each unshuffle has a quarter of the width). The 512² fusion at 256 channels dominates the cost.
  ``down_widths=(16, 32, 64), decoder_skips="additive"`` is facesr's earlier narrow variant (≈ 1/26 of the
  MACs, 4,720,825 parameters), kept only as overrides.
* Encoder (eq. 22): four times [Downsample (conv 3×3 → 16, PixelUnshuffle → 64, BatchNorm; the first takes the
  W's ``down_widths[-1]`` channels) → 2 SCAB → LPF with the parsing map nearest-downsampled to 64, 32, 16, 8].
  Decoder (eq. 23 as written, ``decoder_skips="none"``): four times [Upsample (conv 3×3 64→256, PixelShuffle,
  BatchNorm) → 2 SCAB]; ``decoder_skips="additive"`` (a named option, not in the paper) adds the encoder
  feature of each size after the Upsample. Out: conv 3×3 64→3 + I^d (global residual, a facesr choice).
* SCAB: RCAB (conv 3×3 → ReLU → conv 3×3 → channel attention, reduction 16) followed by convolutional
  self-attention added to its output (eqs. 20-21): Q, K, V each from a depthwise 3×3 then a 1×1 conv;
  4 heads; attention across channels (the C×C "channel-level context" form, as in Restormer's MDTA:
  spatial attention over 128² tokens would not fit), scaled by 1/√d with d = H·W, the length of the dot
  product; output 1×1 projection; block residual x + y.

Measured (default config, 16→128; ``bench/results/models.json``): 15,804,294 parameters (the paper gives no
count to match); 1,362 GMACs at batch 1 (:mod:`facesr.metrics.complexity`; the three 256-channel down-fusions at
512², 256², 128² are nearly all of it). Memory at batch 4 on the CPU (peak-RSS delta above weights and input, one
pass, 2 threads) could be afforded at reduced ``hr_size`` only, and grows with the pixel count (×3.9 from 32 to
64): inference 0.85 GiB at ``hr_size`` 32 and 3.3 GiB at 64; one training step (forward + backward) 1.6 GiB at 32
and 6.1 GiB at 64 — so ≈ 13 GiB (inference) and ≈ 24 GiB (training step) at the paper's 128, i.e. batch 4 on one
24 GB card is at its limit; the paper's four 4090s hold one image each (≈ 6 GiB). The narrow variant
(``down_widths=(16, 32, 64), decoder_skips="additive"``) needs 0.5 GiB per training step at 32, batch 4.

Resolution: any ``hr_size`` divisible by 2^``encoder_levels`` works; tests use ``hr_size=32`` with a
reduced width to keep the backward pass cheap.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from facesr.errors import ConfigError
from facesr.models import MODELS
from facesr.models.layers import (
    ChannelAttention,
    ResidualBlock,
    SpatialAttention,
    conv1x1,
    conv3x3,
    resize_to,
    with_options,
)
from facesr.models.ranges import from_model_range, to_model_range

__all__ = ["PARAM_COUNT", "LPF", "SCAB", "ParsingBlock", "WNet", "WNetConfig", "wnet"]


@dataclass(frozen=True)
class WNetConfig:
    """W-Net settings; see the module docstring for where each default comes from."""

    hr_size: int = 128
    width: int = 64
    parsing_channels: int = 3
    parsing_res_blocks: int = 3
    hourglass_depth: int = 4
    up_widths: tuple[int, ...] = (16, 16, 16)
    down_widths: tuple[int, ...] = (256, 256, 256)
    decoder_skips: Literal["none", "additive"] = "none"
    encoder_levels: int = 4
    scab_per_level: int = 2
    attn_heads: int = 4
    ca_reduction: int = 16

    def validate(self) -> WNetConfig:
        if len(self.up_widths) != 3 or len(self.down_widths) != 3:
            raise ConfigError("W-Net up_widths and down_widths need three entries (2×, 4×, 8× and 4×, 2×, 1×)")
        if any(c % 4 for c in (self.width, *self.down_widths)):
            raise ConfigError("W-Net width and down_widths must be multiples of 4 (pixel unshuffle ×2)")
        if self.decoder_skips not in ("none", "additive"):
            raise ConfigError(f"unknown W-Net decoder_skips {self.decoder_skips!r}", hint="none or additive")
        if self.decoder_skips == "additive" and self.down_widths[-1] != self.width:
            raise ConfigError(
                f"additive skips need down_widths[-1] ({self.down_widths[-1]}) equal to width ({self.width})",
                hint="the last down-fusion is added to the decoder's last level",
            )
        if self.width % self.attn_heads:
            raise ConfigError(f"width {self.width} is not divisible by attn_heads {self.attn_heads}")
        if self.hr_size % (2**self.encoder_levels) or self.hr_size % (2**self.hourglass_depth):
            raise ConfigError(f"hr_size {self.hr_size} must be divisible by 2^levels")
        return self


# ---------------------------------------------------------------------------------------------- blocks


def _conv(c_in: int, c_out: int, k: int = 3) -> nn.Conv2d:
    return conv3x3(c_in, c_out) if k == 3 else conv1x1(c_in, c_out)


def ResBlock(c: int) -> ResidualBlock:  # noqa: N802 - a block factory
    """conv 3×3 → ReLU → conv 3×3, plus the input (eq. 3's residual block)."""
    return ResidualBlock(c, act="relu")


class Hourglass(nn.Module):
    """Recursive hourglass of ``depth`` levels (max-pool ×½, nearest ×2), one residual block per node."""

    def __init__(self, c: int, depth: int) -> None:
        super().__init__()
        self.up1 = ResBlock(c)
        self.low1 = ResBlock(c)
        self.low2: nn.Module = Hourglass(c, depth - 1) if depth > 1 else ResBlock(c)
        self.low3 = ResBlock(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low3(self.low2(self.low1(F.max_pool2d(x, 2))))
        return self.up1(x) + F.interpolate(low, scale_factor=2.0, mode="nearest")


class MultiScaleAttentionUnit(nn.Module):
    """Eqs. 4-7: multi-receptive-field convs, CA + SA on their concatenation, 1×1, residual."""

    def __init__(self, c: int, reduction: int) -> None:
        super().__init__()
        h, q = c // 2, c // 4
        self.y1 = _conv(c, h, 1)
        self.y2 = _conv(c, h)
        self.y3 = _conv(c, h)
        self.y4 = _conv(3 * h, c)
        self.y5 = _conv(h, q)
        cat = h + c + q
        self.ca = ChannelAttention(cat, reduction)
        self.sa = SpatialAttention()
        self.y7 = _conv(cat, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y1, y2, y3 = F.relu(self.y1(x)), F.relu(self.y2(x)), F.relu(self.y3(x))
        y4 = F.relu(self.y4(torch.cat([y1, y2, y3], 1)))
        y5 = F.relu(self.y5(y3))
        z = torch.cat([y2, y4, y5], 1)
        return self.y7(self.ca(z) + self.sa(z)) + x


class ParsingBlock(nn.Module):
    """§3.1: ``I^d (B, 3, S, S)`` → parsing estimate ``(B, P, S, S)`` (eqs. 2-8)."""

    def __init__(self, cfg: WNetConfig) -> None:
        super().__init__()
        c = cfg.width
        self.shallow = _conv(3, c)
        self.res = nn.Sequential(*(ResBlock(c) for _ in range(cfg.parsing_res_blocks)))
        self.hourglass = Hourglass(c, cfg.hourglass_depth)
        self.attention = MultiScaleAttentionUnit(c, cfg.ca_reduction)
        self.out = _conv(c, cfg.parsing_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.attention(self.hourglass(self.res(self.shallow(x)))))


class LPF(nn.Module):
    """LR-Parsing map Fusion (eqs. 9-11): features ``(B, c, H, W)`` + parsing map ``(B, P, H, W)`` → ``(B, c, H, W)``."""

    def __init__(self, c: int, parsing_channels: int, reduction: int) -> None:
        super().__init__()
        self.embed = _conv(parsing_channels, c)  # F_parsing (facesr: lifts the map to c channels)
        self.conv_lr1 = _conv(c, c)
        self.conv_lr2 = _conv(c, c)
        self.conv_par = _conv(c, c)
        self.ca = ChannelAttention(c, reduction)
        self.sa = SpatialAttention()
        self.conv_att = _conv(c, c)
        self.pa = nn.Sequential(_conv(c, c, 1), nn.Sigmoid())
        self.fuse1 = _conv(2 * c, c)
        self.fuse2 = _conv(c, c, 1)

    def forward(self, f_lr: torch.Tensor, parsing: torch.Tensor) -> torch.Tensor:
        f_par = self.embed(parsing)
        lr1, lr2, par = self.conv_lr1(f_lr), self.conv_lr2(f_lr), self.conv_par(f_par)
        att = self.conv_att(self.ca(lr1) + self.sa(lr1))
        sigma = self.pa(lr2 + par)
        pixel = sigma * lr2 + (1 - sigma) * par
        fuse1 = self.fuse1(torch.cat([att, par], 1))
        fuse2 = self.fuse2(pixel + f_lr + f_par)
        return fuse1 + fuse2 + lr2 + par


class ConvSelfAttention(nn.Module):
    """Eqs. 20-21: Q/K/V = 1×1(depthwise 3×3(F)); softmax(Q·Kᵀ/√d)·V across channels, ``heads`` heads.

    ``(B, C, H, W)`` → ``(B, C, H, W)``; the attention map per head is ``(C/heads)²`` and ``d = H·W``.
    """

    def __init__(self, c: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.dw = nn.Conv2d(3 * c, 3 * c, 3, 1, 1, groups=3 * c)  # three independent depthwise convs
        self.pw = nn.Conv2d(3 * c, 3 * c, 1, groups=3)  # three independent 1×1 convs
        self.proj = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.pw(self.dw(x.repeat(1, 3, 1, 1)))
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in qkv.chunk(3, dim=1))
        attn = ((q @ k.transpose(-2, -1)) * (h * w) ** -0.5).softmax(dim=-1)
        return self.proj((attn @ v).reshape(b, c, h, w))


class SCAB(nn.Module):
    """RCAB with convolutional self-attention: ``y = CA(conv(ReLU(conv x)))``, ``x + y + Attn(y)``."""

    def __init__(self, c: int, heads: int, reduction: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(c, c), nn.ReLU(inplace=True), _conv(c, c), ChannelAttention(c, reduction))
        self.attn = ConvSelfAttention(c, heads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y + self.attn(y)


class Upsample(nn.Sequential):
    """conv 3×3 ``c_in → 4·c_out`` → PixelShuffle ×2 → BatchNorm: ``(B, c_in, H, W)`` → ``(B, c_out, 2H, 2W)``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(_conv(c_in, 4 * c_out), nn.PixelShuffle(2), nn.BatchNorm2d(c_out))


class Downsample(nn.Sequential):
    """conv 3×3 ``c_in → c_out/4`` → PixelUnshuffle ×2 → BatchNorm: ``(B, c_in, H, W)`` → ``(B, c_out, H/2, W/2)``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(_conv(c_in, c_out // 4), nn.PixelUnshuffle(2), nn.BatchNorm2d(c_out))


# ----------------------------------------------------------------------------------------------- model


class WNet(nn.Module):
    """W-Net; ``forward(lr (B, 3, h, w) in [0, 1]) → {"sr": (B, 3, S, S), "parsing": (B, P, S, S)}``."""

    input_range = "zero_one"
    scale = None  # any LR size: resized to hr_size first
    kind = "sr"

    def __init__(self, cfg: WNetConfig | None = None) -> None:
        super().__init__()
        cfg = (cfg or WNetConfig()).validate()
        self.cfg = cfg
        c, p, r = cfg.width, cfg.parsing_channels, cfg.ca_reduction
        self.parsing_block = ParsingBlock(cfg)
        # the W: three ×2 up-fusions (eqs. 14-17), three ×½ down-fusions (eqs. 18-19)
        ups, downs = cfg.up_widths, cfg.down_widths
        self.w_up = nn.ModuleList(Upsample(ci, co) for ci, co in zip((3 + p, *ups[:-1]), ups, strict=True))
        self.w_up_lpf = nn.ModuleList(LPF(co, p, r) for co in ups)
        self.w_down = nn.ModuleList(Downsample(ci, co) for ci, co in zip((ups[-1], *downs[:-1]), downs, strict=True))
        self.w_down_lpf = nn.ModuleList(LPF(co, p, r) for co in downs)
        # SCAB encoder-decoder (eqs. 22-23)
        n, heads = cfg.scab_per_level, cfg.attn_heads
        enc_in = (downs[-1], *(c,) * (cfg.encoder_levels - 1))  # the W's output enters the encoder's first step
        self.enc_down = nn.ModuleList(Downsample(ci, c) for ci in enc_in)
        self.enc_scab = nn.ModuleList(
            nn.Sequential(*(SCAB(c, heads, r) for _ in range(n))) for _ in range(cfg.encoder_levels)
        )
        self.enc_lpf = nn.ModuleList(LPF(c, p, r) for _ in range(cfg.encoder_levels))
        self.dec_up = nn.ModuleList(Upsample(c, c) for _ in range(cfg.encoder_levels))
        self.dec_scab = nn.ModuleList(
            nn.Sequential(*(SCAB(c, heads, r) for _ in range(n))) for _ in range(cfg.encoder_levels)
        )
        self.conv_last = _conv(c, 3)

    def forward(self, lr: torch.Tensor) -> dict[str, torch.Tensor]:
        s = self.cfg.hr_size
        img = resize_to(to_model_range(lr, self.input_range), s, mode="bicubic")
        parsing = self.parsing_block(img)
        x = torch.cat([img, parsing], 1)  # eq. 12
        for k, (up, lpf) in enumerate(zip(self.w_up, self.w_up_lpf, strict=True)):  # eqs. 13-17
            x = lpf(up(x), F.interpolate(parsing, scale_factor=float(2 ** (k + 1)), mode="nearest"))
        for k, (down, lpf) in enumerate(zip(self.w_down, self.w_down_lpf, strict=True)):  # eqs. 18-19
            x = lpf(down(x), F.interpolate(parsing, scale_factor=float(2 ** (2 - k)), mode="nearest"))
        skips = [x]
        for down, scab, lpf in zip(self.enc_down, self.enc_scab, self.enc_lpf, strict=True):  # eq. 22
            x = scab(down(x))
            x = lpf(x, F.interpolate(parsing, size=x.shape[-2:], mode="nearest"))
            skips.append(x)
        skips.pop()  # the bottleneck itself
        additive = self.cfg.decoder_skips == "additive"
        for up, scab in zip(self.dec_up, self.dec_scab, strict=True):  # eq. 23 (no skips), or + the encoder feature
            y = up(x)
            x = scab(y + skips.pop() if additive else y)
        sr = from_model_range(self.conv_last(x) + img, self.input_range)
        return {"sr": sr, "parsing": parsing}


@MODELS.register("wnet")
def wnet(**overrides) -> WNet:
    """W-Net (any LR size → 128×128 SR plus a parsing map); ``overrides`` set :class:`WNetConfig` fields."""
    cfg = with_options(WNetConfig(), overrides, "W-Net")
    model = WNet(cfg)
    model.expected_params = PARAM_COUNT if cfg == WNetConfig() else None
    return model


#: Parameters of the default configuration (eqs. 14-19 widths, no decoder skips; the paper gives no count).
PARAM_COUNT = 15_804_294
