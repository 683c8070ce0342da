"""Face crops: the only place that aligns and crops. uint8 RGB H×W×3 in, uint8 RGB size×size×3 out.

Every crop is also a 2×3 affine matrix ``M`` mapping source pixel coordinates to crop pixel
coordinates (``transform_points``), so landmarks and boxes can follow the pixels. Coordinates are
``(x, y)`` with integer values at pixel centres (OpenCV's and dlib's convention).

Methods (:data:`CROPS`, used through :func:`crop_record`):

``aligned`` — the seed-000 released preprocessing of *aligned* CelebA (178×218 JPEGs):
    ``torchvision.transforms.CenterCrop(178)`` then ``Resize(128)`` on a PIL image. Reproduced
    bit-for-bit with Pillow directly: centre crop with torchvision's offsets
    (``int(round((H - 178) / 2.0))``, zero padding where the image is smaller), then
    ``PIL.Image.resize((128, 128), BILINEAR)`` — which is what torchvision's PIL path calls (Pillow's
    bilinear filter widens its support when shrinking, i.e. it is antialiased).

``landmarks`` — for in-the-wild photos, from 68 landmarks (dlib's, or the dataset's):
    * ``mode="template"`` (default): a similarity transform (rotation, uniform scale, translation) that
      takes the 5 points derived from the 68 (eye centres, nose tip, mouth corners; or 5 given points)
      onto :data:`TEMPLATE_128`, fitted with ``cv2.estimateAffinePartial2D`` as a least-squares fit over
      all five points (RANSAC with an unbounded threshold, so every point is an inlier, then its
      Levenberg-Marquardt refinement). The template is the mean of dlib's landmarks on 971 aligned
      CelebA crops (seed-000 crop of ``../shared/faces/celeba``), made left-right symmetric, so a
      template crop of a wild photo has aligned-CelebA framing.
    * ``mode="dic-box"``: no rotation; the bounding box of the landmarks, made square on its longer
      side, grown by ``expand`` (0.3 → 30 % larger side), centred on the box centre, resized to
      ``size``. A box-from-landmarks crop in the spirit of DIC's CelebA/Helen preprocessing (the exact
      DIC script is not public; its released HR files are used as-is through the ``pairs`` source).
    Pixels outside the photo are black (``border="constant"``) or replicated (``"replicate"``).
    Shrinking is antialiased: where the transform scales by s < 1 the photo is first reduced with
    ``cv2.INTER_AREA`` so that the remaining warp (``cv2.warpAffine``, bilinear) scales by about 1.

``resize`` — already-aligned square-ish sets (FFHQ, pre-cropped HR): centred square crop (no
    padding), then Pillow BICUBIC (antialiased) to ``size``; identity when already ``size``×``size``.
"""

from __future__ import annotations

import difflib
import inspect
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

from facesr.errors import ConfigError, DatasetError
from facesr.registry import Registry

#: 5-point template (x, y) on the 128×128 aligned-CelebA crop: image-left eye centre, image-right eye
#: centre, nose tip, left and right mouth corners. Means of dlib's points on 971 crops
#: (eyes (49.75, 66.53) / (77.29, 66.50), nose (63.26, 82.55), mouth (51.07, 95.38) / (76.00, 95.40)),
#: symmetrised about x = 63.5, the crop's centre.
TEMPLATE_128 = np.array(
    [
        [49.73, 66.51],
        [77.27, 66.51],
        [63.50, 82.55],
        [51.04, 95.39],
        [75.96, 95.39],
    ],
    dtype=np.float64,
)

ALIGNED_CROP = 178  # CelebA aligned: centre crop side before resizing (seed-000 released code)

CROPS: Registry[Callable[..., tuple[np.ndarray, np.ndarray]]] = Registry("crop method")

_BORDERS = {"constant": cv2.BORDER_CONSTANT, "replicate": cv2.BORDER_REPLICATE}


# --------------------------------------------------------------------------------------------- maths
def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (…, 2) points (x, y) through a 2×3 affine matrix; NaN stays NaN. Returns float64."""
    pts = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def _compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2×3 matrix of ``a ∘ b`` (apply b first)."""
    a3 = np.vstack([a, [0.0, 0.0, 1.0]])
    b3 = np.vstack([b, [0.0, 0.0, 1.0]])
    return (a3 @ b3)[:2]


def _scale_matrix(sx: float, sy: float, ox: float = 0.0, oy: float = 0.0) -> np.ndarray:
    """Pixel-centre convention resize of a region starting at (ox, oy): x' = (x - ox + 0.5)·sx - 0.5."""
    return np.array([[sx, 0.0, (0.5 - ox) * sx - 0.5], [0.0, sy, (0.5 - oy) * sy - 0.5]])


def template(size: int = 128) -> np.ndarray:
    """:data:`TEMPLATE_128` scaled to a ``size``×``size`` crop (pixel-centre convention)."""
    return (TEMPLATE_128 + 0.5) * (size / 128.0) - 0.5


