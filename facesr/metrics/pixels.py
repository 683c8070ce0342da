"""The pixel conventions every scorer and picture shares: one quantiser and one bicubic baseline.

* :func:`to_uint8`: a float ``(B, 3, H, W)`` tensor in [0, 1] (clamped) → uint8 ``(B, H, W, 3)`` numpy,
  ``floor(255 x + 0.5)`` — what ``torchvision.utils.save_image`` writes and what the protocol metrics'
  torch twins quantise to, so a score of the tensor equals a score of its saved PNG. uint8 input (numpy
  or tensor, HWC) passes through; one ``(3, H, W)`` / ``(H, W, 3)`` image gives one image.
* :func:`to_float`: uint8 ``(B, H, W, 3)`` (numpy or tensor) → float32 ``(B, 3, H, W)`` in [0, 1] on
  ``device``; float tensors pass through (moved).
* :func:`bicubic_baseline`: PIL bicubic of uint8 LR faces to ``size`` (``facesr.data.degrade.upscale_back``),
  the "Bicubic" row of the face-SR literature's tables.
"""

from __future__ import annotations

import numpy as np

__all__ = ["bicubic_baseline", "to_float", "to_uint8"]


def to_uint8(x) -> np.ndarray:
    """Images as uint8 RGB HWC numpy (see module docstring)."""
    import torch

    if isinstance(x, np.ndarray):
        if x.dtype != np.uint8:
            raise TypeError(f"numpy images must already be uint8, got {x.dtype}")
        return x
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"expected a tensor or a uint8 array, got {type(x).__name__}")
    if x.dtype == torch.uint8:  # stored bytes: already HWC
        return x.cpu().numpy()
    one = x.dim() == 3
    t = x.detach()[None] if one else x.detach()
    out = (t.float().clamp(0, 1) * 255.0 + 0.5).floor().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    return out[0] if one else out


def to_float(x, device=None):
    """uint8 ``(B, H, W, 3)`` → float32 ``(B, 3, H, W)`` in [0, 1] on ``device`` (float tensors are moved)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x
    if device is not None:
        t = t.to(device)
    if t.dtype == torch.uint8:
        return t.permute(0, 3, 1, 2).float().div_(255.0)
    return t.float()


def bicubic_baseline(lr: np.ndarray, size: int) -> np.ndarray:
    """uint8 ``(B, s, s, 3)`` LR → uint8 ``(B, size, size, 3)`` by PIL bicubic (the literature's baseline)."""
    from facesr.data.degrade import upscale_back

    lr = np.asarray(lr)
    return np.stack([upscale_back(x, size) for x in lr]) if len(lr) else np.zeros((0, size, size, 3), np.uint8)
