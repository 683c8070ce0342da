"""Degradation: the only place that resizes HR faces to LR (and LR back up for pre-upsampling models).

Pure functions, uint8 RGB H×W×3 in and out (``imresize_matlab`` also takes float arrays). Sizes are
``(h, w)``; any target size works, smaller or larger than the input.

Methods (:data:`METHODS`):

``bicubic-pil``
    ``PIL.Image.resize((w, h), Image.BICUBIC)``: Keys cubic with a = −0.5, support widened by the
    scale when shrinking (antialiased), Pillow's fixed-point uint8 arithmetic. This is bit-exactly how
    the community's CelebA ×8 test set (DIC, SPARNet, GVTNet…; ``celeba_test_dic/LR``) was made: the
    tests check all 1,000 files.
``bicubic-matlab``
    MATLAB ``imresize(A, [h w], 'bicubic')`` with its default antialiasing, in numpy, following
    ``imresize.m``'s ``contributions()``: cubic a = −0.5 (kernel width 4, widened to 4/s when
    shrinking by s < 1, and scaled by s), output pixel x (1-based) centred at
    ``u = x/s + 0.5·(1 − 1/s)``, ``ceil(width) + 2`` taps from ``floor(u − width/2)``, weights
    normalised to sum 1, symmetric (mirror) padding, all-zero taps dropped; ``s = out/in`` per axis.
    Like MATLAB, the axis with the smaller scale is resized first (stable order: rows first on ties)
    and — because ``imresizemex`` returns the input's class — a uint8 image is rounded to uint8
    *after each pass* (round half up, saturating), not only at the end. :func:`imresize_matlab`
    is the float version (float64 arithmetic, no rounding), e.g. for BasicSR-style pipelines.
``bilinear``
    Antialiased bilinear (triangle filter, support widened by the scale when shrinking), computed
    with Pillow ``Image.BILINEAR`` on the uint8 image. Chosen over ``torch.nn.functional.interpolate(
    mode="bilinear", antialias=True)`` because degradation is uint8 → uint8 here: Pillow works on
    uint8 natively, deterministically and without torch, and torch's antialiased kernel is a port of
    Pillow's, so the two are the same filter (tests: they differ by at most 1 grey level, from
    Pillow's fixed-point rounding). The "bilinear degradation protocol" of the seed-000 paper.
``bilinear-progressive``
    The seed-000 released recipe: repeated antialiased bilinear halving, 128 → 64 → 32 → 16 for ×8.
    Rule for any target: while the image is at least twice the target on both axes, halve it
    (``h // 2``, ``w // 2``); then one final antialiased bilinear step to the target if it is not
    there yet (e.g. 128 → 24 is 128 → 64 → 32 → 24; 128 → 8 is four halvings). Each step rounds to
    uint8 (the released code kept floats in [−1, 1] between steps; the difference is ≤ 1 grey level
    per step). Upscaling is a single bilinear step.

Multi-resolution sets (UFVNet, §IV "Datasets and metrics"): LR sizes as fractions k/16 of the HR
side, bicubic; :data:`MR_SETS` gives them in pixels for 128×128 HR, :func:`mr_specs` for any HR size.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image

from facesr.errors import ConfigError

#: UFVNet multi-resolution sets, LR side in pixels for 128×128 HR: MR3 = 1/8, 1/4, 1/2 (the three
#: anchor resolutions); MR7 = 2/16 … 8/16; MR8 = 1/16 … 8/16.
MR_SETS: dict[str, tuple[int, ...]] = {
    "MR3": (16, 32, 64),
    "MR7": (16, 24, 32, 40, 48, 56, 64),
    "MR8": (8, 16, 24, 32, 40, 48, 56, 64),
}
#: UFVNet's anchor resolutions (LR side for 128×128 HR).
UFVNET_ANCHORS: tuple[int, ...] = (16, 32, 64)


# ------------------------------------------------------------------------------------ MATLAB bicubic
def _cubic(x: np.ndarray) -> np.ndarray:
    ax = np.abs(x)
    ax2 = ax * ax
    ax3 = ax2 * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * (
        (ax > 1) & (ax <= 2)
    )


def matlab_contributions(
    in_len: int, out_len: int, scale: float | None = None, antialias: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``contributions()`` for the bicubic kernel: ``(weights (out, P) float64, indices (out, P)
    0-based)``; output i = Σ_k weights[i, k] · input[indices[i, k]]."""
    if scale is None:
        scale = out_len / in_len
    width = 4.0
    if scale < 1 and antialias:
        width = width / scale

        def h(x):
            return scale * _cubic(scale * x)
    else:
        h = _cubic
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(np.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]  # 1-based
    w = h(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
    idx = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    keep = np.any(w != 0, axis=0)
    return w[:, keep], idx[:, keep]


def _resize_axis(x: np.ndarray, axis: int, out_len: int, antialias: bool) -> np.ndarray:
    w, idx = matlab_contributions(x.shape[axis], out_len, antialias=antialias)
    xm = np.moveaxis(x, axis, 0).astype(np.float64, copy=False)
    out = np.einsum("ok,ok...->o...", w, xm[idx])
    return np.moveaxis(out, 0, axis)


def _round_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def _matlab(x: np.ndarray, size: tuple[int, int], antialias: bool, to_uint8: bool) -> np.ndarray:
    h, w = _check_size(size)
    scales = (h / x.shape[0], w / x.shape[1])
    out = x
    for axis in np.argsort(scales, kind="stable"):
        n = (h, w)[axis]
        if out.shape[axis] == n and scales[axis] == 1:
            continue  # a scale-1 pass is the identity in MATLAB too (weights are one-hot)
        out = _resize_axis(out, int(axis), n, antialias)
        if to_uint8:
            out = _round_uint8(out)
    return out


def imresize_matlab(x: np.ndarray, size: Sequence[int], antialias: bool = True) -> np.ndarray:
    """MATLAB ``imresize(x, [h w], 'bicubic')`` on a float array (H×W or H×W×C), float64 out, no rounding."""
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim not in (2, 3):
        raise ValueError(f"expected H×W or H×W×C, got {arr.shape}")
    return _matlab(arr, tuple(size), antialias, to_uint8=False)


# --------------------------------------------------------------------------------------- methods
def _pil(image: np.ndarray, size: tuple[int, int], resample: int) -> np.ndarray:
    h, w = size
    return np.asarray(Image.fromarray(image).resize((w, h), resample))


def _bicubic_pil(image, size):
    return _pil(image, size, Image.BICUBIC)


def _bicubic_matlab(image, size):
    return _matlab(image, size, antialias=True, to_uint8=True)


def _bilinear(image, size):
    return _pil(image, size, Image.BILINEAR)


def progressive_sizes(src: Sequence[int], dst: Sequence[int]) -> list[tuple[int, int]]:
    """The intermediate and final (h, w) of ``bilinear-progressive`` (see module docstring)."""
    h, w = int(src[0]), int(src[1])
    th, tw = int(dst[0]), int(dst[1])
    steps: list[tuple[int, int]] = []
    while h >= 2 * th and w >= 2 * tw:
        h, w = h // 2, w // 2
        steps.append((h, w))
    if (h, w) != (th, tw):
        steps.append((th, tw))
    return steps


def _bilinear_progressive(image, size):
    out = image
    for step in progressive_sizes(image.shape[:2], size):
        out = _pil(out, step, Image.BILINEAR)
    return out


METHODS: dict[str, Callable[[np.ndarray, tuple[int, int]], np.ndarray]] = {
    "bicubic-pil": _bicubic_pil,
    "bicubic-matlab": _bicubic_matlab,
    "bilinear": _bilinear,
    "bilinear-progressive": _bilinear_progressive,
}


def _check_size(size: Sequence[int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ConfigError(f"size must be (h, w), got {size!r}") from None
    if h < 1 or w < 1:
        raise ConfigError(f"size must be positive, got {(h, w)}")
    return h, w


def _method(method: str):
    try:
        return METHODS[method]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(method, METHODS, n=1)
        raise ConfigError(
            f"unknown resize method {method!r}",
            hint=f"did you mean {close[0]!r}?" if close else f"known: {', '.join(METHODS)}",
        ) from None


def resize(image: np.ndarray, size: Sequence[int], method: str) -> np.ndarray:
    """Resize a uint8 RGB H×W×3 image to ``size = (h, w)`` by a named :data:`METHODS` method."""
    fn = _method(method)
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 RGB image, got {img.dtype} {img.shape}")
    hw = _check_size(size)
    if img.shape[:2] == hw:
        return img.copy()
    return np.ascontiguousarray(fn(np.ascontiguousarray(img), hw))


# ------------------------------------------------------------------------------------------ specs
@dataclass(frozen=True)
class LRSpec:
    """One LR degradation: a :data:`METHODS` method and a square LR side. ``name`` is the store key
    (array ``lr/<name>``), e.g. ``bicubic-pil_16``; ``LRSpec.parse`` reads ``"bicubic-pil:16"`` or the
    name."""

    method: str
    size: int

    def __post_init__(self) -> None:
        _method(self.method)
        if isinstance(self.size, bool) or not isinstance(self.size, (int, np.integer)) or self.size < 1:
            raise ConfigError(f"LR size must be a positive int, got {self.size!r}")
        object.__setattr__(self, "size", int(self.size))

    @classmethod
    def parse(cls, text: str) -> LRSpec:
        s = str(text).strip()
        for sep in (":", "_"):
            if sep in s:
                method, _, size = s.rpartition(sep)
                break
        else:
            raise ConfigError(f"cannot parse LR spec {text!r}", hint="write METHOD:SIZE, e.g. bicubic-pil:16")
        if not size.isdigit():
            raise ConfigError(f"cannot parse LR spec {text!r}: size {size!r} is not an integer",
                              hint="write METHOD:SIZE, e.g. bicubic-pil:16")
        return cls(method, int(size))

    @property
    def name(self) -> str:
        return f"{self.method}_{self.size}"

    def __str__(self) -> str:
        return f"{self.method}:{self.size}"


def degrade(hr: np.ndarray, spec: LRSpec | str) -> np.ndarray:
    """HR uint8 RGB → LR ``spec.size``×``spec.size`` by ``spec.method``."""
    if isinstance(spec, str):
        spec = LRSpec.parse(spec)
    return resize(hr, (spec.size, spec.size), spec.method)


def upscale_back(lr: np.ndarray, size: int = 128, method: str = "bicubic-pil") -> np.ndarray:
    """LR → ``size``×``size`` (the pre-upsampled input of SPARNet-family models and UFVNet)."""
    return resize(lr, (size, size), method)


def mr_specs(set_name: str, method: str = "bicubic-pil", hr_size: int = 128) -> tuple[LRSpec, ...]:
    """The LR specs of a UFVNet multi-resolution set for ``hr_size`` HR (sizes k/16 of it, exact)."""
    if set_name not in MR_SETS:
        raise ConfigError(f"unknown multi-resolution set {set_name!r}", hint=f"known: {', '.join(MR_SETS)}")
    sizes = []
    for s in MR_SETS[set_name]:
        if (s * hr_size) % 128:
            raise ConfigError(f"{set_name} needs an HR size divisible by 16, got {hr_size}")
        sizes.append(s * hr_size // 128)
    return tuple(LRSpec(method, s) for s in sizes)


def expand_lr(item: str, hr_size: int = 128) -> tuple[LRSpec, ...]:
    """One ``--lr`` item → its specs: a UFVNet set name (``mr3`` / ``mr7`` / ``mr8``, any case; the paper's
    bicubic, §IV-A) → every size of the set, ``METHOD-NAME`` (``mr8:bicubic-matlab``) for another method;
    anything else is one :meth:`LRSpec.parse` spec."""
    s = str(item).strip()
    name, _, method = s.partition(":")
    if name.upper() in MR_SETS:
        return mr_specs(name.upper(), method or "bicubic-pil", hr_size)
    return (LRSpec.parse(s),)


__all__ = [
    "METHODS",
    "expand_lr",
    "MR_SETS",
    "UFVNET_ANCHORS",
    "LRSpec",
    "degrade",
    "imresize_matlab",
    "matlab_contributions",
    "mr_specs",
    "progressive_sizes",
    "resize",
    "upscale_back",
]
