"""PSNR / SSIM under the named evaluation protocols of the face-SR literature.

Face-SR papers report PSNR/SSIM on the same 1,000 CelebA test images under different conventions, and
the numbers differ by up to 1.7 dB. facesr never prints a bare "PSNR": every value carries the protocol
it was computed under (``psnr[dic]``, ``ssim[sparnet]``).

Y is BT.601 (MATLAB ``rgb2ycbcr``): ``Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255``, R, G, B in
[0, 255]. Because Y is a per-pixel function, "crop then Y" and "Y then crop" give the same planes; the
order in the papers' descriptions is kept in :attr:`Protocol.description` only.

====================  =====================================  ======  ============================
protocol              colour                                  crop    SSIM window
====================  =====================================  ======  ============================
``dic`` (default)     Y rounded to uint8 (MATLAB ``round``)   8 px    11×11 Gaussian σ1.5, valid
``basicsr``           Y as float (no rounding)                8 px    11×11 Gaussian σ1.5, valid
``sparnet``           Y truncated to uint8 (``astype``)       none    skimage Gaussian (same window)
``sfmnet``            Y rounded to uint8                      8 px    skimage 7×7 uniform, sample cov
``rgb``               RGB, all three channels                 none    11×11 Gaussian, channel mean
====================  =====================================  ======  ============================

PSNR is ``10 log10(255² / MSE)`` per image with the MSE over every kept pixel (and channel); SSIM is the
per-image mean of the SSIM map (``rgb``: the mean over the three channel means). Reported scores are the
mean over images of the per-image values. ``data_range`` is 255 throughout.

DIC's released MATLAB code scales Y by 255 inside a uint8 array before SSIM, which saturates and gives
0.8158 (GVTNet) / 0.6285 (bicubic) instead of 0.8153 / 0.6269 on the standard test set. ``dic`` here
reproduces the intent (Y rounded to uint8, SSIM on the [0, 255] plane), not that overflow bug.

Reference figures on ``celeba_test_dic`` (GVTNet_x8 vs HR; PIL-bicubic ×8 of LR vs HR), which the test
suite reproduces to ±0.001 dB / ±0.0005: dic 27.937/0.8153, 23.580/0.6269; basicsr 27.945/0.8161,
23.582/0.6276; sparnet 27.648/0.8058, 23.549/0.6357; sfmnet 27.937/0.8199, 23.580/0.6212; rgb
26.198/0.7789, 22.141/0.5955.

Numpy functions take uint8 ``(H, W, 3)`` or ``(N, H, W, 3)`` RGB arrays; the torch twins take
``(N, 3, H, W)`` tensors in [0, 1] (quantised like ``torchvision.utils.save_image``: ``floor(255 x + 0.5)``
after clamping) or uint8, for validation during training. Both are tested against each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from facesr.errors import ConfigError
from facesr.metrics.ssim import Window, ssim_np, ssim_torch
from facesr.registry import Registry

YMode = Literal["round", "float", "trunc", "rgb"]

BT601 = (65.481, 128.553, 24.966)
_BT601_255 = np.array(BT601) / 255.0
CHUNK = 64  # images per vectorised block: bounds memory, keeps filters cache-friendly


@dataclass(frozen=True)
class Protocol:
    """One evaluation convention: colour plane(s), border crop and SSIM window."""

    name: str
    y: YMode
    crop: int
    window: Window
    description: str = ""

    # -- numpy --------------------------------------------------------------------------------------------
    def planes(self, img: np.ndarray) -> np.ndarray:
        """uint8 ``(..., H, W, 3)`` RGB → float64 ``(..., C, H', W')`` planes this protocol scores."""
        img = _check_uint8(img)
        if self.crop:
            c = self.crop
            img = img[..., c:-c, c:-c, :]
        if self.y == "rgb":
            return np.ascontiguousarray(np.moveaxis(img, -1, -3), dtype=np.float64)
        y = img @ _BT601_255  # float64, one pass over the channels
        y += 16.0
        if self.y == "round":
            np.floor(y + 0.5, out=y)  # MATLAB round (Y >= 16 is positive)
        elif self.y == "trunc":
            np.floor(y, out=y)
        return y[..., None, :, :]

    def scores(self, sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-image ``(psnr, ssim)`` arrays of two uint8 ``(N, H, W, 3)`` batches (planes built once)."""
        sr, hr = _check_uint8(sr), _check_uint8(hr)
        if sr.shape != hr.shape:
            raise ConfigError(f"prediction and ground truth differ in shape: {sr.shape} vs {hr.shape}")
        sr, hr = sr.reshape(-1, *sr.shape[-3:]), hr.reshape(-1, *hr.shape[-3:])
        p_out, s_out = np.empty(len(sr)), np.empty(len(sr))
        for i in range(0, len(sr), CHUNK):
            a, b = self.planes(sr[i : i + CHUNK]), self.planes(hr[i : i + CHUNK])
            p_out[i : i + CHUNK] = _psnr_planes(a, b)
            s_out[i : i + CHUNK] = ssim_np(a, b, window=self.window).mean(axis=-1)
        return p_out, s_out

    def psnr(self, sr: np.ndarray, hr: np.ndarray) -> np.ndarray | float:
        """Per-image PSNR in dB (a float for one image, ``(N,)`` for a batch)."""
        return _scalar(_psnr_planes(self.planes(sr), self.planes(hr)), sr)

    def ssim(self, sr: np.ndarray, hr: np.ndarray) -> np.ndarray | float:
        """Per-image SSIM (channel mean for ``rgb``)."""
        return _scalar(self.scores(sr, hr)[1], sr)

    # -- torch --------------------------------------------------------------------------------------------
    def planes_torch(self, x, dtype=None):
        """``(N, 3, H, W)`` in [0, 1] (float) or uint8 → ``(N, C, H', W')`` planes in [0, 255].

        Quantised like a saved PNG and detached: these are metrics, not losses (no gradient).
        """
        import torch

        dtype = dtype or torch.float64
        if x.dim() != 4 or x.shape[1] != 3:
            raise ConfigError(f"expected (N, 3, H, W), got {tuple(x.shape)}")
        if x.dtype == torch.uint8:
            x = x.to(dtype)
        else:
            x = torch.floor(x.detach().to(dtype).clamp(0, 1) * 255.0 + 0.5)
        if self.crop:
            c = self.crop
            x = x[..., c:-c, c:-c]
        if self.y == "rgb":
            return x
        y = 16.0 + (BT601[0] * x[:, 0] + BT601[1] * x[:, 1] + BT601[2] * x[:, 2]) / 255.0
        if self.y == "round":
            y = torch.floor(y + 0.5)
        elif self.y == "trunc":
            y = torch.floor(y)
        return y[:, None]

    def psnr_torch(self, sr, hr, dtype=None):
        """Per-image PSNR ``(N,)`` of two ``(N, 3, H, W)`` batches."""
        import torch

        a, b = self.planes_torch(sr, dtype), self.planes_torch(hr, dtype)
        mse = ((a - b) ** 2).mean(dim=(1, 2, 3))
        return 10.0 * torch.log10(255.0**2 / mse)

    def ssim_torch(self, sr, hr, dtype=None):
        """Per-image SSIM ``(N,)`` of two ``(N, 3, H, W)`` batches."""
        a, b = self.planes_torch(sr, dtype), self.planes_torch(hr, dtype)
        return ssim_torch(a, b, window=self.window).mean(dim=1)


