"""MS-SSIM (Wang, Simoncelli & Bovik 2003) on RGB, numpy and torch twins.

Five scales with the standard weights ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``; between scales a
2×2 average pool (``pytorch_msssim`` convention: odd sizes padded by one); contrast-structure at the
first four scales and full SSIM at the last, each clamped at 0 before the weighted product; computed per
channel and then averaged over R, G, B, per image.

Window: Gaussian σ 1.5, **7 taps** by default. At 128×128 the fifth scale is 8×8, so the usual 11-tap
window does not fit (pytorch-msssim and torchmetrics both refuse it), so facesr uses 7 — a departure from
the 11-tap original, to be stated beside any MS-SSIM compared with a paper's. Valid filtering as in
:mod:`facesr.metrics.ssim`, data range 255.
Reported as ``msssim[rgb]``.
"""

from __future__ import annotations

import numpy as np

from facesr.errors import ConfigError
from facesr.metrics.ssim import ssim_np, ssim_torch

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
COLUMN = "msssim[rgb]"


def _pool_np(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[-2:]
    if h % 2 or w % 2:  # F.avg_pool2d(kernel 2, padding=s % 2, count_include_pad=True)
        x = np.pad(x, [(0, 0)] * (x.ndim - 2) + [(h % 2, h % 2), (w % 2, w % 2)])
        h, w = x.shape[-2:]
    return x[..., : h // 2 * 2, : w // 2 * 2].reshape(*x.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


def ms_ssim(sr: np.ndarray, hr: np.ndarray, *, win_size: int = 7, sigma: float = 1.5,
            weights: tuple[float, ...] = WEIGHTS) -> np.ndarray | float:
    """MS-SSIM of uint8 RGB ``(H, W, 3)`` or ``(N, H, W, 3)`` images: a float or ``(N,)``."""
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape or sr.shape[-1] != 3 or sr.dtype != np.uint8:
        raise ConfigError(f"ms_ssim takes equal uint8 RGB images, got {sr.dtype} {sr.shape} / {hr.shape}")
    a = np.moveaxis(sr.astype(np.float64), -1, -3)
    b = np.moveaxis(hr.astype(np.float64), -1, -3)
    _check_size(a.shape[-2:], win_size, len(weights))
    terms = []
    for i in range(len(weights)):
        s, cs = ssim_np(a, b, window="gaussian", size=win_size, sigma=sigma, return_cs=True)
        terms.append(np.maximum(s if i == len(weights) - 1 else cs, 0.0))
        if i < len(weights) - 1:
            a, b = _pool_np(a), _pool_np(b)
    val = np.prod([t ** w for t, w in zip(terms, weights)], axis=0).mean(axis=-1)
    return float(val) if sr.ndim == 3 else val


def ms_ssim_torch(sr, hr, *, win_size: int = 7, sigma: float = 1.5, weights: tuple[float, ...] = WEIGHTS,
                  data_range: float = 1.0):
    """Torch twin on ``(N, 3, H, W)`` tensors in ``[0, data_range]``: ``(N,)``, differentiable."""
    import torch
    import torch.nn.functional as F

    _check_size(sr.shape[-2:], win_size, len(weights))
    a, b = sr * (255.0 / data_range), hr * (255.0 / data_range)
    terms = []
    for i in range(len(weights)):
        s, cs = ssim_torch(a, b, window="gaussian", size=win_size, sigma=sigma, return_cs=True)
        terms.append(torch.relu(s if i == len(weights) - 1 else cs))
        if i < len(weights) - 1:
            pad = [s_ % 2 for s_ in a.shape[-2:]]
            a = F.avg_pool2d(a, 2, padding=pad)
            b = F.avg_pool2d(b, 2, padding=pad)
    w = torch.as_tensor(weights, dtype=a.dtype, device=a.device).view(-1, 1, 1)
    return torch.prod(torch.stack(terms) ** w, dim=0).mean(dim=1)


def _check_size(hw, win_size: int, levels: int) -> None:
    smallest = min(hw) // 2 ** (levels - 1)
    if smallest < win_size:
        raise ConfigError(
            f"MS-SSIM with {levels} scales needs the image to be at least {win_size * 2 ** (levels - 1)} px "
            f"for window {win_size} (got {tuple(hw)}); use a smaller window or fewer scales"
        )


__all__ = ["COLUMN", "WEIGHTS", "ms_ssim", "ms_ssim_torch"]
