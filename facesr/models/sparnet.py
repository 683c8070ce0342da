"""SPARNet: spatial-attention residual network for face super-resolution (the UFVNet anchor generator).

Paper: C. Chen, D. Gong, H. Wang, Z. Li, K.-Y. K. Wong, "Learning Spatial Attention for Face
Super-Resolution", IEEE TIP 30, 2021 — face attention units (FAU) with hourglass spatial attention.
UFVNet (``shared/papers/002_ufvnet.txt`` §III-A, Fig. 2) builds its three anchor SR generators from the
released light variant "SPARNet-Light-Attn3D".
Released code: ``chaofengc/Face-SPARNet`` (``models/sparnet.py``, ``models/blocks.py``, ``train.sh``).
This is an independent re-implementation with the released layer layout (parameter counts match exactly).

Forward: ``lr (B, 3, h, w)`` in ``[0, 1]``, any ``h, w`` → resized to 128×128 with torch bicubic
(``align_corners=False``; the released data pipeline uses PIL bicubic — the exact ``upscale_back`` lives in
``facesr.data.degrade``, and a pipeline that feeds 128×128 inputs skips this resize) → mapped to ``[-1, 1]``
(``input_range = "minus1_1"``, the released ``Normalize(0.5, 0.5)``) → network → back to ``[0, 1]``,
unclamped. Output ``(B, 3, 128, 128)``.

Architecture (``hr_size`` 128, ``min_feat_size`` 16, channels clipped to [32, 128]):
encoder = ConvLayer 3→32 (reflection pad, bias) + three down FAUs 32→64 (hourglass depth 4), 64→128 (3),
128→128 (2) to 16×16; body = ``res_depth`` FAUs 128→128 (depth 2) at 16×16; decoder = three up FAUs
128→128 (3), 128→64 (4), 64→32 (5); out conv 32→3 (bias, no tanh). FAU = shortcut + hourglass-attention(
conv2(conv1(LReLU(BN(x))))), hourglass with 64 mid channels bottoming out at 4×4 (``bottleneck_size``).
Attention maps: 1 channel (``attention="spar"``, 2-D) or ``c_out`` channels (``"spar3d"``, 3-D).
Init: conv/linear N(0, 0.02), BatchNorm weight N(1, 0.02) (released ``init_weights``).

Variants (parameters exact, asserted in ``tests/models``; MACs at 16→128, batch 1, by
:mod:`facesr.metrics.complexity` — convs and the bicubic resize; norms, sigmoids and element-wise products
uncounted; fvcore, which also counted the BatchNorms, gave 7.16 / 6.90):

=================  ===================================================  ============  =======
name               config                                               params        GMACs
=================  ===================================================  ============  =======
``sparnet``        res_depth 10, 2-D attention, BatchNorm               10,518,867    7.14
``sparnet_light``  res_depth 1, 3-D attention, BatchNorm (Light-Attn3D)  5,242,211    6.88
=================  ===================================================  ============  =======

Departures from the released code: activations are not in-place (same values); the hourglass nodes live in
``ModuleList``s instead of ``b1_4``/``b2_plus_1`` attributes (so released state dicts need a key map); the
bicubic pre-upscale is inside the model (torch a = −0.75 kernel, not PIL's a = −0.5).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import nn

from facesr.errors import ConfigError
from facesr.models import MODELS
from facesr.models.layers import (
    AttentionUnit,
    ConvLayer,
    HourglassAttention,
    MRFAttention,
    init_normal_,
    resize_to,
    with_options,
)
from facesr.models.ranges import from_model_range, to_model_range

PARAM_COUNTS: dict[str, int] = {"sparnet": 10_518_867, "sparnet_light": 5_242_211}


@dataclass(frozen=True)
class SPARNetConfig:
    """Hyper-parameters of the SPARNet skeleton (released defaults)."""

    min_ch: int = 32
    max_ch: int = 128
    hr_size: int = 128
    min_feat_size: int = 16
    res_depth: int = 10
    norm: str = "bn"
    act: str = "leakyrelu"
    attention: str = "spar"  # spar (2-D) | spar3d (3-D) | mrf (MRRNet) | none
    bottleneck_size: int = 4
    hourglass_mid: int = 64
    upsample: str = "bicubic"  # how an LR smaller than hr_size is brought to hr_size inside the model

    @property
    def steps(self) -> int:
        """Number of ×2 down (and up) stages between ``hr_size`` and ``min_feat_size``."""
        return int(math.log2(self.hr_size // self.min_feat_size))

    def clip(self, c: int) -> int:
        """A channel count clipped to ``[min_ch, max_ch]``."""
        return max(self.min_ch, min(c, self.max_ch))

    def same_layout(self, other: SPARNetConfig) -> bool:
        """True when the two configs build the same layers: they differ at most in ``upsample`` (no weights)."""
        return replace(self, upsample=other.upsample) == other


def _attention(cfg: SPARNetConfig, c_out: int, hg_depth: int) -> nn.Module | None:
    kind = cfg.attention.lower()
    if kind in ("spar", "spar3d"):
        c_attn = 1 if kind == "spar" else c_out
        return HourglassAttention(hg_depth, c_out, c_attn, cfg.hourglass_mid, cfg.norm, cfg.act)
    if kind == "mrf":
        return MRFAttention(c_out)
    if kind == "none":
        return None
    raise ConfigError(f"unknown attention {cfg.attention!r}", hint="one of spar, spar3d, mrf, none")


def build_encoder(cfg: SPARNetConfig) -> tuple[nn.Sequential, int, int]:
    """Stem conv + down FAUs to ``min_feat_size``; returns ``(encoder, channels, hourglass depth)`` there."""
    clip = cfg.clip
    ch = clip(cfg.max_ch // (cfg.steps + 1))
    layers: list[nn.Module] = [ConvLayer(3, ch, 3)]
    depth = int(math.log2(64 / cfg.bottleneck_size))
    for _ in range(cfg.steps):
        att = _attention(cfg, clip(ch * 2), depth)
        layers.append(AttentionUnit(clip(ch), clip(ch * 2), "down", cfg.norm, cfg.act, att))
        ch, depth = ch * 2, depth - 1
    return nn.Sequential(*layers), ch, depth + 1


def build_body(cfg: SPARNetConfig, ch: int, depth: int, blocks: int, c_in: int | None = None) -> nn.Sequential:
    """``blocks`` shape-keeping FAUs at the bottleneck (the first maps ``c_in`` → ``ch`` if given)."""
    c = cfg.clip(ch)
    units = [AttentionUnit(c_in if (i == 0 and c_in) else c, c, "none", cfg.norm, cfg.act, _attention(cfg, c, depth))
             for i in range(blocks)]
    return nn.Sequential(*units)


def build_decoder(cfg: SPARNetConfig, ch: int, depth: int) -> tuple[nn.Sequential, ConvLayer]:
    """Up FAUs from ``min_feat_size`` to ``hr_size`` and the output conv → 3 channels."""
    clip = cfg.clip
    units: list[nn.Module] = []
    for _ in range(cfg.steps):
        depth += 1
        att = _attention(cfg, clip(ch // 2), depth)
        units.append(AttentionUnit(clip(ch), clip(ch // 2), "up", cfg.norm, cfg.act, att))
        ch //= 2
    return nn.Sequential(*units), ConvLayer(clip(ch), 3, 3)


class SPARNet(nn.Module):
    """SPARNet skeleton: ``forward(lr (B, 3, h, w) in [0, 1]) → SR (B, 3, hr, hr) in [0, 1]`` (unclamped).

    Parts (used by UFVNet): :meth:`encode` (model-range 128×128 → 16×16 features), ``body`` and
    :meth:`decode`; :meth:`prepare` does the resize and range mapping.
    """

    input_range = "minus1_1"
    scale = None  # any LR size: resized to hr_size first
    kind = "sr"
    headless = False  # set by UFVNet.discard_anchor_heads: only encode() remains

    def __init__(self, cfg: SPARNetConfig | None = None) -> None:
        super().__init__()
        self.cfg = cfg = cfg or SPARNetConfig()
        if cfg.hr_size % cfg.min_feat_size or cfg.hr_size // cfg.min_feat_size & (cfg.hr_size // cfg.min_feat_size - 1):
            raise ConfigError("SPARNet needs hr_size / min_feat_size to be a power of two")
        self.hr_size = cfg.hr_size
        self.encoder, ch, depth = build_encoder(cfg)
        # released: res_depth + 3 − down steps
        self.body = build_body(cfg, ch, depth, cfg.res_depth + 3 - cfg.steps)
        self.decoder, self.out_conv = build_decoder(cfg, ch, depth)
        self.feature_channels = cfg.clip(ch)
        init_normal_(self, 0.02)

    def prepare(self, lr: torch.Tensor) -> torch.Tensor:
        """LR in ``[0, 1]`` → ``hr_size`` × ``hr_size`` in ``[-1, 1]``."""
        return to_model_range(resize_to(lr, self.hr_size, self.cfg.upsample), self.input_range)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, hr, hr)`` in ``[-1, 1]`` → ``(B, 128, 16, 16)`` features."""
        return self.encoder(x)

    def decode(self, f: torch.Tensor) -> torch.Tensor:
        """``(B, 128, 16, 16)`` → ``(B, 3, hr, hr)`` in ``[-1, 1]``."""
        return self.out_conv(self.decoder(f))

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        if self.headless:
            raise RuntimeError("this SPARNet's body and decoder were discarded (UFVNet stage two); use encode()")
        y = self.decode(self.body(self.encode(self.prepare(lr))))
        return from_model_range(y, self.input_range)


def _build(name: str, base: SPARNetConfig, overrides: dict) -> SPARNet:
    cfg = with_options(base, overrides, "SPARNet")
    model = SPARNet(cfg)
    model.expected_params = PARAM_COUNTS[name] if cfg.same_layout(base) else None
    return model


@MODELS.register("sparnet")
def sparnet(**overrides) -> SPARNet:
    """SPARNet (res_depth 10, 2-D attention, BatchNorm): 10,518,867 parameters."""
    return _build("sparnet", SPARNetConfig(), overrides)


@MODELS.register("sparnet_light")
def sparnet_light(**overrides) -> SPARNet:
    """SPARNet-Light-Attn3D (res_depth 1, 3-D attention, BatchNorm): 5,242,211 parameters (UFVNet anchor)."""
    return _build("sparnet_light", LIGHT, overrides)


LIGHT = SPARNetConfig(res_depth=1, attention="spar3d")

__all__ = ["LIGHT", "PARAM_COUNTS", "SPARNet", "SPARNetConfig", "sparnet", "sparnet_light"]
