"""Super-resolve every face of a real photo: find, align to the training template, SR, paste back feathered.

The chain, per photo (uint8 RGB ``H×W×3``):

1. **Find** every face (:class:`facesr.priors.facefinder.FaceFinder`, default ``"hog+cnn"`` exhaustive: HOG,
   plus the CNN's faces HOG did not find — group photos, turned faces, faces down to ~16 px), largest first,
   at most ``max_faces`` (0 = all), none smaller than ``min_face`` px; then the 68 points of each face on its
   box (dlib's predictor, :class:`facesr.priors.landmarks.DlibLandmarker`).
2. **Align** each face to the model's training template: the similarity transform of
   :func:`facesr.data.crop.crop_transform` (``"template"``: the 5 points onto :data:`~facesr.data.crop.TEMPLATE_128`,
   the mean aligned-CelebA framing every facesr crop method produces), warped to the 128×128 crop
   (antialiased when shrinking, border replicated).
3. **Degrade** the crop with the run's own LR spec (what the model was trained on) and **super-resolve** all
   faces of the photo in one batch.
4. **Paste back** into the photo upscaled (bicubic) by ``scale``: each SR face is warped back with the inverse
   transform and blended through :func:`feather_mask` (1 inside, a Gaussian ramp over the outer ~12 % of the
   crop, 0 outside), smallest face last so it stays on top where faces overlap. ``scale="auto"``: the crop's
   pixels per photo pixel of the smallest face, rounded, in [1, 8], and no more than keeps the upscaled photo
   within 4,096 px on its longer side (a 20-px face in a 100-px frame gets ×6; a face already over 128 px, ×1).

No face found is a :class:`~facesr.errors.DatasetError` (one line). Crops of at most :data:`TINY_MAX` px are
not photos: :meth:`facesr.train.inference.Predictor.tiny` takes them as LR faces.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from facesr.errors import DatasetError

__all__ = ["MAX_SIDE", "PhotoFace", "PhotoResult", "PhotoSR", "feather_mask", "paste_face"]

MAX_SIDE = 4096  # px: the automatic scale never makes the upscaled photo longer than this


@dataclass(frozen=True)
class PhotoFace:
    """One face of a photo: where it was found and what the model made of it."""

    box: tuple[float, float, float, float]  # (l, t, r, b) photo pixels, HOG-calibrated
    source: str  # "hog" | "cnn": which detector found it
    landmarks: np.ndarray  # (68, 2) float32 photo pixels
    matrix: np.ndarray  # 2×3 float64: photo pixels → 128 crop pixels
    lr: np.ndarray  # the LR face the model saw, uint8 (s, s, 3)
    sr: np.ndarray  # the SR face, uint8 (128, 128, 3)

    @property
    def face_px(self) -> float:
        """Side of the aligned crop in photo pixels (above the LR side, detail is thrown away)."""
        return float(128.0 / np.sqrt(abs(np.linalg.det(self.matrix[:, :2]))))


@dataclass(frozen=True)
class PhotoResult:
    image: np.ndarray  # the photo upscaled by `scale`, every SR face pasted in
    scale: int
    faces: tuple[PhotoFace, ...] = field(default_factory=tuple)

    # the largest face, for callers that want one (the older single-face API)
    @property
    def face_sr(self) -> np.ndarray:
        return self.faces[0].sr

    @property
    def face_lr(self) -> np.ndarray:
        return self.faces[0].lr

    @property
    def matrix(self) -> np.ndarray:
        return self.faces[0].matrix

    @property
    def face_px(self) -> float:
        return self.faces[0].face_px


def feather_mask(size: int = 128, margin: float = 0.12) -> np.ndarray:
    """float32 ``size×size`` blending mask: 1 in the middle, a smooth ramp to 0 over the outer ``margin``."""
    import cv2

    k = max(1, int(round(size * margin)))
    mask = np.zeros((size, size), np.float32)
    mask[k:-k, k:-k] = 1.0
    sigma = k / 2.0
    ks = 2 * int(3 * sigma) + 1
    return cv2.GaussianBlur(mask, (ks, ks), sigma, borderType=cv2.BORDER_CONSTANT)


def paste_face(big: np.ndarray, sr: np.ndarray, matrix: np.ndarray, scale: int, mask: np.ndarray) -> np.ndarray:
    """``big`` (the photo upscaled by ``scale``, float32) with the crop ``sr`` blended in through ``mask``;
    ``matrix`` maps original photo pixels to crop pixels (pixel centres: big = (x + 0.5)·scale − 0.5)."""
    import cv2

    ms = np.asarray(matrix, np.float64).copy()
    ms[:, :2] /= scale  # big-photo pixels → crop pixels
    ms[:, 2] += matrix[:, :2].sum(axis=1) * (0.5 / scale - 0.5)
    h, w = big.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    back = cv2.warpAffine(sr, ms, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    a = cv2.warpAffine(mask, ms, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    return a * back + (1.0 - a) * big


def auto_scale(face_px: list[float], shape, hr_size: int = 128) -> int:
    """Crop pixels per photo pixel of the smallest face, rounded, in [1, 8], within :data:`MAX_SIDE`."""
    s = int(min(8, max(1, round(hr_size / min(face_px)))))
    return max(1, min(s, MAX_SIDE // max(shape[:2])))


class PhotoSR:
    """Photo super-resolution with a :class:`facesr.train.inference.Predictor` (build once: loading dlib's
    files takes ~1-2 s). ``detector``: ``hog`` | ``cnn`` | ``hog+cnn``; ``min_face``/``max_faces`` as in the
    module docstring."""

    def __init__(self, predictor, *, detector: str = "hog+cnn", min_face: float = 0.0, max_faces: int = 0,
                 weights_dir=None) -> None:
        from facesr.priors.facefinder import FaceFinder
        from facesr.priors.landmarks import DlibLandmarker

        self.pred = predictor
        self.finder = FaceFinder(detector, exhaustive=True, min_face=min_face, weights_dir=weights_dir)
        self.landmarker = DlibLandmarker(fallback=None, weights_dir=weights_dir)
        self.max_faces = int(max_faces)
        self.template = "template"  # aligned-CelebA framing: what every facesr crop method trains on

    def find(self, img: np.ndarray) -> list[tuple[tuple, str, np.ndarray]]:
        """``[(box, source, landmarks (68, 2))]``, largest face first, at most ``max_faces``."""
        faces = self.finder.find(img)
        if self.max_faces:
            faces = faces[: self.max_faces]
        return [(f.box, f.source, self.landmarker.points_in_box(img, f.box)) for f in faces]

    def __call__(self, img: np.ndarray, *, scale: int | str = "auto", faces=None) -> PhotoResult:
        """Every face of ``img`` super-resolved and pasted back (module docstring). ``faces``: known
        ``[(box, source, landmarks)]`` instead of detecting them."""
        import cv2

        from facesr.data.crop import crop_transform, warp
        from facesr.data.degrade import degrade

        img = _rgb(img)
        found = self.find(img) if faces is None else list(faces)
        if not found:
            raise DatasetError("no face found", hint="crop the face yourself and pass the crop (≤ 32 px is taken as LR)"
                               + ("; or lower --min-face" if self.finder.min_face else ""))
        hr = self.pred.hr_size
        mats = [crop_transform(lm, hr, self.template) for _, _, lm in found]
        lrs = np.stack([degrade(warp(img, m, hr, "replicate"), self.pred.lr_spec) for m in mats])
        srs = self.pred.predict_uint8(lrs)
        px = [hr / float(np.sqrt(abs(np.linalg.det(m[:, :2])))) for m in mats]
        s = auto_scale(px, img.shape, hr) if scale == "auto" else int(scale)
        h, w = img.shape[:2]
        big = (img if s == 1 else cv2.resize(img, (w * s, h * s), interpolation=cv2.INTER_CUBIC)).astype(np.float32)
        mask = feather_mask(hr)
        for k in np.argsort(px)[::-1]:  # largest first, so the smaller faces end on top
            big = paste_face(big, srs[k], mats[k], s, mask)
        out = big.round().clip(0, 255).astype(np.uint8)
        faces_out = tuple(PhotoFace(tuple(float(v) for v in box), src, np.asarray(lm, np.float32), m, lr, sr)
                          for (box, src, lm), m, lr, sr in zip(found, mats, lrs, srs))
        return PhotoResult(out, s, faces_out)


def _rgb(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 RGB image, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)