def _check_points(landmarks: np.ndarray | None) -> np.ndarray:
    if landmarks is None:
        raise DatasetError("no face found", hint="no landmarks were given or detected for this image")
    pts = np.asarray(landmarks, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or pts.shape[0] not in (5, 68):
        raise ValueError(f"landmarks must be (68, 2) or (5, 2), got {pts.shape}")
    if not np.isfinite(pts).all():
        raise DatasetError("no face found", hint="the landmarker returned no points for this image")
    return pts


def crop_transform(
    landmarks: np.ndarray, size: int = 128, mode: str = "template", expand: float = 0.3
) -> np.ndarray:
    """2×3 float64 matrix taking source pixel coordinates into the ``size``×``size`` landmark crop."""
    pts = _check_points(landmarks)
    if mode == "template":
        if len(pts) == 68:
            from facesr.priors.landmarks import five_points

            pts = five_points(pts)
        src = pts.astype(np.float32)
        dst = template(size).astype(np.float32)
        m, _ = cv2.estimateAffinePartial2D(
            src, dst, method=cv2.RANSAC, ransacReprojThreshold=1e9, maxIters=10, refineIters=100
        )
        if m is None or not np.isfinite(m).all() or abs(np.linalg.det(m[:, :2])) < 1e-12:
            raise DatasetError("no face found", hint="degenerate landmarks: no similarity transform fits them")
        return m.astype(np.float64)
    if mode == "dic-box":
        x1, y1 = pts.min(axis=0)
        x2, y2 = pts.max(axis=0)
        side = max(x2 - x1, y2 - y1) * (1.0 + float(expand))
        if not side > 0:
            raise DatasetError("no face found", hint="degenerate landmarks: zero-size box")
        cx, cy = (x1 + x2) / 2.0, (y1 + y2) / 2.0
        s = size / side
        # continuous box [cx - side/2, cx + side/2] → [-0.5, size - 0.5]
        return np.array([[s, 0.0, -(cx - side / 2.0) * s - 0.5], [0.0, s, -(cy - side / 2.0) * s - 0.5]])
    raise ConfigError(f"unknown landmark crop mode {mode!r}", hint="use 'template' or 'dic-box'")


def similarity_lstsq(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Closed-form least-squares similarity (x' = a x − b y + tx, y' = b x + a y + ty) as a 2×3 matrix.
    An independent check of :func:`crop_transform`'s OpenCV fit."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    n = len(src)
    a = np.zeros((2 * n, 4))
    a[0::2] = np.c_[src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)]
    a[1::2] = np.c_[src[:, 1], src[:, 0], np.zeros(n), np.ones(n)]
    p, *_ = np.linalg.lstsq(a, dst.reshape(-1), rcond=None)
    return np.array([[p[0], -p[1], p[2]], [p[1], p[0], p[3]]])


# -------------------------------------------------------------------------------------------- pixels
def warp(img: np.ndarray, matrix: np.ndarray, size: int, border: str = "constant") -> np.ndarray:
    """``size``×``size`` crop of ``img`` under the 2×3 ``matrix`` (source → crop), antialiased when
    shrinking (see module docstring)."""
    img = _rgb(img)
    if border not in _BORDERS:
        raise ConfigError(f"unknown border {border!r}", hint=f"use one of {sorted(_BORDERS)}")
    m = np.asarray(matrix, np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))
    if scale < 1.0:
        h, w = img.shape[:2]
        nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        if (nh, nw) != (h, w):
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
            pre = _scale_matrix(nw / w, nh / h)
            m = _compose(m, np.linalg.inv(np.vstack([pre, [0, 0, 1]]))[:2])
    return cv2.warpAffine(
        img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=_BORDERS[border], borderValue=(0, 0, 0)
    )


