"""Shared building blocks of the facesr networks (timm ``layers`` / BasicSR ``arch_util`` style).

Shapes are ``(N, C, H, W)``; value ranges are whatever the calling model works in (see
:mod:`facesr.models.ranges`). Names here are stable: other model files import them.

* factories: :func:`make_act`, :func:`make_norm`, :func:`conv3x3`, :func:`conv1x1`
* plain convs: :class:`DoubleConv` (U-Net), :class:`ResidualBlock` (EDSR-style conv-act-conv + x),
  :class:`ConvLayer` (SPARNet/MRRNet: optional nearest ×2 → reflection pad → conv → norm → act)
* attention: :class:`ChannelAttention` (RCAN squeeze-excite), :class:`SpatialAttention` (CBAM),
  :class:`HourglassAttention` (SPARNet), :class:`MRFAttention` (MRRNet),
  :class:`AttentionUnit` (SPARNet's "face attention unit" / MRRNet's MRR block around either attention)
* transformer: :class:`DropPath` (stochastic depth), :class:`Mlp` (linear → act → linear)
* helpers: :func:`resize_to`, :func:`init_normal_`, :func:`count_params`, :func:`with_options` (builder
  keyword overrides on a config dataclass)
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Mapping
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from facesr.errors import ConfigError

Scale = Literal["none", "down", "up"]
C = TypeVar("C")


# --------------------------------------------------------------------------------------------- factories


def make_act(name: str, channels: int | None = None, *, slope: float = 0.2) -> nn.Module:
    """Activation by name: ``leakyrelu`` (slope 0.2 by default), ``relu``, ``prelu`` (per channel), ``gelu``,
    ``sigmoid``, ``none``. Never in-place (autograd-safe when a block's input is reused)."""
    name = name.lower()
    if name in ("leakyrelu", "lrelu"):
        return nn.LeakyReLU(slope)
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return nn.PReLU(channels or 1)
    if name == "gelu":
        return nn.GELU()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"unknown activation {name!r}", hint="one of leakyrelu, relu, prelu, gelu, sigmoid, none")


def make_norm(name: str, channels: int) -> nn.Module:
    """Normalisation by name: ``bn`` (BatchNorm2d), ``in`` (InstanceNorm2d, affine — SPARNet's ``'in'``),
    ``in_plain`` (InstanceNorm2d without affine), ``gn`` (32 groups), ``none``."""
    name = name.lower()
    if name == "bn":
        return nn.BatchNorm2d(channels)
    if name == "in":
        return nn.InstanceNorm2d(channels, affine=True)
    if name == "in_plain":
        return nn.InstanceNorm2d(channels)
    if name == "gn":
        return nn.GroupNorm(32, channels)
    if name == "none":
        return nn.Identity()
    raise ConfigError(f"unknown norm {name!r}", hint="one of bn, in, in_plain, gn, none")


def conv3x3(c_in: int, c_out: int, stride: int = 1, bias: bool = True) -> nn.Conv2d:
    """3×3 convolution with zero padding 1."""
    return nn.Conv2d(c_in, c_out, 3, stride, 1, bias=bias)


def conv1x1(c_in: int, c_out: int, bias: bool = True) -> nn.Conv2d:
    """1×1 convolution."""
    return nn.Conv2d(c_in, c_out, 1, 1, 0, bias=bias)


# ------------------------------------------------------------------------------------------ plain convs


