"""SSIM maps and means on single-channel planes, numpy (float64) and torch (batched), side by side.

Two windows cover every protocol in :mod:`facesr.metrics.protocols`:

``gaussian`` — MATLAB ``ssim_index`` / BasicSR ``_ssim`` / skimage ``gaussian_weights=True``: an 11×11
    Gaussian, σ 1.5 (skimage: truncate 3.5 → radius 5, the same 11 taps), population covariance,
    filtered with ``valid`` support (the 5-pixel border of the map is dropped). skimage reflects and then
    crops the same border, so its value is identical.
``uniform`` — skimage's default: a 7×7 box, sample covariance (``N/(N-1)``), the 3-pixel border dropped.

Constants: ``C1 = (0.01 L)²``, ``C2 = (0.03 L)²`` with ``L = data_range`` (255 for every protocol here).
Inputs: ``(..., H, W)`` arrays (numpy) or ``(N, C, H, W)`` tensors (torch) in ``[0, data_range]``.
Outputs: the mean SSIM per plane: shape ``(...)`` (numpy) or ``(N, C)`` (torch).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from facesr.errors import ConfigError

Window = Literal["gaussian", "uniform"]

K1, K2 = 0.01, 0.03


def gaussian_taps(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    """Normalised 1-D Gaussian taps, centred (MATLAB ``fspecial('gaussian')`` is their outer product)."""
    ax = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(ax**2) / (2 * sigma**2))
    return g / g.sum()


def _window(window: Window, size: int | None, sigma: float, hw: tuple[int, ...]) -> tuple[np.ndarray, float]:
    """(1-D taps, covariance normaliser) of a named window that must fit planes of size ``hw``."""
    if window == "gaussian":
        taps, norm = gaussian_taps(size or 11, sigma), 1.0
    elif window == "uniform":
        n = size or 7
        taps, norm = np.full(n, 1.0 / n), n * n / (n * n - 1)  # sample covariance
    else:
        raise ConfigError(f"unknown SSIM window {window!r} (gaussian, uniform)")
    if min(hw) < len(taps):
        raise ConfigError(f"SSIM window {len(taps)} is larger than the image {tuple(hw)}")
    return taps, norm


def _ssim_maps(mu_a, mu_b, e_aa, e_bb, e_ab, norm: float, data_range: float):
    """(SSIM map, contrast-structure map) from the filtered moments; numpy arrays and tensors alike."""
    var_a = norm * (e_aa - mu_a * mu_a)
    var_b = norm * (e_bb - mu_b * mu_b)
    cov = norm * (e_ab - mu_a * mu_b)
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    cs_map = (2 * cov + c2) / (var_a + var_b + c2)
    return (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs_map, cs_map


def ssim_np(
    a: np.ndarray,
    b: np.ndarray,
    *,
    window: Window = "gaussian",
    size: int | None = None,
    sigma: float = 1.5,
    data_range: float = 255.0,
    return_cs: bool = False,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Mean SSIM over the last two axes of ``a`` and ``b`` (any leading batch axes), float64.

    With ``return_cs`` also the mean contrast-structure term (used by MS-SSIM).
    """
    import cv2

    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ConfigError(f"SSIM needs equal shapes, got {a.shape} and {b.shape}")
    taps, norm = _window(window, size, sigma, a.shape[-2:])
    n = len(taps)
    lo, hi = n // 2, n - 1 - n // 2

    h, w = a.shape[-2:]
    # All five moment planes of every image stacked into one tall image: one separable pass. Rows near a
    # plane's edge mix with the neighbouring plane, but exactly those rows are outside the valid support.
    stack = np.stack([a, b, a * a, b * b, a * b])
    out = cv2.sepFilter2D(stack.reshape(-1, w), cv2.CV_64F, taps, taps, borderType=cv2.BORDER_REFLECT)
    moments = out.reshape(stack.shape)[..., lo : h - hi, lo : w - hi]
    ssim_map, cs_map = _ssim_maps(*moments, norm, data_range)
    ssim = ssim_map.mean(axis=(-2, -1))
    if return_cs:
        return ssim, cs_map.mean(axis=(-2, -1))
    return ssim


def ssim_torch(
    a,
    b,
    *,
    window: Window = "gaussian",
    size: int | None = None,
    sigma: float = 1.5,
    data_range: float = 255.0,
    return_cs: bool = False,
):
    """Torch twin of :func:`ssim_np` on ``(N, C, H, W)`` tensors: returns ``(N, C)`` (differentiable)."""
    import torch
    import torch.nn.functional as F

    if a.shape != b.shape or a.dim() != 4:
        raise ConfigError(f"SSIM needs equal (N, C, H, W) shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    taps, norm = _window(window, size, sigma, tuple(a.shape[-2:]))
    n = len(taps)
    c = a.shape[1]
    t = torch.as_tensor(taps, dtype=a.dtype, device=a.device)
    kx = t.view(1, 1, 1, n).repeat(c, 1, 1, 1)
    ky = t.view(1, 1, n, 1).repeat(c, 1, 1, 1)

    def filt(x):
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    ssim_map, cs_map = _ssim_maps(filt(a), filt(b), filt(a * a), filt(b * b), filt(a * b), norm, data_range)
    ssim = ssim_map.mean(dim=(-2, -1))
    if return_cs:
        return ssim, cs_map.mean(dim=(-2, -1))
    return ssim


__all__ = ["gaussian_taps", "ssim_np", "ssim_torch"]