def _center_crop(n: int, crop: int) -> tuple[int, int, int]:
    """torchvision ``CenterCrop`` along one axis of length ``n``: (zero padding before, after, crop start in
    the padded axis). Where the image is smaller it is padded, the start getting the smaller half."""
    before, after = ((crop - n) // 2, (crop - n + 1) // 2) if crop > n else (0, 0)
    return before, after, int(round((n + before + after - crop) / 2.0))


def aligned_transform(shape: Sequence[int], size: int = 128, crop: int = ALIGNED_CROP) -> np.ndarray:
    """2×3 matrix of :func:`aligned_crop` for an image of ``shape`` (H, W, …)."""
    pt, _, top = _center_crop(int(shape[0]), crop)
    pl, _, left = _center_crop(int(shape[1]), crop)
    return _scale_matrix(size / crop, size / crop, left - pl, top - pt)


def aligned_crop(img: np.ndarray, size: int = 128, crop: int = ALIGNED_CROP) -> np.ndarray:
    """Seed-000 aligned-CelebA crop: torchvision ``CenterCrop(crop)`` then ``Resize(size)`` on a PIL image,
    bit-for-bit (see module docstring)."""
    img = _rgb(img)
    pt, pb, top = _center_crop(img.shape[0], crop)
    pl, pr, left = _center_crop(img.shape[1], crop)
    if pt or pb or pl or pr:
        img = np.pad(img, ((pt, pb), (pl, pr), (0, 0)))
    pil = Image.fromarray(img[top : top + crop, left : left + crop])
    if crop == size:
        return np.asarray(pil).copy()
    return np.asarray(pil.resize((size, size), Image.BILINEAR))


def landmark_crop(
    img: np.ndarray,
    landmarks68: np.ndarray,
    size: int = 128,
    mode: str = "template",
    expand: float = 0.3,
    border: str = "constant",
) -> np.ndarray:
    """Crop from landmarks ((68, 2) or (5, 2), source pixels); see module docstring for the modes."""
    return warp(img, crop_transform(landmarks68, size, mode, expand), size, border)


def _square(shape: Sequence[int]) -> tuple[int, int, int]:
    """(side, top, left) of the centred square crop of an image of ``shape`` (H, W, …)."""
    h, w = int(shape[0]), int(shape[1])
    side = min(h, w)
    return side, (h - side) // 2, (w - side) // 2


def resize_transform(shape: Sequence[int], size: int = 128) -> np.ndarray:
    side, top, left = _square(shape)
    return _scale_matrix(size / side, size / side, left, top)


def resize_crop(img: np.ndarray, size: int = 128) -> np.ndarray:
    """Centred square crop then Pillow BICUBIC to ``size`` (identity when already size×size)."""
    img = _rgb(img)
    side, top, left = _square(img.shape)
    sq = img[top : top + side, left : left + side]
    if side == size:
        return np.ascontiguousarray(sq)
    return np.asarray(Image.fromarray(sq).resize((size, size), Image.BICUBIC))


# -------------------------------------------------------------------------------------- registry
@CROPS.register("aligned")
def _crop_aligned(img, *, landmarks=None, size=128, crop=ALIGNED_CROP):
    return aligned_crop(img, size, crop), aligned_transform(np.shape(img), size, crop)


_local = threading.local()


def _default_landmarker():
    lm = getattr(_local, "landmarker", None)
    if lm is None:
        from facesr.priors.landmarks import DlibLandmarker

        lm = _local.landmarker = DlibLandmarker(upsample=1, fallback=None, progressive=True)
    return lm


def find_landmarks(img: np.ndarray, landmarker, box: Sequence[float] | None = None) -> np.ndarray:
    """(68, 2) points of the face in ``img`` by ``landmarker``, retried inside the known face ``box``
    (x1, y1, x2, y2) where HOG finds none; NaN when there is still none."""
    img = _rgb(img)
    found = landmarker([img])[0]
    if not np.isfinite(found).all() and box is not None:
        found = landmarker([img], boxes=[box])[0]
    return found


@CROPS.register("landmarks")
def _crop_landmarks(
    img, *, landmarks=None, size=128, mode="template", expand=0.3, border="constant", landmarker=None, box=None
):
    if landmarks is None:
        landmarks = find_landmarks(img, landmarker or _default_landmarker(), box)
    m = crop_transform(landmarks, size, mode, expand)
    return warp(img, m, size, border), m


@CROPS.register("resize")
def _crop_resize(img, *, landmarks=None, size=128):
    return resize_crop(img, size), resize_transform(np.shape(img), size)


def crop_record(
    img: np.ndarray, method: str, landmarks: np.ndarray | None = None, size: int = 128, **options
) -> tuple[np.ndarray, np.ndarray]:
    """Crop one image by a :data:`CROPS` method → ``(crop uint8 size×size×3, 2×3 matrix source→crop)``.

    ``landmarks``: the dataset's (68, 2) or (5, 2) points in source pixels, if any; for ``landmarks``
    without them, dlib detects them (by default ``DlibLandmarker(upsample=1, fallback=None,
    progressive=True)``, one per thread; ``landmarker=`` to pass your own; ``box=`` a known face box
    used when HOG finds none). A face that cannot be found raises ``DatasetError("no face found")`` so the
    caller can record the image and go on. Options: ``mode``, ``expand``, ``border`` (landmarks),
    ``crop`` (aligned).
    """
    check_options(method, options)
    return CROPS.get(method)(img, landmarks=landmarks, size=int(size), **options)


def check_options(method: str, options: Mapping[str, Any]) -> None:
    """ConfigError for an unknown crop ``method`` or an option that :func:`crop_record` does not take for it."""
    known = [p for p in inspect.signature(CROPS.get(method)).parameters if p not in ("img", "landmarks", "size")]
    for key in options:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise ConfigError(
                f"unknown option {key!r} for crop method {method!r}",
                hint=f"did you mean {close[0]!r}?" if close else f"options: {', '.join(known) or 'none'}",
            )


def _rgb(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 RGB image, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


__all__ = [
    "ALIGNED_CROP",
    "CROPS",
    "TEMPLATE_128",
    "aligned_crop",
    "aligned_transform",
    "check_options",
    "crop_record",
    "crop_transform",
    "find_landmarks",
    "landmark_crop",
    "resize_crop",
    "similarity_lstsq",
    "template",
    "transform_points",
    "warp",
]
