"""FSR networks, one file per paper, behind one registry.

Contract: ``model(lr)`` takes an LR batch ``(B, 3, h, w)`` in ``[0, 1]`` and returns SR ``(B, 3, 128, 128)``
in ``[0, 1]`` (unclamped); a model whose paper works in another range converts at its boundary with
:mod:`facesr.models.ranges`. Models with side outputs (W-Net's parsing map) return a ``dict`` with key
``"sr"`` plus named extras; :func:`sr_of` takes the SR tensor out of either form.
"""

from __future__ import annotations

import importlib

from facesr.registry import Registry

MODELS: Registry = Registry("model")

# Imported explicitly (no import-time scanning); each module registers its builders with @MODELS.register.
_MODULES = ("baselines", "unet_light", "sparnet", "ufvnet", "mrrnet", "gvtnet", "wnet")
_loaded = False


def _load() -> None:
    global _loaded
    if not _loaded:
        for name in _MODULES:
            importlib.import_module(f"facesr.models.{name}")
        _loaded = True


def build(name: str, /, **overrides):
    """Build a registered model by name; keyword overrides go to its builder."""
    _load()
    return MODELS.build(name, **overrides)


def list_models() -> list[str]:
    _load()
    return MODELS.names()


def sr_of(output):
    """The SR tensor of a model output (a tensor, or a dict with key ``"sr"``)."""
    return output["sr"] if isinstance(output, dict) else output


__all__ = ["MODELS", "build", "list_models", "sr_of"]