PROTOCOLS: Registry[Protocol] = Registry("evaluation protocol")
DEFAULT_PROTOCOL = "dic"


def _register(p: Protocol) -> Protocol:
    PROTOCOLS.register(p.name)(lambda: p)
    return p


_register(Protocol("dic", "round", 8, "gaussian",
                   "DIC: Y rounded to uint8, 8 px border crop, MATLAB SSIM 11x11 Gaussian s1.5, valid"))
_register(Protocol("basicsr", "float", 8, "gaussian",
                   "BasicSR: crop 8 px first, Y as float, SSIM 11x11 Gaussian s1.5, valid"))
_register(Protocol("sparnet", "trunc", 0, "gaussian",
                   "SPARNet: Y truncated to uint8, no crop, skimage Gaussian SSIM"))
_register(Protocol("sfmnet", "round", 8, "uniform",
                   "SFMNet: crop 8 px on RGB, Y rounded, skimage 7x7 uniform SSIM"))
_register(Protocol("rgb", "rgb", 0, "gaussian",
                   "RGB, no crop, SSIM 11x11 Gaussian s1.5 valid, mean over channels"))


def get_protocol(protocol: str | Protocol) -> Protocol:
    """A :class:`Protocol` by name (ConfigError with a close match for unknown names) or as given."""
    return protocol if isinstance(protocol, Protocol) else PROTOCOLS.build(protocol)


