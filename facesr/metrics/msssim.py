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

``msssim[seed000]`` (:func:`ms_ssim_seed000`, extra ``msssim-seed000``) is the seed-000 notebook's call
(``modular_multi_model_pipeline.ipynb``): torchmetrics ``MultiScaleStructuralSimilarityIndexMeasure(
data_range=2.0, kernel_size=(7, 7), betas=(0.0448, 0.2856, 0.3001, 0.2363), normalize="relu")`` on images
in [-1, 1], computed as torchmetrics (1.9) computes it:

* the window is a Gaussian σ 1.5 of **11** taps: torchmetrics sizes a Gaussian window from σ
  (``2·int(3.5σ + 0.5) + 1``) and applies ``kernel_size`` to uniform windows only, so the notebook's
  "7×7" has no effect;
* four scales with the first four standard weights (not renormalised), 2×2 average pooling that drops an
  odd last row/column;
* per scale the images are reflect-padded by 5 (``F.pad(mode="reflect")``) and filtered; the
  contrast-structure map is then cropped to the valid part, the SSIM map (used at the last scale) is
  **not** — its mean includes the padded border; variances are clamped at 0;
* both are averaged over channels and pixels together (C, H, W pooled), then ReLU, then the weighted
  product — not a product per channel and a channel mean as ``msssim[rgb]``;
* the luminance term is not shift-invariant, so the images are centred as the notebook's [-1, 1] tensors
  (``x − 127.5`` with data range 255, equal to ``x/127.5 − 1`` with data range 2).

The notebook's batch value is the mean of these per-image values.
"""

from __future__ import annotations

import numpy as np

from facesr.errors import ConfigError
from facesr.metrics.ssim import K1, K2, gaussian_taps, ssim_np, ssim_torch

WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
COLUMN = "msssim[rgb]"
SEED000_WEIGHTS = WEIGHTS[:4]
SEED000_COLUMN = "msssim[seed000]"


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


def ms_ssim_seed000(sr: np.ndarray, hr: np.ndarray, *, sigma: float = 1.5,
                    weights: tuple[float, ...] = SEED000_WEIGHTS) -> np.ndarray | float:
    """The seed-000 notebook's MS-SSIM (see module docstring) of uint8 RGB ``(H, W, 3)`` / ``(N, H, W, 3)``."""
    from scipy.ndimage import correlate1d

    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape or sr.shape[-1] != 3 or sr.dtype != np.uint8:
        raise ConfigError(f"ms_ssim_seed000 takes equal uint8 RGB images, got {sr.dtype} {sr.shape} / {hr.shape}")
    taps = 2 * int(3.5 * sigma + 0.5) + 1
    pad = (taps - 1) // 2
    g = gaussian_taps(taps, sigma)
    a = np.moveaxis(sr.astype(np.float64), -1, -3) - 127.5  # the notebook's [-1, 1] tensors, ×127.5
    b = np.moveaxis(hr.astype(np.float64), -1, -3) - 127.5
    _check_size(a.shape[-2:], taps, len(weights))
    c1, c2 = (K1 * 255.0) ** 2, (K2 * 255.0) ** 2

    def filt(x):  # reflect-pad + valid filtering == same-size filtering with scipy's "mirror" border
        return correlate1d(correlate1d(x, g, axis=-1, mode="mirror"), g, axis=-2, mode="mirror")

    terms = []
    for i in range(len(weights)):
        mu_a, mu_b = filt(a), filt(b)
        var_a = np.maximum(filt(a * a) - mu_a**2, 0.0)
        var_b = np.maximum(filt(b * b) - mu_b**2, 0.0)
        cov = filt(a * b) - mu_a * mu_b
        cs_map = (2 * cov + c2) / (var_a + var_b + c2)
        if i < len(weights) - 1:
            terms.append(np.maximum(cs_map[..., pad:-pad, pad:-pad].mean(axis=(-3, -2, -1)), 0.0))
            a, b = _pool_floor(a), _pool_floor(b)
        else:
            ssim_map = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs_map
            terms.append(np.maximum(ssim_map.mean(axis=(-3, -2, -1)), 0.0))
    val = np.prod([t**w for t, w in zip(terms, weights)], axis=0)
    return float(val) if sr.ndim == 3 else val


def _pool_floor(x: np.ndarray) -> np.ndarray:
    """``F.avg_pool2d(x, (2, 2))``: 2×2 means, an odd last row/column dropped."""
    h, w = x.shape[-2] // 2 * 2, x.shape[-1] // 2 * 2
    x = x[..., :h, :w]
    return x.reshape(*x.shape[:-2], h // 2, 2, w // 2, 2).mean(axis=(-3, -1))


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


__all__ = ["COLUMN", "SEED000_COLUMN", "SEED000_WEIGHTS", "WEIGHTS", "ms_ssim", "ms_ssim_seed000", "ms_ssim_torch"]
