"""Facial part boxes: the one format every detector returns and ``heatmap.py`` consumes.

A box set for one image is a float32 array ``(K, 6)`` with rows ``[x1, y1, x2, y2, score, cls]``:

* ``x1, y1, x2, y2`` in HR pixel coordinates (x right, y down, origin top-left; ``x2``/``y2`` are the
  exclusive right/bottom edges, as ultralytics reports them), clipped to the image;
* ``score`` in ``[0, 1]`` (1.0 for landmark-derived boxes);
* ``cls`` a facesr class id, i.e. an index into :data:`PART_CLASSES` (stored as float).

A batch of box sets with different ``K`` is stored as ``(B, max_k, 6)`` with NaN rows as padding
(:func:`pad_boxes` / :func:`unpad_boxes`).

Size groups (used for the heatmap fades, seed 000 §II-B): the Gaussian fade emphasises the centre of
*small* parts (eyes, nose, mouth, ...), the inverse Gaussian the contour of *large* regions (face, head).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from facesr.errors import ConfigError

PART_CLASSES: tuple[str, ...] = ("eye", "eyebrows", "nose", "nosetip", "mouth", "chin", "ear", "face", "head")
"""facesr's canonical part classes; a class id is the index into this tuple."""

CLASS_ID: dict[str, int] = {name: i for i, name in enumerate(PART_CLASSES)}

SMALL_CLASSES: frozenset[str] = frozenset({"eye", "eyebrows", "nose", "nosetip", "mouth", "chin", "ear"})
LARGE_CLASSES: frozenset[str] = frozenset({"face", "head"})

#: Classes whose box interiors are "key features" (eyes, brows, nose, mouth), used in checks.
KEY_CLASSES: frozenset[str] = frozenset({"eye", "eyebrows", "nose", "nosetip", "mouth"})

BOX_COLUMNS = ("x1", "y1", "x2", "y2", "score", "cls")

__all__ = [
    "BOX_COLUMNS",
    "CLASS_ID",
    "KEY_CLASSES",
    "LARGE_CLASSES",
    "PART_CLASSES",
    "SMALL_CLASSES",
    "clip_boxes",
    "empty_boxes",
    "is_small",
    "make_boxes",
    "pad_boxes",
    "unpad_boxes",
    "validate_boxes",
]


def _class_id(cls: int | str) -> int:
    """The id of a part class given by name or id; ConfigError for anything else (no negative indexing)."""
    cid = CLASS_ID.get(cls, -1) if isinstance(cls, str) else cls
    if cid not in range(len(PART_CLASSES)):
        raise ConfigError(f"unknown part class {cls!r}", hint=f"known: {', '.join(PART_CLASSES)}")
    return int(cid)


def is_small(cls: int | str) -> bool:
    """True for the small-part group (Gaussian fade in the paper), False for face/head."""
    return PART_CLASSES[_class_id(cls)] in SMALL_CLASSES


def empty_boxes() -> np.ndarray:
    """A ``(0, 6)`` float32 box set."""
    return np.zeros((0, 6), np.float32)


def make_boxes(xyxy: np.ndarray | Sequence, cls: np.ndarray | Sequence | int | str, score=1.0) -> np.ndarray:
    """Build a ``(K, 6)`` float32 box set from ``(K, 4)`` corners, class ids/names and scores."""
    xyxy = np.asarray(xyxy, np.float32).reshape(-1, 4)
    k = len(xyxy)
    cls_arr = np.array([_class_id(c) for c in np.atleast_1d(cls)], np.float32)
    out = np.empty((k, 6), np.float32)
    out[:, :4] = xyxy
    out[:, 4] = np.broadcast_to(np.asarray(score, np.float32), (k,))
    out[:, 5] = np.broadcast_to(cls_arr, (k,))
    return out


def validate_boxes(boxes: np.ndarray) -> np.ndarray:
    """Check the ``(K, 6)`` layout and class ids; returns a float32 view/copy. NaN padding rows are allowed."""
    arr = np.asarray(boxes, np.float32)
    if arr.size == 0:
        arr = arr.reshape(0, 6)
    if arr.ndim != 2 or arr.shape[1] != 6:
        raise ConfigError(f"boxes must be (K, 6) [x1, y1, x2, y2, score, cls]; got shape {arr.shape}")
    cls = arr[:, 5]
    ok = np.isnan(cls) | ((cls >= 0) & (cls < len(PART_CLASSES)) & (cls == np.round(cls)))
    if not ok.all():
        raise ConfigError(f"box class ids must be integers in [0, {len(PART_CLASSES)}); got {cls[~ok][:5]}")
    return arr


def clip_boxes(boxes: np.ndarray, height: int, width: int) -> np.ndarray:
    """Clip corners to the image ``[0, width] × [0, height]`` and drop boxes with no area left."""
    arr = np.array(boxes, np.float32, copy=True).reshape(-1, 6)
    arr[:, [0, 2]] = np.clip(arr[:, [0, 2]], 0, width)
    arr[:, [1, 3]] = np.clip(arr[:, [1, 3]], 0, height)
    keep = (arr[:, 2] > arr[:, 0]) & (arr[:, 3] > arr[:, 1])
    return arr[keep]


def pad_boxes(boxes_list: Sequence[np.ndarray], max_k: int | None = None) -> np.ndarray:
    """Stack per-image box sets into ``(B, max_k, 6)`` float32, NaN-padded.

    ``max_k=None`` uses the largest K. Sets longer than ``max_k`` keep their ``max_k`` highest-scoring
    boxes (order otherwise preserved), so a fixed-width store column never fails on a crowded image.
    """
    sets = [validate_boxes(b) for b in boxes_list]
    if max_k is None:
        max_k = max((len(b) for b in sets), default=0)
    if max_k < 0:
        raise ConfigError(f"max_k must be >= 0; got {max_k}")
    out = np.full((len(sets), max_k, 6), np.nan, np.float32)
    for i, b in enumerate(sets):
        b = b[~np.isnan(b).any(axis=1)]
        if len(b) > max_k:
            top = np.sort(np.argsort(-b[:, 4], kind="stable")[:max_k])
            b = b[top]
        out[i, : len(b)] = b
    return out


def unpad_boxes(padded: np.ndarray) -> list[np.ndarray]:
    """Inverse of :func:`pad_boxes`: ``(B, K, 6)`` → list of ``(K_i, 6)`` float32, NaN rows dropped."""
    arr = np.asarray(padded, np.float32)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[-1] != 6:
        raise ConfigError(f"padded boxes must be (B, K, 6); got shape {arr.shape}")
    return [b[~np.isnan(b).any(axis=1)].copy() for b in arr]
