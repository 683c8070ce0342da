"""GVTNet: graph vision transformer for face super-resolution.

Paper: C. Yang, Y. Fan, C. Lu, M. Yuan, Z. Yang, "GVTNet: Graph Vision Transformer For Face
Super-Resolution" (``shared/papers/004_gvtnet.txt``): adjacency update module (§II-A, eqs. 1-2), graph
window self-attention G-WSA (§II-B, eqs. 3-4), Swin layer (eq. 5), dual modeling blocks, pixel-shuffle
reconstruction; settings §III-A (6 groups, window 8, 6 heads).
Released code: ``continueyang/GVTNet`` (a BasicSR fork; ``basicsr/archs/GVTNet_arch.py`` and
``options/train/GVTNet/tsisv9SRx{4,8}_scratch.yml``). This file is an independent re-implementation; no
code was copied. It reproduces the released parameter layout exactly.

Architecture (both variants): input ``(B, 3, h, w)`` in ``[0, 1]``; the dataset mean
``(0.5430, 0.4217, 0.3605)`` is subtracted and added back at the end (``img_range`` 1). Shallow conv 3×3
3→180 → tokens → LayerNorm ("patch norm") → 6 groups, each 6 dual modeling blocks (even blocks Swin
window attention, odd blocks graph window attention; pre-norm, MLP ratio 2, GELU, drop-path 0→0.1 over
the 36 blocks as in the released config) plus a conv 3×3 and a group residual → LayerNorm → conv 3×3
and a long residual → conv 3×3 180→64 + LeakyReLU(0.01) → log2(scale) × [conv 3×3 64→256,
PixelShuffle(2)] → conv 3×3 64→3. q/k/v and the output projection are depthwise-separable convolutions
(depthwise 3×3 then pointwise 1×1, both with bias) on the whole feature map, shared by all windows
(eq. 3). Every block has a learned relative-position bias table ((2·8−1)² × 6). Per-group cyclic
shifts ``(0, 6, 0, 4, 0, 2)`` (the released schedule; the paper only cites SwinIR's shifting).

Parameters (exact, counted in the tests): ``gvtnet`` (×8, 16→128) 12,177,511; ``gvtnet_x4`` (×4,
32→128) 12,029,799 — the paper's Table II reports 12.17M. The two variants have identical parameters
(same state-dict shapes); they differ only in how the attention is computed.

MACs (``torch.utils.flop_counter`` + facesr's cdist formula, see :mod:`facesr.metrics.complexity`; norms,
softmax and element-wise ops uncounted): ×8 4.01 G (released) / 4.02 G (paper); ×4 13.52 G / 13.58 G (fvcore,
which also counted the LayerNorms: 4.03 / 4.04, 13.59 / 13.65). The attention matmuls are ≈ 0.21 G of the ×8
total. Latency and memory: ``bench/results/models.json``.

Layers: :mod:`facesr.models.graph_attention` (plain arguments; :class:`GVTNet` maps its config onto them).

Variants — ``variant="released"`` (default: the code that produced the paper's Table II) vs ``variant="paper"``
(the text; preset ``gvtnet-paper``):

============================  ===========================================  ============================================
item                          ``paper``                                    ``released``
============================  ===========================================  ============================================
window tokens                 contiguous 8×8 tiles (Swin)                  strided sub-lattices: window (a, b) holds
                                                                           pixels (j·H/8 + a, i·W/8 + b)
head channel layout           head-major (channel = head·d + c)            head-minor (channel = c·heads + head) in
                                                                           attention, head-major in the adjacency
shift mask (Swin blocks)      Swin mask, matches the windows               Swin mask for contiguous tiles applied to
                                                                           the strided windows (as released)
shift in graph blocks         off ("we turn it off in the G-MSA")          the group's shift is applied (no mask)
adjacency tokens z_i (eq. 2)  per window and head: the head's channels     per head: row i of the Gram matrix of token
                              of token i (group input, detached)           positions, where position i is described by
                                                                           the head-mean channel across all windows;
                                                                           one adjacency shared by every window
Minkowski p                   2 (§III-B, "p = 2 was the best")             ∞ (×8 config), 2 (×4 config)
threshold T                   0.75 (§III-B), relative to the row max       0.85, relative to the row max
neighbour rule (eq. 1)        D > T·max (the paper: "nodes with mutual     D < T·max (nearest pairs)
                              distance greater than T are neighbours")
identity                      A ← max(A, I) (each node its own neighbour)  A ← A + I (the diagonal becomes 2)
G-WSA (eq. 4)                 softmax over neighbours only, 1/√d scale     softmax(QKᵀ + B) ⊙ A, no scale, unnormalised
============================  ===========================================  ============================================

Choices where the paper is silent or self-contradictory, recorded here:

* Threshold scale: eq. 1 states an absolute T, but a fixed absolute distance in a 180-channel feature space
  is meaningless and the released code (and Table I's 0.85/0.75/0.60) use T relative to each row's maximum
  distance; both variants do the same.
* Eq. 4 literally multiplies the logits by A *inside* the softmax, which leaves non-neighbours with logit 0
  (not excluded) and contradicts the text ("our attention information is only transmitted between
  neighboring nodes"). The paper variant follows the text: non-neighbour logits are masked out
  (``graph_op="masked"``). The literal reading is ``graph_op="product"``; the released one
  ``graph_op="post_softmax"``.
* Eq. 4 has no relative-position bias B, but the released graph blocks carry one and the paper's parameter
  count (12.17M) includes it, so both variants add B in graph blocks.
* The adjacency is recomputed at each group's entry from its (detached) input and shared by that group's
  blocks (§II-A: "the GVT group of each layer executes the module"; released behaviour). The 0/1 mask has
  no gradient, so detaching changes nothing numerically.
* Inputs whose side is not a multiple of the window size are rejected (the released code assumes 16 or 32).

Known departures from the released code: no hard-coded CUDA device, no printing in eval mode, shift masks
built for the actual input size (the released one is fixed at construction), no ``attn_mask`` /
``relative_position_index`` in the state dict (they are non-persistent buffers or computed on the fly).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import torch
from torch import nn

from facesr.errors import ConfigError
from facesr.models import MODELS
from facesr.models.graph_attention import (  # noqa: F401  (re-exported)
    AdjacencyRule,
    GraphOp,
    GVTGroup,
    WindowGraphAttention,
    _normal_002_,
    minkowski_adjacency,
    minkowski_distance,
)
from facesr.models.layers import with_options
from facesr.models.ranges import from_model_range, to_model_range

__all__ = [
    "PARAM_COUNTS", "RGB_MEAN", "AdjacencyRule", "GVTGroup", "GVTNet", "GVTNetConfig", "WindowGraphAttention", "gvtnet",
    "gvtnet_x4", "minkowski_adjacency", "minkowski_distance",
]

#: CelebA training mean of the released code, subtracted at the input and added back at the output.
RGB_MEAN = (0.5430, 0.4217, 0.3605)

Variant = Literal["paper", "released"]


@dataclass(frozen=True)
class GVTNetConfig:
    """All settings of one GVTNet; ``variant`` picks the paper/released defaults of the ``None`` fields."""

    scale: int = 8
    embed_dim: int = 180
    depths: tuple[int, ...] = (6, 6, 6, 6, 6, 6)
    num_heads: int = 6
    window_size: int = 8
    mlp_ratio: float = 2.0
    num_feat: int = 64
    group_shifts: tuple[int, ...] = (0, 6, 0, 4, 0, 2)
    drop_path_rate: float = 0.1
    variant: Variant = "released"
    # None → the variant's default (see the module docstring's table)
    p: float | None = None
    threshold: float | None = None
    keep: Literal["near", "far"] | None = None
    identity: Literal["set", "add"] | None = None
    graph_op: GraphOp | None = None
    graph_scale: bool | None = None
    strided_windows: bool | None = None
    shift_graph_blocks: bool | None = None

    def resolved(self) -> GVTNetConfig:
        """A copy with every ``None`` replaced by the variant's default; validates the values."""
        if self.variant not in ("paper", "released"):
            raise ConfigError(f"unknown GVTNet variant {self.variant!r}", hint="use 'paper' or 'released'")
        paper = self.variant == "paper"
        defaults = {
            "p": 2.0 if paper else (math.inf if self.scale == 8 else 2.0),
            "threshold": 0.75 if paper else 0.85,
            "keep": "far" if paper else "near",
            "identity": "set" if paper else "add",
            "graph_op": "masked" if paper else "post_softmax",
            "graph_scale": paper,
            "strided_windows": not paper,
            "shift_graph_blocks": not paper,
        }
        cfg = replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})
        if cfg.scale & (cfg.scale - 1) or cfg.scale < 2:
            raise ConfigError(f"GVTNet scale must be a power of two, got {cfg.scale}")
        if cfg.embed_dim % cfg.num_heads:
            raise ConfigError(f"embed_dim {cfg.embed_dim} is not divisible by num_heads {cfg.num_heads}")
        if len(cfg.group_shifts) != len(cfg.depths):
            raise ConfigError("group_shifts needs one entry per group", hint=f"{len(cfg.depths)} groups")
        if any(not 0 <= s < cfg.window_size for s in cfg.group_shifts):
            raise ConfigError(f"group shifts must lie in [0, window_size), got {cfg.group_shifts}")
        if cfg.graph_op not in ("masked", "product", "post_softmax"):
            raise ConfigError(f"unknown graph_op {cfg.graph_op!r}", hint="masked, product or post_softmax")
        return cfg


