"""GVTNet's layers with plain arguments (timm ``WindowAttention(dim, num_heads, window_size, …)`` style).

Graph window attention and its adjacency (GVTNet §II-A/B, eqs. 1-5) and the window maths they use; no layer
reads a :class:`~facesr.models.gvtnet.GVTNetConfig` — :class:`~facesr.models.gvtnet.GVTNet` turns its config
into these arguments. Feature maps are ``(B, C, H, W)``, tokens ``(B, H·W, C)``, windows ``(B·nW, n, C)`` with
``n = window_size²``. The released/paper differences these arguments express are tabled in
:mod:`facesr.models.gvtnet`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from facesr.models.layers import DropPath, Mlp

GraphOp = Literal["masked", "product", "post_softmax"]

__all__ = [
    "AdjacencyRule", "DepthwiseSeparableConv", "DualModelingBlock", "GVTGroup", "GraphOp", "WindowGraphAttention",
    "minkowski_adjacency", "minkowski_distance",
]

# ----------------------------------------------------------------------------------------------- maths


def minkowski_distance(a: torch.Tensor, b: torch.Tensor, p: float = 2.0) -> torch.Tensor:
    """Pairwise Minkowski distance (eq. 2): ``a (..., n, d)``, ``b (..., m, d)`` → ``(..., n, m)``.

    ``p`` may be ``math.inf`` (Chebyshev). Computed exactly (no ``‖a‖² + ‖b‖² − 2ab`` shortcut), so that a
    distance is 0 between identical rows.

    While exporting to ONNX, ``p = ∞`` is written as ``max |a_i − b_j|`` over a broadcast difference: the legacy
    exporter turns ``cdist`` into ``(Σ|·|^p)^(1/p)``, which is meaningless at ``p = ∞``. Subtraction, abs and max
    are exact, so both forms give the same bits; eager mode keeps ``cdist`` (no ``n·m·d`` temporary).
    """
    if math.isinf(p) and torch.onnx.is_in_onnx_export():
        return (a.unsqueeze(-2) - b.unsqueeze(-3)).abs().amax(-1)
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


class WindowGraphAttention(nn.Module):
    """Window attention (eq. 5) or graph window attention (eq. 4) on a feature map.

    ``forward(x (B, C, H, W), mask=None, adj=None) → (B, C, H, W)``; ``x`` is already normalised and shifted,
    ``mask (nW, n, n)`` is the Swin shift mask, ``adj (B·nW, heads, n, n)`` the graph blocks' adjacency.
    ``strided``: windows are strided sub-lattices (released) instead of contiguous tiles; ``head_minor``:
    channel ``c·heads + head`` (released) instead of ``head·d + c``; ``graph_op``: how ``adj`` enters
    (``masked`` softmax over neighbours, ``product`` inside the softmax, ``post_softmax`` multiply after);
    ``qk_scale``: multiply the logits by ``1/√d`` (``False``: the released graph blocks' unscaled logits).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        *,
        graph: bool = False,
        strided: bool = False,
        head_minor: bool = False,
        graph_op: GraphOp = "masked",
        qk_scale: bool = True,
    ) -> None:
        super().__init__()
        ws = window_size
        self.heads, self.ws, self.graph = num_heads, ws, graph
        self.strided, self.head_minor, self.graph_op = strided, head_minor, graph_op
        self.scale = (dim // num_heads) ** -0.5 if qk_scale else 1.0
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, num_heads))
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
    """One block of a DMB pair: pre-norm (graph) window attention + MLP, on tokens ``(B, H·W, C)``.

    ``forward(x, hw, shift, mask, adj)``: the group's cyclic ``shift`` is applied around the attention (in a
    graph block only when ``shift_graph``; the Swin ``mask`` only in window blocks). ``attn_options`` go to
    :class:`WindowGraphAttention` (``strided``, ``head_minor``, ``graph_op``, ``qk_scale``).
    """

    def __init__(
        self,
        dim: int,
        num_heads: int,
        window_size: int,
        *,
        mlp_ratio: float = 2.0,
        drop_path: float = 0.0,
        graph: bool = False,
        shift_graph: bool = False,
        **attn_options,
    ) -> None:
        super().__init__()
        self.graph = graph
        self.shift_graph = shift_graph
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowGraphAttention(dim, num_heads, window_size, graph=graph, **attn_options)
        self.drop_path = DropPath(drop_path)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

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


