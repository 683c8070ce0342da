"""facesr: facial priors for face super-resolution, built once offline into zarr stores.

The public Python API is this handful of names (zarr-style ``__all__``); each is imported on first use, so
``import facesr`` loads neither torch nor zarr:

=========================  ==========================================================================
``facesr.load_run(RUN)``   a trained run folder → :class:`~facesr.train.inference.Predictor`
                           (``.tiny(uint8 16×16×3)`` → uint8 128×128×3; ``.predict(lr in [0, 1])``;
                           ``.model``: the network, ``(B, 3, h, w)`` in [0, 1] → SR in [0, 1], unclamped —
                           the graph ``facesr export`` writes)
``facesr.load(PATH)``      a ``.safetensors`` export → the network, rebuilt from the file alone
``facesr.open_store(URL)`` a store path or URL → :class:`~facesr.data.store.FaceStore` (read-only)
``facesr.models``          the model registry: ``facesr.models.build(name, **args)``, ``list_models()``
=========================  ==========================================================================
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["__version__", "load", "load_run", "models", "open_store"]

if TYPE_CHECKING:  # pragma: no cover
    from facesr import models
    from facesr.data.store import FaceStore
    from facesr.train.inference import Predictor


def load_run(run, which: str = "best", device: str = "auto", *, self_ensemble: bool = False) -> Predictor:
    """A :class:`~facesr.train.inference.Predictor` for a run folder (``checkpoints/best``, else ``last``; EMA
    weights when the run has them) or a checkpoint folder. See :func:`facesr.train.inference.load_run`."""
    from facesr.train.inference import load_run as _load_run

    return _load_run(run, which=which, device=device, self_ensemble=self_ensemble)


def load(path, *, device: str = "cpu"):
    """The network of a facesr ``.safetensors`` export, rebuilt from its metadata (eval mode). See
    :func:`facesr.export.load`."""
    from facesr.export import load as _load

    return _load(path, device=device)


def open_store(url, *, snapshot: str | None = "latest", **storage_options: Any) -> FaceStore:
    """Open a store read-only: a path or any zarr/fsspec URL; ``snapshot="latest"`` reads the newest committed
    snapshot (``None``: the live store). See :meth:`facesr.data.store.FaceStore.open`."""
    from facesr.data.store import FaceStore

    return FaceStore.open(url, snapshot=snapshot, storage_options=storage_options or None)


def __getattr__(name: str):
    if name == "models":
        return importlib.import_module("facesr.models")
    raise AttributeError(f"module 'facesr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