# ----------------------------------------------------------------------------------------------- model


class GVTNet(nn.Module):
    """GVTNet; ``forward(lr (B, 3, h, w) in [0, 1]) → SR (B, 3, scale·h, scale·w)`` in [0, 1], unclamped.

    ``h`` and ``w`` must be multiples of ``window_size`` (16 for ×8, 32 for ×4 in the paper's setting).
    """

    input_range = "mean_sub"
    kind = "sr"

    def __init__(self, cfg: GVTNetConfig | None = None) -> None:
        super().__init__()
        cfg = (cfg or GVTNetConfig()).resolved()
        self.cfg = cfg
        self.scale = cfg.scale
        dim = cfg.embed_dim
        self.register_buffer("mean", torch.tensor(RGB_MEAN).view(1, 3, 1, 1), persistent=False)
        self.conv_first = nn.Conv2d(3, dim, 3, 1, 1)
        self.patch_norm = nn.LayerNorm(dim)
        total = sum(cfg.depths)
        dpr = [cfg.drop_path_rate * i / max(total - 1, 1) for i in range(total)]  # torch.linspace(0, rate, total)
        self.layers = nn.ModuleList()
        start = 0
        released = cfg.variant == "released"
        rule = AdjacencyRule(cfg.p, cfg.threshold, cfg.keep, cfg.identity, "gram" if released else "window")
        for depth, shift in zip(cfg.depths, cfg.group_shifts, strict=True):
            self.layers.append(GVTGroup(
                dim, depth, cfg.num_heads, cfg.window_size, shift=shift, drop_paths=dpr[start : start + depth],
                adjacency=rule, graph_scale=bool(cfg.graph_scale), strided=bool(cfg.strided_windows),
                mlp_ratio=cfg.mlp_ratio, shift_graph=bool(cfg.shift_graph_blocks), head_minor=released,
                graph_op=cfg.graph_op,
            ))
            start += depth
        self.norm = nn.LayerNorm(dim)
        self.conv_after_body = nn.Conv2d(dim, dim, 3, 1, 1)
        self.conv_before_upsample = nn.Sequential(nn.Conv2d(dim, cfg.num_feat, 3, 1, 1), nn.LeakyReLU(0.01))
        ups: list[nn.Module] = []
        for _ in range(int(math.log2(cfg.scale))):
            ups += [nn.Conv2d(cfg.num_feat, 4 * cfg.num_feat, 3, 1, 1), nn.PixelShuffle(2)]
        self.upsample = nn.Sequential(*ups)
        self.conv_last = nn.Conv2d(cfg.num_feat, 3, 3, 1, 1)
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        # timm/SwinIR init. trunc_normal_(std=0.02) keeps its default bounds ±2, i.e. 100σ: a clamped normal
        # draws the same distribution and is far cheaper (the truncation never triggers).
        if isinstance(m, nn.Linear):
            _normal_002_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        b, _, h, w = lr.shape
        ws = self.cfg.window_size
        if h % ws or w % ws:
            raise ConfigError(f"GVTNet needs input sides divisible by {ws}, got {h}×{w}")
        x = self.conv_first(to_model_range(lr, self.input_range, mean=self.mean))
        t = self.patch_norm(x.flatten(2).transpose(1, 2))
        for layer in self.layers:
            t = layer(t, (h, w))
        t = self.norm(t)
        x = self.conv_after_body(t.transpose(1, 2).reshape(b, -1, h, w)) + x
        x = self.conv_last(self.upsample(self.conv_before_upsample(x)))
        return from_model_range(x, self.input_range, mean=self.mean)


