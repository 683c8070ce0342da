"""Pictures of priors for humans: heatmap and parsing overlays, labelled boxes. uint8 RGB in and out.

Grids of them (and of SR results) are laid out by :mod:`facesr.data.visualize`.
"""

from __future__ import annotations

import cv2
import numpy as np

from facesr.priors.boxes import PART_CLASSES
from facesr.priors.parsing import PARSING_CLASSES

#: one RGB colour per part class (PART_CLASSES order)
PART_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 60, 60),  # eye
    (255, 160, 0),  # eyebrows
    (60, 200, 60),  # nose
    (0, 255, 200),  # nosetip
    (255, 0, 255),  # mouth
    (160, 100, 255),  # chin
    (255, 255, 0),  # ear
    (80, 160, 255),  # face
    (200, 200, 200),  # head
)
#: one RGB colour per parsing class (PARSING_CLASSES order; "other" is left unpainted)
PARSING_COLOURS: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0),
    (255, 200, 150),
    (255, 160, 0),
    (255, 40, 40),
    (60, 200, 60),
    (230, 0, 230),
)
_ABBREV = {"eye": "eye", "eyebrows": "brow", "nose": "nose", "nosetip": "tip", "mouth": "mouth", "chin": "chin",
           "ear": "ear", "face": "face", "head": "head"}

__all__ = ["PARSING_COLOURS", "PART_COLOURS", "draw_boxes", "overlay_heatmap", "overlay_parsing"]


def _rgb(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.dtype != np.uint8:
        a = np.clip(a * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(a[..., :3])


def overlay_heatmap(img: np.ndarray, heatmap: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The image blended with the heatmap in the JET colormap; blending weight ``alpha·heat`` per pixel, so
    cold regions show the photo and hot ones the colour."""
    base = _rgb(img).astype(np.float32)
    hm = np.clip(np.asarray(heatmap, np.float32), 0, 1)
    if hm.shape != base.shape[:2]:
        hm = cv2.resize(hm, (base.shape[1], base.shape[0]), interpolation=cv2.INTER_LINEAR)
    col = cv2.applyColorMap((hm * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1].astype(np.float32)
    a = (alpha * (0.25 + 0.75 * hm))[..., None]
    return np.clip(base * (1 - a) + col * a, 0, 255).astype(np.uint8)


def overlay_parsing(img: np.ndarray, class_map: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The image with each parsing class (except "other") tinted in :data:`PARSING_COLOURS`."""
    base = _rgb(img).astype(np.float32)
    cm = np.asarray(class_map)
    if cm.shape != base.shape[:2]:
        cm = cv2.resize(cm.astype(np.uint8), (base.shape[1], base.shape[0]), interpolation=cv2.INTER_NEAREST)
    lut = np.array(PARSING_COLOURS, np.float32)
    col = lut[np.clip(cm, 0, len(PARSING_CLASSES) - 1)]
    a = np.where(cm > 0, alpha, 0.0)[..., None]
    return np.clip(base * (1 - a) + col * a, 0, 255).astype(np.uint8)


def draw_boxes(img: np.ndarray, boxes: np.ndarray, labels: bool = True, thickness: int = 1) -> np.ndarray:
    """A copy of the image with the ``(K, 6)`` boxes drawn in their class colours, with short class labels."""
    out = _rgb(img).copy()
    arr = np.asarray(boxes, np.float32).reshape(-1, 6)
    arr = arr[~np.isnan(arr).any(axis=1)]
    scale = max(0.25, min(out.shape[:2]) / 512)
    for x1, y1, x2, y2, _score, cls in arr:
        c = int(cls)
        colour = PART_COLOURS[c % len(PART_COLOURS)]
        cv2.rectangle(out, (int(x1), int(y1)), (max(int(x1), int(np.ceil(x2)) - 1), max(int(y1), int(np.ceil(y2)) - 1)),
                      colour, thickness)
        if labels:
            cv2.putText(out, _ABBREV.get(PART_CLASSES[c], str(c)), (int(x1) + 1, max(8, int(y1) + 8)),
                        cv2.FONT_HERSHEY_SIMPLEX, scale, colour, 1, cv2.LINE_AA)
    return out
