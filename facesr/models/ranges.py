"""The one place where a model's working range meets facesr's ``[0, 1]`` contract.

Every model takes LR and returns SR in ``[0, 1]`` (see :mod:`facesr.models`). A paper that trains in
another range converts at the model boundary with these two functions and records the range in the model's
``input_range`` attribute, so stores, losses and metrics never see model-specific ranges.

Ranges:

=============  ===================================================  =====================================
name           model sees                                           used by
=============  ===================================================  =====================================
``zero_one``   ``x`` unchanged                                      baselines, W-Net
``minus1_1``   ``2·x − 1`` (torchvision ``Normalize(0.5, 0.5)``)    light U-Net, SPARNet, UFVNet, MRRNet
``mean_sub``   ``x − mean`` (per-channel RGB mean, ``mean=`` given)  GVTNet-style (BasicSR ``img_range`` 1)
=============  ===================================================  =====================================

``from_model_range`` is the exact inverse of ``to_model_range``; neither clamps.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from facesr.errors import ConfigError

RANGES: dict[str, str] = {
    "zero_one": "[0, 1]",
    "minus1_1": "[-1, 1]",
    "mean_sub": "[0, 1] − mean",
}


def _check(name: str, mean: Sequence[float] | torch.Tensor | None) -> None:
    if name not in RANGES:
        import difflib

        close = difflib.get_close_matches(name, RANGES, n=1)
        raise ConfigError(f"unknown model range {name!r}", hint=f"did you mean {close[0]!r}?" if close else
                          f"known: {', '.join(RANGES)}")
    if name == "mean_sub" and mean is None:
        raise ConfigError("range 'mean_sub' needs mean=(r, g, b)")


def _mean_like(mean: Sequence[float] | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device)
    return m.view(1, -1, 1, 1) if m.ndim == 1 else m


def to_model_range(x: torch.Tensor, name: str, *, mean: Sequence[float] | torch.Tensor | None = None) -> torch.Tensor:
    """Map an image batch ``(B, C, H, W)`` in ``[0, 1]`` to the model range ``name``."""
    _check(name, mean)
    if name == "zero_one":
        return x
    if name == "minus1_1":
        return x * 2.0 - 1.0
    return x - _mean_like(mean, x)  # type: ignore[arg-type]


def from_model_range(
    y: torch.Tensor, name: str, *, mean: Sequence[float] | torch.Tensor | None = None
) -> torch.Tensor:
    """Map a model output in range ``name`` back to ``[0, 1]`` (inverse of :func:`to_model_range`, unclamped)."""
    _check(name, mean)
    if name == "zero_one":
        return y
    if name == "minus1_1":
        return (y + 1.0) * 0.5
    return y + _mean_like(mean, y)  # type: ignore[arg-type]


def describe_range(name: str) -> str:
    """A short human label for a range name (``"[-1, 1]"``); unknown names are returned unchanged."""
    return RANGES.get(name, name)


__all__ = ["RANGES", "describe_range", "from_model_range", "to_model_range"]