# --------------------------------------------------------------------------------------------- builders


@MODELS.register("gvtnet")
def gvtnet(*, variant: Variant = "released", **overrides) -> GVTNet:
    """GVTNet ×8 (16×16 → 128×128), 12,177,511 parameters; ``overrides`` set :class:`GVTNetConfig` fields."""
    return _build(8, variant, overrides)


@MODELS.register("gvtnet_x4")
def gvtnet_x4(*, variant: Variant = "released", **overrides) -> GVTNet:
    """GVTNet ×4 (32×32 → 128×128), 12,029,799 parameters; ``overrides`` set :class:`GVTNetConfig` fields."""
    return _build(4, variant, overrides)


#: Exact parameter counts of the released ×8 / ×4 configurations (both variants).
PARAM_COUNTS: dict[int, int] = {8: 12_177_511, 4: 12_029_799}
_ARCH_KEYS = {"scale", "embed_dim", "depths", "num_heads", "window_size", "mlp_ratio", "num_feat"}


def _build(scale: int, variant: str, overrides: dict) -> GVTNet:
    model = GVTNet(_config(scale, variant, overrides))
    if not _ARCH_KEYS & set(overrides):
        model.expected_params = PARAM_COUNTS[scale]
    return model


def _config(scale: int, variant: str, overrides: dict) -> GVTNetConfig:
    return with_options(GVTNetConfig(scale=scale, variant=variant), overrides, "GVTNet")  # type: ignore[arg-type]