class DoubleConv(nn.Sequential):
    """U-Net double convolution: conv 3×3 (stride) → act → conv 3×3 → act, biases, no norm.

    ``(N, c_in, H, W) → (N, c_out, H/stride, W/stride)``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1, act: str = "leakyrelu") -> None:
        super().__init__(
            conv3x3(c_in, c_out, stride), make_act(act, c_out), conv3x3(c_out, c_out), make_act(act, c_out)
        )


class ResidualBlock(nn.Module):
    """EDSR-style residual block without norm: ``x + conv(act(conv(x)))``, 3×3 convs, shape-preserving."""

    def __init__(self, channels: int, act: str = "leakyrelu") -> None:
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.act = make_act(act, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))


class ConvLayer(nn.Module):
    """SPARNet's conv layer: [nearest ×2 if ``scale='up'``] → pad → conv (stride 2 if ``scale='down'``) →
    norm → act. The conv has a bias only when ``norm='none'``; ``pad`` is ``reflect`` (released code),
    ``zeros`` or ``none`` (valid convolution).

    ``(N, c_in, H, W) → (N, c_out, H', W')`` with ``H' = 2H`` (up), ``ceil(H/2)`` (down) or ``H``.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        kernel_size: int = 3,
        scale: Scale = "none",
        norm: str = "none",
        act: str = "none",
        pad: Literal["reflect", "zeros", "none"] = "reflect",
    ) -> None:
        super().__init__()
        if scale not in ("none", "down", "up"):
            raise ConfigError(f"ConvLayer scale must be none/down/up, got {scale!r}")
        self.up = scale == "up"
        p = kernel_size // 2
        self.pad = nn.ReflectionPad2d(p) if pad == "reflect" and p else nn.Identity()
        padding = p if pad == "zeros" else 0
        stride = 2 if scale == "down" else 1
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, padding, bias=norm == "none")
        self.norm = make_norm(norm, c_out)
        self.act = make_act(act, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.up:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        return self.act(self.norm(self.conv(self.pad(x))))


# ------------------------------------------------------------------------------------------- attention


class ChannelAttention(nn.Module):
    """RCAN/SE channel attention: ``x · σ(conv1×1(ReLU(conv1×1(avgpool(x)))))``, reduction ``r``."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        mid = max(1, channels // reduction)
        self.fc = nn.Sequential(conv1x1(channels, mid), nn.ReLU(), conv1x1(mid, channels), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(F.adaptive_avg_pool2d(x, 1))


class SpatialAttention(nn.Module):
    """CBAM spatial attention: ``x · σ(conv k×k([mean_c(x), max_c(x)]))``, one map shared by all channels."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, 1, kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.conv(pooled))


class HourglassAttention(nn.Module):
    """SPARNet's attention branch: a recursive hourglass then ``x · σ(conv(hourglass(x)))``.

    Level ``l`` (from ``depth`` down to 1): ``up = b1(x)``, ``low = b2(x)`` (stride 2), recurse (or
    ``b2_plus`` at level 1), ``up + b3(low)`` (nearest ×2; resized to ``up`` if odd sizes). Every node is a
    :class:`ConvLayer` with ``norm``/``act``; ``c_mid`` channels inside. The attention map has ``c_attn``
    channels: 1 = 2-D attention (``spar``), ``c_in`` = 3-D attention (``spar3d``).
    ``depth = 0`` returns ``x`` unchanged. ``(N, c_in, H, W) → (N, c_in, H, W)``.
    """

    def __init__(
        self, depth: int, c_in: int, c_attn: int, c_mid: int = 64, norm: str = "bn", act: str = "leakyrelu"
    ) -> None:
        super().__init__()
        self.depth = depth
        kw = {"norm": norm, "act": act}
        self.b1 = nn.ModuleList()
        self.b2 = nn.ModuleList()
        self.b3 = nn.ModuleList()
        for level in range(depth, 0, -1):  # index 0 is the outermost level
            c1 = c_in if level == depth else c_mid
            self.b1.append(ConvLayer(c1, c_mid, **kw))
            self.b2.append(ConvLayer(c1, c_mid, scale="down", **kw))
            self.b3.append(ConvLayer(c_mid, c_mid, scale="up", **kw))
        self.bottom = ConvLayer(c_mid, c_mid, **kw) if depth else None
        self.out = ConvLayer(c_mid, c_attn) if depth else None  # bias, no norm, no act; sigmoid in forward

    def _hourglass(self, i: int, x: torch.Tensor) -> torch.Tensor:
        up = self.b1[i](x)
        low = self.b2[i](x)
        low = self._hourglass(i + 1, low) if i + 1 < self.depth else self.bottom(low)
        low = self.b3[i](low)
        if low.shape[-2:] != up.shape[-2:]:
            low = F.interpolate(low, size=up.shape[-2:])
        return up + low

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """The sigmoid attention map ``(N, c_attn, H, W)`` in ``(0, 1)``."""
        return torch.sigmoid(self.out(self._hourglass(0, x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.depth == 0:
            return x
        return x * self.attention_map(x)


class MRFAttention(nn.Module):
    """MRRNet's multiscale receptive-field spatial attention (eqs. 2-3 of the MRRNet paper).

    Four parallel convs ``c → c/4`` with kernels ``kernels`` (reflection padding, biases, no norm/act) →
    concat (``c``) → ReLU → InstanceNorm (no affine) → conv 3×3 ``c → 1`` (reflection pad, bias) → sigmoid,
    a 2-D map that multiplies ``x``. ReLU and InstanceNorm follow the released code (the paper's eq. 3
    names only the conv and the sigmoid). ``(N, c, H, W) → (N, c, H, W)``.
    """

    def __init__(self, channels: int, kernels: tuple[int, ...] = (1, 3, 5, 7)) -> None:
        super().__init__()
        if channels % len(kernels):
            raise ConfigError(f"MRF attention needs channels divisible by {len(kernels)}, got {channels}")
        c = channels // len(kernels)
        self.branches = nn.ModuleList(ConvLayer(channels, c, k) for k in kernels)
        self.norm = nn.InstanceNorm2d(c * len(kernels))
        self.out = ConvLayer(c * len(kernels), 1, 3)

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        fused = torch.cat([b(x) for b in self.branches], 1)
        return torch.sigmoid(self.out(self.norm(F.relu(fused))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention_map(x)


class AttentionUnit(nn.Module):
    """SPARNet's face attention unit (FAU) — also MRRNet's MRR block — around any attention module.

    ``out = shortcut(x) + attention(conv2(conv1(act(norm(x)))))`` with ``conv1 = ConvLayer(norm, act)``,
    ``conv2 = ConvLayer(norm, no act)``; ``scale='down'`` puts stride 2 on conv2, ``scale='up'`` puts
    nearest ×2 before conv1. The shortcut is the identity when shape is kept, else a bare
    ``ConvLayer(c_in, c_out, 3, scale)`` (bias, no norm/act). ``attention`` is the branch module applied to
    the ``c_out``-channel features (``None``: no attention). ``(N, c_in, H, W) → (N, c_out, H', W')``.
    """

    def __init__(
        self,
        c_in: int,
        c_out: int,
        scale: Scale = "none",
        norm: str = "bn",
        act: str = "leakyrelu",
        attention: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.shortcut = nn.Identity() if scale == "none" and c_in == c_out else ConvLayer(c_in, c_out, 3, scale)
        self.preact = nn.Sequential(make_norm(norm, c_in), make_act(act, c_in))
        self.conv1 = ConvLayer(c_in, c_out, 3, "up" if scale == "up" else "none", norm=norm, act=act)
        self.conv2 = ConvLayer(c_out, c_out, 3, "down" if scale == "down" else "none", norm=norm)
        self.attention = attention if attention is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.attention(self.conv2(self.conv1(self.preact(x))))


# ------------------------------------------------------------------------------------------ transformer


class DropPath(nn.Module):
    """Stochastic depth (timm ``DropPath``): in training, zero whole samples with probability ``prob`` and scale
    the kept ones by ``1 / (1 − prob)``; the identity in eval mode or at ``prob = 0``. Any shape ``(N, ...)``."""

    def __init__(self, prob: float = 0.0) -> None:
        super().__init__()
        self.prob = prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * mask / keep


class Mlp(nn.Module):
    """Transformer MLP (timm ``Mlp``): ``fc2(act(fc1(x)))`` on the last dimension, ``dim → hidden → dim``."""

    def __init__(self, dim: int, hidden: int, act: str = "gelu") -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = make_act(act, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


# --------------------------------------------------------------------------------------------- helpers


def resize_to(x: torch.Tensor, size: int, mode: str = "bicubic") -> torch.Tensor:
    """Resize ``(N, C, h, w)`` to ``size × size`` (``align_corners=False``; anti-aliased when shrinking);
    identity when already that size. Torch's bicubic uses a = −0.75 where PIL uses a = −0.5: the data
    pipeline's exact PIL-bicubic ``upscale_back`` lives in ``facesr.data.degrade``."""
    if x.shape[-2:] == (size, size):
        return x
    shrink = x.shape[-2] > size or x.shape[-1] > size
    kw = {} if mode == "nearest" else {"align_corners": False, "antialias": shrink}
    return F.interpolate(x, size=(size, size), mode=mode, **kw)


@torch.no_grad()
def init_normal_(module: nn.Module, std: float = 0.02) -> nn.Module:
    """pix2pix/SPARNet init: conv and linear weights ``N(0, std)``, biases 0; BatchNorm weights
    ``N(1, std)``, biases 0. Other layers keep PyTorch defaults. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)
    return module


def count_params(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (shared parameters counted once)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def with_options(base: C, overrides: Mapping[str, Any], what: str) -> C:
    """``base`` (a config dataclass) with a builder's keyword ``overrides`` applied; sequences given for tuple
    fields become tuples (configs stay hashable and comparable). An unknown key is a ConfigError naming
    ``what`` and the closest field."""
    names = [f.name for f in dataclasses.fields(base)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        raise ConfigError(f"unknown {what} option {unknown[0]!r}",
                          hint=f"did you mean {close[0]!r}?" if close else f"known: {', '.join(sorted(names))}")
    tuples = {k: tuple(v) for k, v in overrides.items() if isinstance(getattr(base, k), tuple)}
    return dataclasses.replace(base, **{**overrides, **tuples})


__all__ = [
    "AttentionUnit",
    "ChannelAttention",
    "ConvLayer",
    "DoubleConv",
    "DropPath",
    "HourglassAttention",
    "MRFAttention",
    "Mlp",
    "ResidualBlock",
    "SpatialAttention",
    "conv1x1",
    "conv3x3",
    "count_params",
    "init_normal_",
    "make_act",
    "make_norm",
    "resize_to",
    "with_options",
]
