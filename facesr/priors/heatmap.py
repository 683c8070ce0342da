"""Part boxes → a structure-aware importance heatmap (seed 000, §II-B). Pure numpy/cv2 maths.

Input: an HR image ``(H, W, 3)`` uint8 RGB (or ``(H, W)`` grey) and its box set ``(K, 6)`` float32
rows ``[x1, y1, x2, y2, score, cls]`` (see :mod:`facesr.priors.boxes`; NaN rows are ignored).
Output: ``(H, W)`` float32 in ``[0, 1]``; all zeros when there is no usable box (or the map is flat).

Per box (both presets):

1. The box is truncated to integer pixels (``int(x)``, as the released code does) and clipped; boxes
   narrower or shorter than ``min_box_px`` are skipped. Boxes with ``score < min_score`` are skipped.
2. The grey crop's Scharr gradient magnitude is divided by its max; ``Canny(lo, hi) / 255``;
   ``edges = scharr_weight·scharr + canny_weight·canny`` is divided by its max (zero stays zero).
3. With ``blur_stage == "box"`` (the paper's order: "normalize the responses, and smooth them with a
   Gaussian blur") the edge crop is blurred here (OpenCV's default reflect-101 border).
4. Fade on a grid with ``x, y = linspace(-1, 1)`` across the box (``d² = x² + y²``):
   ``"gaussian"``: ``exp(-gaussian_alpha·d²)``; ``"inverse"``:
   ``inverse_floor + (1 - inverse_floor)·(1 - exp(-d² / (2·inverse_sigma²)))``; ``"none"``: 1.
5. Optional local window (released code): the faded crop is pasted into a window padded by
   ``max(local_pad_min, min(w, h) // local_pad_div)`` on each side (clipped to the image), and,
   with ``radial_fade``, multiplied by ``clip(exp(-radial_alpha·(d/maxd)²), radial_min, radial_max)``
   exactly as the authors' notebook (``heatmaps_generator.ipynb``): ``d`` is each window pixel's distance
   to the window's integer centre ``(h_win // 2, w_win // 2)`` (window coordinates) and
   ``maxd = min(h_win, w_win) / 2`` (pixels beyond ``maxd`` mostly sit at the ``radial_min`` clip).
   Without ``local_pad`` the window is the box itself (the radial fade still applies if enabled).
6. The window map times the class weight (``head`` additionally times ``head_scale``) is combined into
   the image map: ``"sum"`` accumulates (paper: "contributions ... are accumulated"), ``"max"`` keeps the
   per-pixel maximum (released code).

Then, with ``blur_stage == "final"`` (released code), the whole map is blurred; finally it is min-max
normalised per image to ``[0, 1]``.

Presets (choices recorded here, see ``shared/notes/reference-implementations.md``):

* ``"paper"`` — §II-B text: 15×15 σ 3 per-box blur, sum, weights eye 4.5; eyebrows, mouth, nose, chin,
  ear, face 4.0; nose tip 3.0; head 2.0; Gaussian fade ``exp(-2 d²)`` for the small parts, inverse Gaussian
  ``1 - exp(-d²/(2·0.6²))`` for face and head; no local window, no radial fade. Edge mixing (0.5/0.5,
  Canny 50/150) is not stated in the paper; it is taken from the released code.
* ``"released"`` — the authors' code: 21×21 σ 2 final blur, max-combine, local padding and radial fade,
  head weight 1.2 × 0.5 with the Gaussian fade, face ``0.3 + 0.7·inverse``, 1-pixel boxes kept. The code note lists only the
  head weight as different, so the other class weights are the paper's.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from facesr.errors import ConfigError
from facesr.priors.boxes import CLASS_ID, PART_CLASSES, SMALL_CLASSES, unpad_boxes, validate_boxes

FADES = ("gaussian", "inverse", "none")
#: the paper's fades: Gaussian for the small parts, inverse Gaussian for the large regions (face, head)
PAPER_FADES: tuple[str, ...] = tuple("gaussian" if c in SMALL_CLASSES else "inverse" for c in PART_CLASSES)

__all__ = ["FADES", "PRESETS", "HeatmapParams", "get_params", "render_batch", "render_batch_torch", "render_heatmap",
           "torch_is_faster"]


def _per_class(mapping: Mapping[str, object]) -> tuple:
    missing = [c for c in PART_CLASSES if c not in mapping]
    unknown = [c for c in mapping if c not in CLASS_ID]
    if missing or unknown:
        raise ConfigError(f"per-class setting needs exactly {PART_CLASSES}; missing {missing}, unknown {unknown}")
    return tuple(mapping[c] for c in PART_CLASSES)


@dataclass(frozen=True)
class HeatmapParams:
    """Every knob of :func:`render_heatmap`. Per-class tuples follow ``PART_CLASSES`` order.

    Use :meth:`replace` for variants (``PRESETS["paper"].replace(combine="max")``) and
    :meth:`to_dict` / :meth:`from_dict` for JSON (content hashing, run configs).
    """

    blur_ksize: int = 15
    blur_sigma: float = 3.0
    blur_stage: str = "box"  # "box" | "final" | "none"
    combine: str = "sum"  # "sum" | "max"
    class_weights: tuple[float, ...] = (4.5, 4.0, 4.0, 3.0, 4.0, 4.0, 4.0, 4.0, 2.0)
    head_scale: float = 1.0
    fades: tuple[str, ...] = PAPER_FADES
    gaussian_alpha: float = 2.0
    inverse_sigma: float = 0.6
    inverse_floor: float = 0.0
    scharr_weight: float = 0.5
    canny_weight: float = 0.5
    canny_low: float = 50.0
    canny_high: float = 150.0
    local_pad: bool = False
    local_pad_min: int = 8
    local_pad_div: int = 4
    radial_fade: bool = False
    radial_alpha: float = 0.8
    radial_min: float = 0.3
    radial_max: float = 1.0
    min_score: float = 0.0
    min_box_px: int = 2
    name: str = field(default="custom", compare=False)

    def __post_init__(self) -> None:
        # accept dicts keyed by class name for the per-class fields
        for key in ("class_weights", "fades"):
            val = getattr(self, key)
            if isinstance(val, Mapping):
                val = _per_class(val)
            object.__setattr__(self, key, tuple(val))
        if len(self.class_weights) != len(PART_CLASSES) or len(self.fades) != len(PART_CLASSES):
            raise ConfigError(f"class_weights and fades need {len(PART_CLASSES)} entries ({', '.join(PART_CLASSES)})")
        object.__setattr__(self, "class_weights", tuple(float(w) for w in self.class_weights))
        if any(f not in FADES for f in self.fades):
            raise ConfigError(f"unknown fade in {self.fades}", hint=f"use one of {FADES}")
        if self.combine not in ("sum", "max"):
            raise ConfigError(f"combine must be 'sum' or 'max'; got {self.combine!r}")
        if self.blur_stage not in ("box", "final", "none"):
            raise ConfigError(f"blur_stage must be 'box', 'final' or 'none'; got {self.blur_stage!r}")
        if self.blur_stage != "none" and (self.blur_ksize < 1 or self.blur_ksize % 2 == 0 or self.blur_sigma <= 0):
            raise ConfigError(f"blur needs an odd ksize >= 1 and sigma > 0; got {self.blur_ksize}, {self.blur_sigma}")
        if not 0.0 <= self.inverse_floor <= 1.0:
            raise ConfigError(f"inverse_floor must be in [0, 1]; got {self.inverse_floor}")
        if self.inverse_sigma <= 0 or self.local_pad_div < 1 or self.min_box_px < 1:
            raise ConfigError("inverse_sigma must be > 0, local_pad_div >= 1 and min_box_px >= 1")

    def weight(self, cls: int) -> float:
        w = self.class_weights[cls]
        return w * self.head_scale if PART_CLASSES[cls] == "head" else w

    def replace(self, **changes) -> HeatmapParams:
        _check_keys(changes)
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["class_weights"] = dict(zip(PART_CLASSES, self.class_weights, strict=True))
        d["fades"] = dict(zip(PART_CLASSES, self.fades, strict=True))
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> HeatmapParams:
        _check_keys(d)
        return cls(**dict(d))


def _check_keys(d: Mapping) -> None:
    known = [f.name for f in dataclasses.fields(HeatmapParams)]
    for key in d:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            raise ConfigError(
                f"unknown heatmap parameter {key!r}", hint=f"did you mean {close[0]!r}?" if close else None
            )


PRESETS: dict[str, HeatmapParams] = {
    "paper": HeatmapParams(name="paper"),
    "released": HeatmapParams(
        name="released",
        blur_ksize=21,
        blur_sigma=2.0,
        blur_stage="final",
        combine="max",
        class_weights=(4.5, 4.0, 4.0, 3.0, 4.0, 4.0, 4.0, 4.0, 1.2),
        head_scale=0.5,
        fades=tuple("inverse" if c == "face" else "gaussian" for c in PART_CLASSES),
        inverse_floor=0.3,
        local_pad=True,
        radial_fade=True,
        min_box_px=1,  # the released code only skipped empty crops
    ),
}


def get_params(preset: str | HeatmapParams = "paper", **overrides) -> HeatmapParams:
    """A preset by name (``"paper"`` / ``"released"``) with optional field overrides."""
    if isinstance(preset, HeatmapParams):
        base = preset
    else:
        if preset not in PRESETS:
            close = difflib.get_close_matches(str(preset), PRESETS, n=1)
            raise ConfigError(f"unknown heatmap preset {preset!r}", hint=f"known: {', '.join(PRESETS)}"
                              + (f"; did you mean {close[0]!r}?" if close else ""))
        base = PRESETS[preset]
    return base.replace(**overrides) if overrides else base


# ---------------------------------------------------------------------------------------------------


def _grey(image: np.ndarray) -> np.ndarray:
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise ConfigError(f"heatmap input must be uint8; got {img.dtype}")
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
    raise ConfigError(f"heatmap input must be (H, W, 3) RGB or (H, W); got shape {img.shape}")


def _blur(a: np.ndarray, p: HeatmapParams) -> np.ndarray:
    return cv2.GaussianBlur(a, (p.blur_ksize, p.blur_ksize), p.blur_sigma)


def edge_map(grey_crop: np.ndarray, p: HeatmapParams) -> np.ndarray:
    """Normalised Scharr + Canny edges of a uint8 grey crop, float32 in ``[0, 1]``:
    ``w_s · |Scharr| / max + w_c · Canny / 255``, renormalised by its max. In place, in numpy's exactly rounded
    float32 ops (``cv2.magnitude``'s SIMD path gives results that vary with memory alignment)."""
    crop = np.ascontiguousarray(grey_crop)
    gx = cv2.Scharr(crop, cv2.CV_32F, 1, 0)
    gy = cv2.Scharr(crop, cv2.CV_32F, 0, 1)
    gx *= gx
    gy *= gy
    gx += gy
    edges = np.sqrt(gx, out=gx)
    m = cv2.minMaxLoc(edges)[1]
    if m > 0:
        edges /= m
    can = cv2.Canny(crop, p.canny_low, p.canny_high).astype(np.float32)
    can /= 255.0
    can *= p.canny_weight
    edges *= p.scharr_weight
    edges += can
    m = cv2.minMaxLoc(edges)[1]
    if m > 0:
        edges /= m
    return edges


def fade(h: int, w: int, kind: str, p: HeatmapParams) -> np.ndarray:
    """The ``(h, w)`` fade over a box, coordinates ``linspace(-1, 1)`` relative to the box centre."""
    if kind == "none":
        return np.ones((h, w), np.float32)
    y = np.linspace(-1.0, 1.0, h, dtype=np.float32)[:, None]
    x = np.linspace(-1.0, 1.0, w, dtype=np.float32)[None, :]
    d2 = x * x + y * y
    if kind == "gaussian":
        return np.exp(-p.gaussian_alpha * d2).astype(np.float32)
    inv = 1.0 - np.exp(-d2 / (2.0 * p.inverse_sigma**2))
    return (p.inverse_floor + (1.0 - p.inverse_floor) * inv).astype(np.float32)


#: the same fade for the same (h, w, kind, params): box sizes repeat, so each is computed once (read-only use)
_cached_fade = functools.lru_cache(maxsize=4096)(fade)


def _int_box(row: Sequence[float], h: int, w: int) -> tuple[int, int, int, int]:
    x1, y1, x2, y2 = int(row[0]), int(row[1]), int(row[2]), int(row[3])  # truncation, as the released code
    return max(0, min(x1, w)), max(0, min(y1, h)), max(0, min(x2, w)), max(0, min(y2, h))


def render_heatmap(image: np.ndarray, boxes: np.ndarray, params: HeatmapParams | str = PRESETS["paper"]) -> np.ndarray:
    """``(H, W)`` float32 heatmap in ``[0, 1]`` for one image and its ``(K, 6)`` boxes (module docstring)."""
    p = get_params(params)
    grey = _grey(image)
    H, W = grey.shape
    out = np.zeros((H, W), np.float32)
    arr = validate_boxes(boxes)
    arr = arr[~np.isnan(arr).any(axis=1)]
    used = 0
    for row in arr.tolist():  # Python floats (exact copies of the float32 values): cheap per-box scalar work
        if row[4] < p.min_score:
            continue
        cls = int(row[5])
        x1, y1, x2, y2 = _int_box(row, H, W)
        bw, bh = x2 - x1, y2 - y1
        if bw < p.min_box_px or bh < p.min_box_px:
            continue
        m = edge_map(grey[y1:y2, x1:x2], p)
        if p.blur_stage == "box":
            m = _blur(m, p)
        m = m * _cached_fade(bh, bw, p.fades[cls], p)
        if p.local_pad:
            pad = max(p.local_pad_min, min(bw, bh) // p.local_pad_div)
            wx1, wy1, wx2, wy2 = max(0, x1 - pad), max(0, y1 - pad), min(W, x2 + pad), min(H, y2 + pad)
            local = np.zeros((wy2 - wy1, wx2 - wx1), np.float32)
            local[y1 - wy1 : y2 - wy1, x1 - wx1 : x2 - wx1] = m
        else:
            wx1, wy1, wx2, wy2 = x1, y1, x2, y2
            local = m
        if p.radial_fade:  # the notebook's formula, in float64 as there
            lh, lw = local.shape
            yy = np.arange(lh)[:, None] - lh // 2
            xx = np.arange(lw)[None, :] - lw // 2
            rad = np.exp(-p.radial_alpha * (np.sqrt(xx * xx + yy * yy) / (min(lh, lw) / 2)) ** 2)
            local = (local * np.clip(rad, p.radial_min, p.radial_max)).astype(np.float32)
        local = (p.weight(cls) * local).astype(np.float32, copy=False)
        region = out[wy1:wy2, wx1:wx2]
        if p.combine == "sum":
            region += local
        else:
            np.maximum(region, local, out=region)
        used += 1
    if used == 0:
        return out
    if p.blur_stage == "final":
        out = _blur(out, p)
    lo, hi = float(out.min()), float(out.max())
    if hi - lo <= 1e-12:
        return np.zeros((H, W), np.float32)
    return ((out - lo) / (hi - lo)).astype(np.float32)


def render_batch(
    images: np.ndarray, boxes_list: Sequence[np.ndarray] | np.ndarray, params: HeatmapParams | str = PRESETS["paper"]
) -> np.ndarray:
    """``(B, H, W)`` float32 heatmaps for ``(B, H, W, 3)`` uint8 images and per-image boxes.

    ``boxes_list`` is a list of ``(K_i, 6)`` arrays or a NaN-padded ``(B, K, 6)`` array.
    """
    imgs = np.asarray(images)
    if imgs.ndim not in (3, 4):
        raise ConfigError(f"images must be (B, H, W, 3) or (B, H, W); got shape {imgs.shape}")
    if isinstance(boxes_list, np.ndarray) and boxes_list.ndim == 3:
        boxes_list = unpad_boxes(boxes_list)
    if len(boxes_list) != len(imgs):
        raise ConfigError(f"{len(imgs)} images but {len(boxes_list)} box sets")
    p = get_params(params)
    out = np.zeros(imgs.shape[:3], np.float32)
    for i, (img, b) in enumerate(zip(imgs, boxes_list, strict=True)):
        out[i] = render_heatmap(img, b, p)
    return out


def render_batch_torch(hr_uint8, boxes, params: HeatmapParams | str = PRESETS["paper"], **kwargs):
    """The same recipe batched in torch on any device: :func:`facesr.priors.heatmap_torch.render_batch_torch`."""
    from facesr.priors.heatmap_torch import render_batch_torch as impl  # torch only when asked for

    return impl(hr_uint8, boxes, params, **kwargs)


def torch_is_faster() -> bool:
    """Whether the heatmap stage should render with :func:`render_batch_torch`: only with a CUDA device.

    Measured on 200 CelebA faces with landmark boxes (CPU time per image, one thread): numpy/cv2 2.2 ms
    (paper) / 2.5 ms (released), batched torch 10.0 / 10.9 ms (worse with two threads), so the CPU keeps
    the cv2 loop.
    """
    import os
    import sys

    if "torch" not in sys.modules and not os.path.exists("/dev/nvidiactl"):
        return False  # no NVIDIA driver: do not import torch for nothing (~2 s of CPU per worker process)
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())
