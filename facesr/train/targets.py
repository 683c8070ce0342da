"""Loss targets the training step makes from the (augmented) batch, on the fly (issue 10, item 3).

W-Net §4.2: the Parsing Block is supervised with the HR binary map (skin = class 1 of ``parsing``)
bicubic-downsampled to the LR size — :func:`facesr.priors.parsing.lr_parsing`, the same function that
would fill a stored ``schema.lr_parsing(spec)`` array, applied here after augmentation so the target always
matches the transformed image (a stored map would not). ``batch["lr_parsing"]`` is ``(B, 1, s, s)`` float32
in [0, 1] at the batch's LR side ``s``; :mod:`facesr.train.objective` brings it to the prediction's grid.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

__all__ = ["add_lr_parsing", "with_lr_parsing"]


def add_lr_parsing(batch: dict, method: str = "bicubic-pil") -> dict:
    """``batch`` plus ``lr_parsing``: skin of ``batch["parsing"]`` (B, H, W) at ``batch["lr"]``'s side."""
    from facesr.priors.parsing import lr_parsing

    parsing = batch["parsing"]
    side = tuple(int(v) for v in batch["lr"].shape[-2:])
    skin = (parsing == 1).detach().cpu().numpy().astype(np.float32)
    out = dict(batch)
    out["lr_parsing"] = torch.from_numpy(lr_parsing(skin, side, method)).unsqueeze(1).to(parsing.device)
    return out


def with_lr_parsing(augment: Callable[[dict, int], dict] | None, method: str = "bicubic-pil"):
    """The step's batch hook: ``augment`` (or nothing), then :func:`add_lr_parsing`."""

    def hook(batch: dict, epoch: int) -> dict:
        return add_lr_parsing(augment(batch, epoch) if augment is not None else batch, method)

    hook.config = getattr(augment, "config", None)  # type: ignore[attr-defined]
    return hook