@dataclass(frozen=True)
class Scores:
    """Per-image PSNR and SSIM under one protocol; ``columns()`` names each with the protocol."""

    protocol: str
    psnr: np.ndarray
    ssim: np.ndarray
    extra: dict = field(default_factory=dict)

    def columns(self) -> dict[str, np.ndarray]:
        return {f"psnr[{self.protocol}]": self.psnr, f"ssim[{self.protocol}]": self.ssim}

    def means(self) -> dict[str, float]:
        return {k: float(np.mean(v)) for k, v in self.columns().items()}


def psnr(sr: np.ndarray, hr: np.ndarray, protocol: str | Protocol = DEFAULT_PROTOCOL) -> np.ndarray | float:
    """PSNR (dB) of uint8 RGB ``sr`` against ``hr`` under ``protocol``; per image for a batch."""
    return get_protocol(protocol).psnr(sr, hr)


def ssim(sr: np.ndarray, hr: np.ndarray, protocol: str | Protocol = DEFAULT_PROTOCOL) -> np.ndarray | float:
    """SSIM of uint8 RGB ``sr`` against ``hr`` under ``protocol``; per image for a batch."""
    return get_protocol(protocol).ssim(sr, hr)


def psnr_ssim(sr: np.ndarray, hr: np.ndarray, protocol: str | Protocol = DEFAULT_PROTOCOL) -> Scores:
    """Both, per image (``(N,)`` arrays, a batch of one for a single image), named by protocol."""
    p = get_protocol(protocol)
    return Scores(p.name, *p.scores(sr, hr))


def psnr_ssim_torch(sr, hr, protocol: str | Protocol = DEFAULT_PROTOCOL, dtype=None) -> dict:
    """Torch batch version for validation: ``{"psnr[<p>]": (N,), "ssim[<p>]": (N,)}`` tensors."""
    p = get_protocol(protocol)
    return {f"psnr[{p.name}]": p.psnr_torch(sr, hr, dtype), f"ssim[{p.name}]": p.ssim_torch(sr, hr, dtype)}


def _check_uint8(img: np.ndarray) -> np.ndarray:
    img = np.asarray(img)
    if img.dtype != np.uint8 or img.ndim < 3 or img.shape[-1] != 3:
        raise ConfigError(
            f"protocol metrics take uint8 RGB (..., H, W, 3) images, got {img.dtype} {img.shape}; "
            "quantise first (or use the torch twin for [0, 1] tensors)"
        )
    return img


def _psnr_planes(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR over the last three axes of two plane stacks (data range 255)."""
    if a.shape != b.shape:
        raise ConfigError(f"prediction and ground truth differ in shape: {a.shape} vs {b.shape}")
    mse = ((a - b) ** 2).mean(axis=(-3, -2, -1))
    with np.errstate(divide="ignore"):
        return 10.0 * np.log10(255.0**2 / mse)


def _scalar(values: np.ndarray, like: np.ndarray):
    return float(np.ravel(values)[0]) if np.ndim(like) == 3 else values


__all__ = [
    "DEFAULT_PROTOCOL",
    "PROTOCOLS",
    "Protocol",
    "Scores",
    "get_protocol",
    "psnr",
    "psnr_ssim",
    "psnr_ssim_torch",
    "ssim",
]
