"""Downstream face metrics: 68-point landmark distance and identity similarity (W-Net §4.3, Table 2).

Landmark distance (``aed[68]``): 68 points are detected on SR and on HR with the same landmarker
(default :class:`facesr.priors.landmarks.DlibLandmarker`; W-Net used OpenFace, whose 68-point scheme is
the same iBUG layout) and the per-image value is the mean over the 68 points of the Euclidean distance
``‖p_sr − p_hr‖₂``. W-Net states no normalisation beyond working on the 128×128 HR frame, so distances
are expressed in pixels of a 128-pixel-wide image: coordinates are scaled by ``128 / W`` (a no-op at
128×128) so that numbers stay comparable with Table 2 at any evaluation size. An image where either side
has no face (NaN landmarks) gets NaN and is left out of the mean; :func:`nan_summary` counts them.

Identity (``identity[dlib]``): cosine similarity of 128-d face descriptors from dlib's shipped ResNet
(``dlib_face_recognition_resnet_model_v1.dat``, located inside the ``face_recognition_models`` package
with ``importlib.util.find_spec`` — never imported, it needs ``pkg_resources``). SR and HR are both
aligned with the **HR** landmarks (the SR is pixel-aligned with its HR, so alignment noise on a poor SR
does not enter the score); where the HR has no landmarks the whole image is resized to dlib's 150×150
chip. W-Net used AdaFace; ``model="arcface"`` takes a TorchScript ArcFace backbone named
``arcface_r100.pt`` (112×112 RGB in [-1, 1] → embedding) from the weights directory — missing, it is a
WeightsMissingError, raised only when that model is asked for.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

DLIB_RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
ARCFACE_FILE = "arcface_r100.pt"
REFERENCE_WIDTH = 128


# -- landmarks -------------------------------------------------------------------------------------------
def landmark_distance(lm_sr: np.ndarray, lm_hr: np.ndarray, width: int = REFERENCE_WIDTH) -> np.ndarray:
    """Per-image mean point-to-point distance of ``(N, 68, 2)`` landmarks, in 128-px-frame pixels."""
    lm_sr, lm_hr = np.asarray(lm_sr, dtype=np.float64), np.asarray(lm_hr, dtype=np.float64)
    if lm_sr.shape != lm_hr.shape or lm_sr.ndim != 3 or lm_sr.shape[-1] != 2:
        raise ValueError(f"landmarks must be equal (N, K, 2) arrays, got {lm_sr.shape} and {lm_hr.shape}")
    d = np.linalg.norm(lm_sr - lm_hr, axis=-1) * (REFERENCE_WIDTH / width)
    return d.mean(axis=-1)  # NaN propagates from any missing face


def landmark_aed(sr: np.ndarray, hr: np.ndarray, landmarker=None, *, lm_hr: np.ndarray | None = None) -> np.ndarray:
    """``aed[68]`` per image of uint8 RGB ``(N, H, W, 3)`` batches; ``landmarker(images) -> (N, 68, 2)``."""
    landmarker = landmarker or _default_landmarker()
    lm_sr = np.asarray(landmarker(sr), dtype=np.float64)
    lm_hr = np.asarray(landmarker(hr) if lm_hr is None else lm_hr, dtype=np.float64)
    return landmark_distance(lm_sr, lm_hr, width=sr.shape[-2])


def _default_landmarker():
    from facesr.priors.landmarks import DlibLandmarker

    return DlibLandmarker()


# -- identity --------------------------------------------------------------------------------------------
def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``(N, D)`` arrays."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def dlib_model_file(filename: str = DLIB_RECOGNITION_FILE) -> Path:
    """Path of a model file shipped in ``face_recognition_models/models`` (the package is not imported)."""
    from facesr.priors.landmarks import packaged_model

    return packaged_model(filename)


class DlibIdentity:
    """128-d dlib face descriptors of uint8 RGB images aligned by given 68-point landmarks."""

    name = "dlib"

    def __init__(self) -> None:
        import dlib

        self._dlib = dlib
        self._model = dlib.face_recognition_model_v1(str(dlib_model_file()))

    def embed(self, images: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        dlib = self._dlib
        out = np.empty((len(images), 128))
        for i, (img, lm) in enumerate(zip(images, landmarks)):
            img = np.ascontiguousarray(img)
            if np.isfinite(lm).all():
                h, w = img.shape[:2]
                pts = [dlib.point(int(round(x)), int(round(y))) for x, y in lm]
                shape = dlib.full_object_detection(dlib.rectangle(0, 0, w - 1, h - 1), pts)
                out[i] = self._model.compute_face_descriptor(img, shape)
            else:
                import cv2

                chip = cv2.resize(img, (150, 150), interpolation=cv2.INTER_AREA)
                out[i] = self._model.compute_face_descriptor(np.ascontiguousarray(chip))
        return out


class ArcFaceIdentity:
    """A TorchScript ArcFace backbone from the weights directory (112×112 RGB in [-1, 1])."""

    name = "arcface"

    def __init__(self, weights_dir: str | os.PathLike | None = None, device: str = "cpu") -> None:
        import torch

        from facesr.weights import require_weight

        path = require_weight(ARCFACE_FILE, what="ArcFace (TorchScript)", explicit_dir=weights_dir,
                              alternative="identity model 'dlib' (ships with face-recognition-models)")
        self.device = device
        self._model = torch.jit.load(str(path), map_location=device).eval()

    def embed(self, images: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        import torch
        import torch.nn.functional as F

        x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
        x = F.interpolate(x, size=(112, 112), mode="bilinear", align_corners=False, antialias=True)
        with torch.no_grad():
            return self._model(x.to(self.device)).cpu().numpy().astype(np.float64)


IDENTITY_MODELS = {"dlib": DlibIdentity, "arcface": ArcFaceIdentity}


def identity_similarity(sr: np.ndarray, hr: np.ndarray, *, model="dlib", lm_hr: np.ndarray | None = None,
                        landmarker=None) -> np.ndarray:
    """Per-image ``identity[<model>]`` cosine similarity of uint8 RGB ``(N, H, W, 3)`` batches.

    ``model`` is a name in :data:`IDENTITY_MODELS` or an object with ``embed(images, landmarks)``;
    ``lm_hr`` are the HR landmarks used to align both sides (detected with ``landmarker`` if None).
    """
    if isinstance(model, str):
        if model not in IDENTITY_MODELS:
            from facesr.errors import ConfigError

            raise ConfigError(f"unknown identity model {model!r}", hint=f"one of {', '.join(IDENTITY_MODELS)}")
        model = IDENTITY_MODELS[model]()
    if lm_hr is None:
        lm_hr = np.asarray((landmarker or _default_landmarker())(hr), dtype=np.float64)
    return cosine_similarity(model.embed(sr, lm_hr), model.embed(hr, lm_hr))


def nan_summary(values: np.ndarray) -> tuple[float, int]:
    """(mean over the finite values, number of NaN images)."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    return (float(values[ok].mean()) if ok.any() else float("nan")), int((~ok).sum())


__all__ = [
    "ArcFaceIdentity",
    "DlibIdentity",
    "IDENTITY_MODELS",
    "cosine_similarity",
    "dlib_model_file",
    "identity_similarity",
    "landmark_aed",
    "landmark_distance",
    "nan_summary",
]
