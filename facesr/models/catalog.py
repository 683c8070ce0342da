"""What the registry holds, as plain records: name, parameter count, range, scale (for ``facesr models list``).

Models are built on PyTorch's ``meta`` device where their builders allow it (no weights allocated), else on
the CPU.
Model attributes read (all optional): ``input_range`` (a :mod:`facesr.models.ranges` name), ``scale``
(``int``; ``None`` = any LR size, resized inside; a ``cfg.scale`` is used when the model has no ``scale``),
``kind`` (``"sr"`` or ``"discriminator"``), ``expected_params`` (the paper configuration's exact count).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from facesr.models import MODELS, _load, build
from facesr.models.layers import count_params
from facesr.models.ranges import describe_range


@dataclass(frozen=True)
class ModelInfo:
    name: str
    params: int
    input_range: str
    scale: int | None
    kind: str
    expected_params: int | None
    summary: str

    @property
    def lr_size(self) -> int:
        """The LR side a 128-px model is normally fed (16 for any-size models)."""
        return 128 // self.scale if self.scale else 16

    @property
    def scale_label(self) -> str:
        if self.kind != "sr":
            return "—"
        return f"×{self.scale} ({self.lr_size}→128)" if self.scale else "any→128"


def model_scale(model: nn.Module) -> int | None:
    """The model's fixed up-scaling factor, or ``None`` when it takes any LR size."""
    scale = model.scale if hasattr(model, "scale") else getattr(getattr(model, "cfg", None), "scale", None)
    return scale if isinstance(scale, int) else None


def model_info(name: str, /, **overrides) -> ModelInfo:
    """Build ``name`` (on the meta device when its builder allows, else on the CPU) and describe it."""
    try:
        with torch.device("meta"):
            model = build(name, **overrides)
    except (NotImplementedError, RuntimeError):  # a builder that reads tensor values (e.g. .tolist())
        model = build(name, **overrides)
    doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
    rng = getattr(model, "input_range", None)
    return ModelInfo(
        name=name,
        params=count_params(model),
        input_range=describe_range(rng) if rng else "?",
        scale=model_scale(model),
        kind=getattr(model, "kind", "sr"),
        expected_params=getattr(model, "expected_params", None),
        summary=doc[0] if doc else "",
    )


def catalog() -> list[ModelInfo]:
    """:func:`model_info` for every registered model, sorted by name."""
    _load()
    return [model_info(name) for name in MODELS.names()]


__all__ = ["ModelInfo", "catalog", "model_info", "model_scale"]
