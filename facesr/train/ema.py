"""Exponential moving average of a model's weights (GVTNet / BasicSR ``net_g_ema``, decay 0.999).

``shadow = decay · shadow + (1 − decay) · weights`` after every ``every``-th optimizer step; buffers
(BatchNorm statistics) are copied, not averaged, as BasicSR does. The shadow is a full copy of the
model in eval mode that validation and inference use when present. Its ``state_dict`` is a plain model
state dict, saved beside the model as ``ema.safetensors``.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        src = dict(model.named_parameters())
        for name, p in self.module.named_parameters():
            p.mul_(self.decay).add_(src[name].detach().to(p.dtype), alpha=1.0 - self.decay)
        bsrc = dict(model.named_buffers())
        for name, b in self.module.named_buffers():
            b.copy_(bsrc[name])

    def state_dict(self) -> dict:
        return self.module.state_dict()

    def load_state_dict(self, state: dict, strict: bool = True):
        return self.module.load_state_dict(state, strict=strict)


__all__ = ["EMA"]
