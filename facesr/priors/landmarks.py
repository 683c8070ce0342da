"""68-point facial landmarks, offline, on dlib's shipped shape predictor.

Provider: dlib's HOG frontal-face detector (``dlib.get_frontal_face_detector``) picks the largest face,
then dlib's 68-point ``shape_predictor_68_face_landmarks.dat`` (iBUG 300-W markup, Kazemi & Sullivan
2014) places the points. Both ship offline: the detector inside ``dlib`` (``dlib-bin`` wheels), the
predictor inside the ``face-recognition-models`` package. That package imports ``pkg_resources`` at
import time, so it is never imported here: its ``models/`` folder is located with
``importlib.util.find_spec(...).submodule_search_locations``.

Where the predictor file is looked for, in order: an explicit ``predictor_path``; the facesr weights
directory (:mod:`facesr.weights`, by the upstream file name); the ``face_recognition_models`` package.

Output: ``(B, 68, 2)`` float32 ``(x, y)`` in the input image's pixel coordinates (dlib's convention:
integer coordinates are pixel centres, origin top-left); a row of NaN where no face was found.
Point order is the 300-W markup: 0-16 jaw, 17-26 brows, 27-35 nose (30 tip), 36-41 the image-left eye,
42-47 the image-right eye, 48-67 mouth (48 and 54 corners).

Fallback box. HOG misses a few aligned CelebA faces (measured here: ~48/50 at upsample 1 on the raw
178×218 images), although in an aligned set the face is always in the same place. With
``fallback="center"`` a miss falls back to :data:`ALIGNED_FACE_BOX`, the mean HOG box measured on
aligned-CelebA crops, expressed as fractions of the centred square of the image (for a 128×128 aligned
crop that square is the image; for a raw 178×218 aligned CelebA image it is the 178×178 centre crop).
Use it only for aligned data; for in-the-wild photos keep ``fallback=None`` so a miss stays a miss.
A 4-tuple of fractions (x1, y1, x2, y2) of the centred square may be given instead.

Thread-safety: the loaded predictor is shared by all instances of a process (it is read-only once
loaded); the HOG detector is built once per thread (~0.9 s) and shared by that thread's instances,
so instances may be used from any thread, each call using its own thread's detector.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facesr.errors import ConfigError, WeightsError
from facesr.weights import find_weight

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"

#: Mean dlib-HOG face box on aligned CelebA, as fractions (x1, y1, x2, y2) of the centred square of the
#: image. Measured on 1,000 aligned CelebA images of ``../shared/faces/celeba`` after the seed-000 crop
#: (centre 178 → 128), upsample 1: 971 found, box std 3-6 px at 128. ``tests/priors/test_landmarks.py``
#: checks that it still matches the data.
ALIGNED_FACE_BOX: tuple[float, float, float, float] = (0.2345, 0.3704, 0.7464, 0.8833)

# 5-point subsets of the 68-point markup (means over index groups): image-left eye, image-right eye,
# nose tip, mouth corner left, mouth corner right -- the order of CelebA's list_landmarks files.
FIVE_POINT_GROUPS: tuple[tuple[int, ...], ...] = (
    tuple(range(36, 42)),
    tuple(range(42, 48)),
    (30,),
    (48,),
    (54,),
)


def five_points(landmarks68: np.ndarray) -> np.ndarray:
    """(…, 68, 2) → (…, 5, 2): eye centres, nose tip, mouth corners (CelebA's 5-point order)."""
    pts = np.asarray(landmarks68, dtype=np.float64)
    if pts.shape[-2:] != (68, 2):
        raise ConfigError(f"expected (..., 68, 2) landmarks, got {pts.shape}")
    return np.stack([pts[..., list(g), :].mean(axis=-2) for g in FIVE_POINT_GROUPS], axis=-2)


def predictor_path(explicit: str | Path | None = None, weights_dir: str | Path | None = None) -> Path:
    """The 68-point predictor file, or a WeightsError naming where it was looked for."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsError(f"dlib predictor {str(p)!r} does not exist", hint=f"pass the path of {PREDICTOR_FILE}")
        return p
    found = find_weight(PREDICTOR_FILE, weights_dir)
    if found is not None:
        return found
    return packaged_model(PREDICTOR_FILE, elsewhere="the weights directory")


def packaged_model(filename: str, *, elsewhere: str | None = None) -> Path:
    """``filename`` from the ``models/`` folder of the face-recognition-models package, located with
    ``importlib.util.find_spec`` (importing the package needs ``pkg_resources``); a WeightsError naming the
    file when the package or the file is missing. ``elsewhere`` names another place the caller looked."""
    also = f", or put the file in {elsewhere}" if elsewhere else ""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsError(
            f"{filename!r} not found: the face-recognition-models package that ships it is not installed"
            + (f" and the file is not in {elsewhere}" if elsewhere else ""),
            hint=f"pip install face-recognition-models{also}",
        )
    folders = [Path(loc) / "models" for loc in spec.submodule_search_locations]
    for folder in folders:
        if (folder / filename).is_file():
            return folder / filename
    raise WeightsError(
        f"{filename!r} is missing from the face-recognition-models package ({', '.join(map(str, folders))})",
        hint=f"reinstall face-recognition-models{also}",
    )


def _import_dlib():
    try:
        import dlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise WeightsError(
            "dlib is not installed (needed for 68-point landmarks)",
            hint="pip install dlib-bin face-recognition-models",
        ) from e
    return dlib


def _fallback_box(shape: tuple[int, int], frac: Sequence[float]) -> tuple[int, int, int, int]:
    """Pixel box (l, t, r, b) from fractions of the centred square of an image of ``shape`` (h, w)."""
    h, w = shape
    side = min(h, w)
    top = int(round((h - side) / 2.0))
    left = int(round((w - side) / 2.0))
    x1, y1, x2, y2 = frac
    return (
        int(round(left + x1 * side)),
        int(round(top + y1 * side)),
        int(round(left + x2 * side)),
        int(round(top + y2 * side)),
    )


class DlibLandmarker:
    """Batch 68-point landmarker: HOG detector (largest face) + dlib's 68-point shape predictor.

    ``upsample``: how many times dlib doubles the image before HOG detection (dlib's faces are ≥ 80 px
    at 0, ≥ 40 px at 1). With ``progressive=True`` detection runs at 0, 1, … ``upsample`` doublings
    and stops at the first that finds a face: for in-the-wild photos large faces are found ~4× faster
    (Helen: 60/62 at 0 in ~24 ms/img, the last one at 1, vs ~110 ms/img always at 1). Off by default:
    on aligned 128×128 crops level 0 finds some faces with its 80-px minimum box, so boxes (and
    landmarks) would mix two detection scales. ``fallback``: None, ``"center"`` (:data:`ALIGNED_FACE_BOX`) or fractions
    (x1, y1, x2, y2) of the centred square, used when HOG finds no face (aligned data only).
    """

    name = "dlib68"

    def __init__(
        self,
        upsample: int = 1,
        fallback: str | Sequence[float] | None = "center",
        *,
        progressive: bool = False,
        predictor: str | Path | None = None,
        weights_dir: str | Path | None = None,
    ) -> None:
        if isinstance(fallback, str):
            if fallback != "center":
                raise ConfigError(f"fallback must be None, 'center' or 4 fractions, got {fallback!r}")
            self._fallback_frac: tuple[float, ...] | None = ALIGNED_FACE_BOX
        elif fallback is None:
            self._fallback_frac = None
        else:
            frac = tuple(float(v) for v in fallback)
            if len(frac) != 4 or not (frac[0] < frac[2] and frac[1] < frac[3]):
                raise ConfigError(f"fallback box must be (x1, y1, x2, y2) fractions with x1<x2, y1<y2, got {fallback!r}")
            self._fallback_frac = frac
        self.fallback = fallback if fallback is None or isinstance(fallback, str) else tuple(self._fallback_frac)
        self.upsample = int(upsample)
        self.progressive = bool(progressive)
        dlib = _import_dlib()
        self._dlib = dlib
        self._path = predictor_path(predictor, weights_dir)
        self._predictor = _load_predictor(str(self._path))
        #: how many faces of the last call came from the fallback box (for reports)
        self.last_fallbacks = 0

    def config(self) -> dict:
        """JSON-able settings that determine the output (for stage hashing)."""
        return {
            "name": self.name,
            "predictor": PREDICTOR_FILE,
            "detector": "dlib-hog-frontal",
            "upsample": self.upsample,
            "progressive": self.progressive,
            "fallback": list(self.fallback) if isinstance(self.fallback, tuple) else self.fallback,
        }

    def detect(self, image: np.ndarray) -> tuple[int, int, int, int] | None:
        """Largest HOG face box (l, t, r, b) in pixels, or None."""
        img = _as_rgb(image)
        rects = []
        for up in range(0 if self.progressive else self.upsample, self.upsample + 1):
            rects = _thread_detector()(img, up)
            if len(rects):
                break
        if len(rects) == 0:
            return None
        r = max(rects, key=lambda r: r.width() * r.height())
        return (r.left(), r.top(), r.right(), r.bottom())

    def points_in_box(self, image: np.ndarray, box: Sequence[float]) -> np.ndarray:
        """(68, 2) float32 points predicted inside a given box (l, t, r, b) in pixels."""
        img = _as_rgb(image)
        l, t, r, b = (int(round(float(v))) for v in box)
        shape = self._predictor(img, self._dlib.rectangle(l, t, r, b))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def __call__(
        self, images: Sequence[np.ndarray], boxes: Sequence[Sequence[float] | None] | None = None
    ) -> np.ndarray:
        """``images``: uint8 RGB H×W×3 arrays (sizes may differ). ``boxes``: optional known face boxes
        (l, t, r, b) per image, skipping detection where given. Returns (B, 68, 2) float32, NaN rows where
        no face was found."""
        out = np.full((len(images), 68, 2), np.nan, dtype=np.float32)
        if boxes is not None and len(boxes) != len(images):
            raise ConfigError(f"{len(boxes)} boxes for {len(images)} images")
        self.last_fallbacks = 0
        for i, image in enumerate(images):
            img = _as_rgb(image)
            box = boxes[i] if boxes is not None else None
            if box is None:
                box = self.detect(img)
            if box is None and self._fallback_frac is not None:
                box = _fallback_box(img.shape[:2], self._fallback_frac)
                self.last_fallbacks += 1
            if box is not None:
                out[i] = self.points_in_box(img, box)
        return out


_PREDICTORS: dict[str, object] = {}
_PREDICTORS_LOCK = threading.Lock()


def _load_predictor(path: str):
    """One loaded predictor per file and process (loading takes ~1-2 s; prediction is read-only)."""
    with _PREDICTORS_LOCK:
        pred = _PREDICTORS.get(path)
        if pred is None:
            pred = _PREDICTORS[path] = _import_dlib().shape_predictor(path)
        return pred


_THREAD = threading.local()


def _thread_detector():
    """dlib's HOG face detector, one per thread (building one takes ~0.9 s; sharing one object across
    threads is not documented as safe)."""
    det = getattr(_THREAD, "detector", None)
    if det is None:
        det = _THREAD.detector = _import_dlib().get_frontal_face_detector()
    return det


def _as_rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ConfigError(f"expected a uint8 H×W×3 RGB image, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img)


__all__ = ["ALIGNED_FACE_BOX", "DlibLandmarker", "PREDICTOR_FILE", "five_points", "packaged_model", "predictor_path"]