@dataclass(frozen=True)
class AdjacencyRule:
    """How a group builds its adjacency (§II-A, eqs. 1-2); the arguments of :func:`minkowski_adjacency`.

    ``tokens``: ``"window"`` — per window and head, node i is the head's channels of token i (the paper);
    ``"gram"`` — per head, node i is row i of the Gram matrix of token positions described by the head-mean
    channel across all windows, one adjacency shared by every window (released; always strided windows).
    """

    p: float = 2.0
    threshold: float = 0.75
    keep: Literal["near", "far"] = "far"
    identity: Literal["set", "add"] = "set"
    tokens: Literal["window", "gram"] = "window"


class GVTGroup(nn.Module):
    """A GVT group: adjacency update (§II-A), ``depth`` alternating Swin/graph blocks, conv 3×3, residual.

    Tokens ``(B, H·W, dim)`` in and out. ``drop_paths`` has one rate per block; ``block_options`` go to every
    :class:`DualModelingBlock` (``mlp_ratio``, ``shift_graph``, ``strided``, ``head_minor``, ``graph_op``,
    ``graph_scale`` → the graph blocks' ``qk_scale``).
    """

    def __init__(
        self,
        dim: int,
        depth: int,
        num_heads: int,
        window_size: int,
        *,
        shift: int = 0,
        drop_paths: list[float] | None = None,
        adjacency: AdjacencyRule = AdjacencyRule(),
        graph_scale: bool = True,
        strided: bool = False,
        **block_options,
    ) -> None:
        super().__init__()
        self.shift, self.heads, self.ws = shift, num_heads, window_size
        self.rule, self.strided = adjacency, strided
        drop_paths = drop_paths or [0.0] * depth
        self.blocks = nn.ModuleList(
            DualModelingBlock(
                dim, num_heads, window_size, graph=i % 2 == 1, drop_path=drop_paths[i], strided=strided,
                qk_scale=i % 2 == 0 or graph_scale, **block_options,
            )
            for i in range(depth)
        )
        self.conv = nn.Conv2d(dim, dim, 3, 1, 1)

    def adjacency(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        """The group's adjacency from its detached input tokens ``(B, H·W, C)`` → ``(B·nW, heads, n, n)``."""
        h, w = hw
        b, _, c = x.shape
        ws, heads, rule = self.ws, self.heads, self.rule
        kw = {"p": rule.p, "threshold": rule.threshold, "keep": rule.keep, "identity": rule.identity}
        fmap = x.detach().view(b, h, w, c)
        if rule.tokens == "gram":
            if self.shift:
                fmap = torch.roll(fmap, shifts=(-self.shift, -self.shift), dims=(1, 2))
            win = _window_partition(fmap.permute(0, 3, 1, 2), ws, strided=True)  # B·nW, n, C
            nw = win.shape[0] // b
            z = win.view(b, nw, ws * ws, heads, c // heads).mean(-1)  # b, m, n, heads (head-major mean)
            z = z.permute(0, 3, 2, 1)  # b, heads, n, m
            gram = z @ z.transpose(-1, -2)  # b, heads, n, n
            a = minkowski_adjacency(gram, **kw)
            return a.unsqueeze(1).expand(b, nw, heads, ws * ws, ws * ws).reshape(b * nw, heads, ws * ws, ws * ws)
        win = _window_partition(fmap.permute(0, 3, 1, 2), ws, strided=self.strided)
        z = _split_heads(win, heads, head_minor=False)  # B·nW, heads, n, d
        return minkowski_adjacency(z, **kw)

    def forward(self, x: torch.Tensor, hw: tuple[int, int]) -> torch.Tensor:
        h, w = hw
        b, _, c = x.shape
        adj = self.adjacency(x, hw)
        mask = _shift_mask(h, w, self.ws, self.shift, x.device).to(x.dtype) if self.shift else None
        y = x
        for blk in self.blocks:
            y = blk(y, hw, self.shift, mask, adj)
        y = self.conv(y.transpose(1, 2).reshape(b, c, h, w))
        return y.flatten(2).transpose(1, 2) + x
