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

MACs (fvcore + facesr's attention/cdist handlers, see :mod:`facesr.metrics.complexity`; softmax and
element-wise ops uncounted): ×8 4.04 G (paper variant) / 4.03 G (released); ×4 13.65 G / 13.59 G. The
attention matmuls are ≈ 0.21 G of the ×8 total. Latency and memory: ``bench/results/models.json``.

Variants — ``variant="paper"`` (default) vs ``variant="released"``:

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
from facesr.models.layers import with_options
from facesr.models.ranges import from_model_range, to_model_range

__all__ = ["PARAM_COUNTS", "GVTNet", "GVTNetConfig", "gvtnet", "gvtnet_x4", "minkowski_adjacency", "minkowski_distance"]

#: CelebA training mean of the released code, subtracted at the input and added back at the output.
RGB_MEAN = (0.5430, 0.4217, 0.3605)

Variant = Literal["paper", "released"]
GraphOp = Literal["masked", "product", "post_softmax"]


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
    variant: Variant = "paper"
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


# ----------------------------------------------------------------------------------------------- maths


def minkowski_distance(a: torch.Tensor, b: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Pairwise Minkowski distance (eq. 2): ``a (..., n, d)``, ``b (..., m, d)`` → ``(..., n, m)``.

    ``p`` may be ``math.inf`` (Chebyshev). Computed exactly (no ``‖a‖² + ‖b‖² − 2ab`` shortcut), so that a
    distance is 0 between identical rows.
    """
    return torch.cdist(a, b, p=p, compute_mode="donot_use_mm_for_euclid_dist")


def minkowski_adjacency(
    z: torch.Tensor,
    *,
    p: float = 2.0,
    threshold: float = 0.75,
    keep: Literal["near", "far"] = "near",
    identity: Literal["set", "add"] = "set",
) -> torch.Tensor:
    """Adjacency of the nodes ``z (..., n, d)`` (eqs. 1-2), as a float ``(..., n, n)`` matrix.

    ``D = minkowski_distance(z, z, p)``; with ``t_i = threshold · max_j D_ij`` the edge ``i→j`` exists when
    ``D_ij > t_i`` (``keep="far"``, eq. 1 as written) or ``D_ij < t_i`` (``keep="near"``, the released
    code). The identity is then included: ``identity="set"`` gives ``max(A, I)`` (entries in {0, 1});
    ``"add"`` gives ``A + I`` (the released code; the diagonal is 2 wherever ``D_ii = 0 < t_i``).
    """
    d = minkowski_distance(z, z, p)
    t = threshold * d.amax(dim=-1, keepdim=True)
    a = (d > t) if keep == "far" else (d < t)
    a = a.to(z.dtype)
    eye = torch.eye(z.shape[-2], dtype=z.dtype, device=z.device)
    return torch.maximum(a, eye) if identity == "set" else a + eye


def _window_partition(t: torch.Tensor, ws: int, strided: bool) -> torch.Tensor:
    """``(B, C, H, W)`` → ``(B·nW, ws², C)``; windows in row-major order of their index (a, b).

    Contiguous: window (a, b) holds rows ``a·ws + j``; strided: rows ``j·(H/ws) + a`` (same for columns).
    """
    b, c, h, w = t.shape
    hh, ww = h // ws, w // ws
    if strided:
        t = t.view(b, c, ws, hh, ws, ww).permute(0, 3, 5, 2, 4, 1)
    else:
        t = t.view(b, c, hh, ws, ww, ws).permute(0, 2, 4, 3, 5, 1)
    return t.reshape(b * hh * ww, ws * ws, c)


def _window_reverse(t: torch.Tensor, b: int, h: int, w: int, ws: int, strided: bool) -> torch.Tensor:
    """Inverse of :func:`_window_partition`: ``(B·nW, ws², C)`` → ``(B, C, H, W)``."""
    c = t.shape[-1]
    hh, ww = h // ws, w // ws
    t = t.view(b, hh, ww, ws, ws, c)
    if strided:
        t = t.permute(0, 5, 3, 1, 4, 2)  # b c j a i b'
    else:
        t = t.permute(0, 5, 1, 3, 2, 4)  # b c a j b' i
    return t.reshape(b, c, h, w)


def _split_heads(t: torch.Tensor, heads: int, head_minor: bool) -> torch.Tensor:
    """``(N, n, C)`` → ``(N, heads, n, C/heads)``."""
    n_, n, c = t.shape
    if head_minor:
        return t.view(n_, n, c // heads, heads).permute(0, 3, 1, 2)
    return t.view(n_, n, heads, c // heads).permute(0, 2, 1, 3)


def _merge_heads(t: torch.Tensor, head_minor: bool) -> torch.Tensor:
    """Inverse of :func:`_split_heads`."""
    n_, heads, n, d = t.shape
    if head_minor:
        return t.permute(0, 2, 3, 1).reshape(n_, n, d * heads)
    return t.permute(0, 2, 1, 3).reshape(n_, n, heads * d)


def _shift_mask(h: int, w: int, ws: int, shift: int, device: torch.device) -> torch.Tensor:
    """SwinIR's mask for a cyclic shift: ``(nW, ws², ws²)``, 0 within a region, −100 across regions.

    Built for contiguous windows (both variants; the released code applies it to strided windows too).
    """
    img = torch.zeros(1, 1, h, w, device=device)
    cnt = 0
    for hs in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
        for wsl in (slice(0, -ws), slice(-ws, -shift), slice(-shift, None)):
            img[:, :, hs, wsl] = cnt
            cnt += 1
    win = _window_partition(img, ws, strided=False).squeeze(-1)  # nW, n
    diff = win.unsqueeze(1) - win.unsqueeze(2)
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


# ---------------------------------------------------------------------------------------------- blocks


@torch.no_grad()
def _normal_002_(t: torch.Tensor) -> torch.Tensor:
    """``N(0, 0.02²)`` clamped to ±2 — the distribution of ``trunc_normal_(t, std=0.02)`` (bounds ±2 = 100σ)."""
    return t.normal_(0.0, 0.02).clamp_(-2.0, 2.0)


class DepthwiseSeparableConv(nn.Module):
    """Depthwise 3×3 conv (bias) then pointwise 1×1 conv (bias): ``(B, C_in, H, W)`` → ``(B, C_out, H, W)``."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.depth_conv = nn.Conv2d(c_in, c_in, 3, 1, 1, groups=c_in)
        self.point_conv = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class _DropPath(nn.Module):
    """Stochastic depth per sample (training only)."""

    def __init__(self, prob: float) -> None:
        super().__init__()
        self.prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class WindowGraphAttention(nn.Module):
    """Window attention (eq. 5) or graph window attention (eq. 4) on a feature map.

    Input ``(B, C, H, W)`` (already normalised and shifted), plus ``mask (nW, n, n)`` (Swin shift mask) or
    ``adj (B·nW, heads, n, n)`` (graph blocks); output ``(B, C, H, W)``.
    """

    def __init__(self, dim: int, heads: int, ws: int, *, graph: bool, cfg: GVTNetConfig) -> None:
        super().__init__()
        self.heads, self.ws, self.graph = heads, ws, graph
        self.strided = bool(cfg.strided_windows)
        self.head_minor = cfg.variant == "released"
        self.graph_op = cfg.graph_op
        scaled = (not graph) or bool(cfg.graph_scale)
        self.scale = (dim // heads) ** -0.5 if scaled else 1.0
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
        self.register_buffer("relative_position_index", rel[..., 0] * (2 * ws - 1) + rel[..., 1], persistent=False)
        self.qkv = DepthwiseSeparableConv(dim, 3 * dim)
        self.proj = DepthwiseSeparableConv(dim, dim)
        _normal_002_(self.relative_position_bias_table)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, adj: torch.Tensor | None = None
    ) -> torch.Tensor:
        b, c, h, w = x.shape
        ws, heads = self.ws, self.heads
        qkv = _window_partition(self.qkv(x), ws, self.strided)  # B·nW, n, 3C
        q, k, v = (_split_heads(t, heads, self.head_minor) for t in qkv.split(c, dim=-1))
        n = ws * ws
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(n, n, heads).permute(2, 0, 1)
        logits = q @ k.transpose(-2, -1)
        if self.graph and self.graph_op == "product":
            logits = logits * adj
        logits = logits * self.scale + bias
        if mask is not None:
            nw = mask.shape[0]
            logits = (logits.view(b, nw, heads, n, n) + mask[None, :, None]).view(b * nw, heads, n, n)
        if self.graph and self.graph_op == "masked":
            logits = logits.masked_fill(adj == 0, float("-inf"))
        attn = logits.softmax(dim=-1)
        if self.graph and self.graph_op == "post_softmax":
            attn = attn * adj
        out = _merge_heads(attn @ v, self.head_minor)
        return self.proj(_window_reverse(out, b, h, w, ws, self.strided))


class DualModelingBlock(nn.Module):
    """One block of a DMB pair: pre-norm (graph) window attention + MLP, on tokens ``(B, H·W, C)``."""

    def __init__(self, dim: int, heads: int, ws: int, *, graph: bool, drop_path: float, cfg: GVTNetConfig) -> None:
        super().__init__()
        self.graph = graph
        self.shift_graph = bool(cfg.shift_graph_blocks)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowGraphAttention(dim, heads, ws, graph=graph, cfg=cfg)
        self.drop_path = _DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = _Mlp(dim, int(dim * cfg.mlp_ratio))

    def forward(
        self, x: torch.Tensor, hw: tuple[int, int], shift: int, mask: torch.Tensor | None, adj: torch.Tensor | None
    ) -> torch.Tensor:
        h, w = hw
        b, _, c = x.shape
        if self.graph and not self.shift_graph:
            shift = 0
        y = self.norm1(x).view(b, h, w, c)
        if shift:
            y = torch.roll(y, shifts=(-shift, -shift), dims=(1, 2))
        y = self.attn(y.permute(0, 3, 1, 2), mask=None if self.graph or not shift else mask, adj=adj)
        y = y.permute(0, 2, 3, 1)
        if shift:
            y = torch.roll(y, shifts=(shift, shift), dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class GVTGroup(nn.Module):
    """A GVT group: adjacency update (§II-A), ``depth`` alternating Swin/graph blocks, conv 3×3, residual."""

    def __init__(self, depth: int, shift: int, drop_paths: list[float], cfg: GVTNetConfig) -> None:
        super().__init__()
        self.cfg, self.shift = cfg, shift
        dim, heads, ws = cfg.embed_dim, cfg.num_heads, cfg.window_size
        self.blocks = nn.ModuleList(
            DualModelingBlock(dim, heads, ws, graph=i % 2 == 1, drop_path=drop_paths[i], cfg=cfg) for i in range(depth)
        )
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def adjacency(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """The group's adjacency from its detached input tokens ``(B, H·W, C)`` → ``(B·nW, heads, n, n)``."""
        cfg = self.cfg
        h, w = hw
        b, _, c = x.shape
        ws, heads = cfg.window_size, cfg.num_heads
        fmap = x.detach().view(b, h, w, c)
        if cfg.variant == "released":
            if self.shift:
                fmap = torch.roll(fmap, shifts=(-self.shift, -self.shift), dims=(1, 2))
            win = _window_partition(fmap.permute(0, 3, 1, 2), ws, strided=True)  # B·nW, n, C
            nw = win.shape[0] // b
            z = win.view(b, nw, ws * ws, heads, c // heads).mean(-1)  # b, m, n, heads (head-major mean)
            z = z.permute(0, 3, 2, 1)  # b, heads, n, m
            gram = z @ z.transpose(-1, -2)  # b, heads, n, n
            a = minkowski_adjacency(gram, p=cfg.p, threshold=cfg.threshold, keep=cfg.keep, identity=cfg.identity)
            return a.unsqueeze(1).expand(b, nw, heads, ws * ws, ws * ws).reshape(b * nw, heads, ws * ws, ws * ws)
        win = _window_partition(fmap.permute(0, 3, 1, 2), ws, strided=bool(cfg.strided_windows))
        z = _split_heads(win, heads, head_minor=False)  # B·nW, heads, n, d
        return minkowski_adjacency(z, p=cfg.p, threshold=cfg.threshold, keep=cfg.keep, identity=cfg.identity)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        h, w = hw
        b, _, c = x.shape
        adj = self.adjacency(x, hw)
        mask = _shift_mask(h, w, self.cfg.window_size, self.shift, x.device).to(x.dtype) if self.shift else None
        y = x
        for blk in self.blocks:
            y = blk(y, hw, self.shift, mask, adj)
        y = self.conv(y.transpose(1, 2).reshape(b, c, h, w))
        return y.flatten(2).transpose(1, 2) + x


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
        for depth, shift in zip(cfg.depths, cfg.group_shifts, strict=True):
            self.layers.append(GVTGroup(depth, shift, dpr[start : start + depth], cfg))
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
def gvtnet(*, variant: Variant = "paper", **overrides) -> GVTNet:
    """GVTNet ×8 (16×16 → 128×128), 12,177,511 parameters; ``overrides`` set :class:`GVTNetConfig` fields."""
    return _build(8, variant, overrides)


@MODELS.register("gvtnet_x4")
def gvtnet_x4(*, variant: Variant = "paper", **overrides) -> GVTNet:
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
