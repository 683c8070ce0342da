"""PSNR inside facial components, given a class map per image.

Class ids (the facesr parsing convention, shared with the stores): 0 other, 1 skin, 2 eyebrows, 3 eyes,
4 nose, 5 mouth. A region's PSNR uses the protocol's colour planes (Y rounded for ``dic``) but **not**
its border crop (the components lie inside the face and the crop would only cut masks), with the MSE
over the region's pixels (and channels for ``rgb``). An image whose class map lacks the region gets NaN;
means are taken over the images that have it. Columns: ``psnr[dic,eyes]``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from facesr.errors import ConfigError
from facesr.metrics.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol
from facesr.priors.parsing import PARSING_ID

CLASS_IDS = PARSING_ID  # the stores' parsing ids, defined once in facesr.priors.parsing
DEFAULT_REGIONS = ("eyes", "nose", "mouth")


def region_psnr(sr: np.ndarray, hr: np.ndarray, classes: np.ndarray, *,
                regions: tuple[str, ...] = DEFAULT_REGIONS,
                protocol: str | Protocol = DEFAULT_PROTOCOL) -> dict[str, np.ndarray]:
    """``{"psnr[<protocol>,<region>]": (N,)}`` for uint8 RGB ``(N, H, W, 3)`` and ``(N, H, W)`` class maps."""
    p = get_protocol(protocol)
    unknown = [r for r in regions if r not in CLASS_IDS]
    if unknown:
        raise ConfigError(f"unknown regions {unknown}; known: {', '.join(CLASS_IDS)}")
    sr, hr, classes = np.asarray(sr), np.asarray(hr), np.asarray(classes)
    if sr.ndim == 3:
        sr, hr, classes = sr[None], hr[None], classes[None]
    if classes.shape != sr.shape[:-1] or sr.shape != hr.shape:
        raise ConfigError(f"class maps {classes.shape} must match the images {sr.shape[:-1]} (and sr == hr shape)")
    full = replace(p, crop=0)
    sq = ((full.planes(sr) - full.planes(hr)) ** 2).sum(axis=1)  # (N, H, W): summed over channels
    channels = 3 if p.y == "rgb" else 1
    out = {}
    for r in regions:
        mask = classes == CLASS_IDS[r]
        count = mask.sum(axis=(1, 2)) * channels
        with np.errstate(divide="ignore", invalid="ignore"):
            mse = (sq * mask).sum(axis=(1, 2)) / count
            out[f"psnr[{p.name},{r}]"] = np.where(count > 0, 10.0 * np.log10(255.0**2 / mse), np.nan)
    return out


__all__ = ["CLASS_IDS", "DEFAULT_REGIONS", "region_psnr"]
