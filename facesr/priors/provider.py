"""What the prior providers share: input checks, weight-file digests, the default device, and a network built on
first use."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from facesr.errors import ConfigError

__all__ = ["LazyNetwork", "check_images", "check_landmarks", "default_device", "file_digest"]


def check_images(images: np.ndarray) -> np.ndarray:
    """A ``(B, H, W, 3)`` uint8 RGB batch, or a ConfigError naming what came instead."""
    arr = np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3 or arr.dtype != np.uint8:
        raise ConfigError(f"images must be (B, H, W, 3) uint8 RGB; got {arr.shape} {arr.dtype}")
    return arr


def check_landmarks(landmarks, b: int, *, who: str) -> np.ndarray:
    """``(b, 68, 2)`` float32 landmarks; ``who`` names the provider that needs them."""
    if landmarks is None:
        raise ConfigError(f"the {who!r} provider needs 68-point landmarks", hint="run the landmarks stage first")
    lm = np.asarray(landmarks, np.float32)
    if lm.shape != (b, 68, 2):
        raise ConfigError(f"landmarks must be ({b}, 68, 2); got {lm.shape}")
    return lm


def file_digest(path: Path) -> str:
    """First 16 hex digits of the file's SHA-256: stored in provenance so a swapped weight file shows."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def default_device(device: str | None = None) -> str:
    """``device`` when given, else ``"cuda:0"`` when CUDA is available, else ``"cpu"`` (imports torch)."""
    if device:
        return device
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"


class LazyNetwork:
    """Mixin: ``model`` is built by ``_build()`` on first use and is never pickled when it can be rebuilt
    (from a weight file or a random seed), so providers travel cheaply to dask workers.

    ``needs_weights``: whether the provider reads files from the weights directory (the pipeline then hands it
    ``weights_dir``). The random-weight variants (``yoloworld-random``, ``bisenet-random``) set it False and
    ``seed`` to their seed.
    """

    needs_weights = True
    seed: int | None = None
    _model = None
    _weights: Path | None = None
    _digest: str | None = None

    def _require_weights(self, filename: str, *, what: str, alternative: str, weights_dir) -> None:
        """Find ``filename`` in the weights directory (or fail with one line naming the alternative) and
        fingerprint it for provenance."""
        from facesr.weights import require_weight

        self._weights = require_weight(filename, what=what, alternative=alternative, explicit_dir=weights_dir)
        self._digest = file_digest(self._weights)

    def _weights_config(self, filename: str) -> dict:
        """The provenance entries naming the weights: the file and its digest, or the random seed."""
        return {"weights": f"random:{self.seed}" if self.seed is not None else filename,
                "weights_sha256_16": self._digest}

    def _build(self):  # pragma: no cover - every provider defines it
        raise NotImplementedError

    @property
    def model(self):
        """The network (built on first use)."""
        if self._model is None:
            self._model = self._build()
        return self._model

    def __getstate__(self):
        state = self.__dict__.copy()
        if self._weights is not None or self.seed is not None:
            state["_model"] = None  # rebuilt lazily where it is unpickled
        return state
