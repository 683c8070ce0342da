"""Every picture facesr draws for humans, in one place: store sample grids and SR comparison grids. uint8 RGB.

* :func:`pick`: THE sample picker — ``n`` usable rows of a split, drawn at random with ``seed``, sorted.
* :func:`sample_grid` (``facesr data show``): per sample one block of tiles side by side — HR | LR upscaled
  with nearest neighbour (its pixels stay visible) | HR + heatmap | HR + parsing | HR + part boxes
  (landmark dots when the store has no boxes). ``priors="auto"`` draws the heatmap and parsing the store
  has; naming one it lacks (``priors=("heatmap",)``) is a StoreError naming what it has. Above each block
  a strip names the sample (id, split, row); each tile is captioned; blocks are laid ``per_row`` to a row.
* :func:`priors_grid` (``facesr priors show``, the demo): the same blocks with every prior and no LR.
* :func:`comparison_grid` (``facesr eval``, training validation, the demo): one row per image of whatever
  the evaluator kept — LR (nearest) | bicubic | SR | HR | |SR − HR| × 4 — with a title row and labels.

Overlays come from :mod:`facesr.priors.overlay`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from facesr.data import schema
from facesr.data.store import FaceStore
from facesr.errors import ConfigError, StoreError

__all__ = ["ERROR_GAIN", "PRIOR_TILES", "comparison_grid", "pick", "priors_grid", "sample_grid", "save_png"]

PRIOR_TILES = ("heatmap", "parsing", "boxes")
ERROR_GAIN = 4
_PAD = 4
_STRIP = 16  # label strip above a block
_FONT = cv2.FONT_HERSHEY_SIMPLEX
_TILE_ARRAY = {"heatmap": schema.HEATMAP.name, "parsing": schema.PARSING.name, "boxes": schema.BOXES.name}


def _open(store: str | os.PathLike | FaceStore) -> FaceStore:
    return store if isinstance(store, FaceStore) else FaceStore.open(store)


def pick(store: FaceStore, n: int, split: str | None = None, seed: int = 0) -> np.ndarray:
    """``n`` usable sample indices of ``split`` (all splits for None), drawn at random with ``seed``, sorted."""
    idx = store.indices(split)
    if len(idx) == 0:
        where = f"split {split!r}" if split else "the store"
        raise StoreError(f"{store._where()} has no usable samples in {where}",
                         hint="see `facesr data info STORE` for splits and failures")
    n = min(int(n), len(idx))
    return np.sort(np.random.default_rng(seed).choice(idx, size=n, replace=False))


def _rows(store: FaceStore, name: str, idx: np.ndarray) -> np.ndarray:
    """Rows ``idx`` (sorted) of array ``name``, reading each storage chunk once."""
    arr = store.array(name)
    c = store.chunk
    parts = []
    for cid in np.unique(idx // c):
        sel = idx[idx // c == cid]
        block = np.asarray(arr[cid * c : min((cid + 1) * c, store.n)])
        parts.append(block[sel - cid * c])
    return np.concatenate(parts)


def _heatmap01(maps: np.ndarray) -> np.ndarray:
    """Stored heatmaps → float32 ``(k, S, S)`` in [0, 1] (float as stored; a legacy integer map by its max)."""
    m = maps.astype(np.float32)
    if np.issubdtype(maps.dtype, np.integer):
        m /= float(np.iinfo(maps.dtype).max)
    if m.ndim == 4:  # (k, 1, S, S) or (k, S, S, 1)
        m = m[:, 0] if m.shape[1] == 1 else m[..., 0]
    return np.clip(np.nan_to_num(m), 0.0, 1.0)


def _caption(tile: np.ndarray, text: str) -> np.ndarray:
    out = np.ascontiguousarray(tile).copy()
    scale = max(0.3, out.shape[0] / 400)
    org = (3, int(12 * scale / 0.32))
    cv2.putText(out, text, org, _FONT, scale, (0, 0, 0), 2, cv2.LINE_AA)
    cv2.putText(out, text, org, _FONT, scale, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def _label_strip(width: int, text: str, colour=(0, 0, 0)) -> np.ndarray:
    strip = np.full((_STRIP, width, 3), 255, np.uint8)
    cv2.putText(strip, text, (2, _STRIP - 4), _FONT, 0.38, colour, 1, cv2.LINE_AA)
    return strip


def _landmark_dots(hr: np.ndarray, pts: np.ndarray) -> np.ndarray:
    img = hr.copy()
    for x, y in pts[np.isfinite(pts).all(axis=1)]:
        xi, yi = int(round(x)), int(round(y))
        img[max(yi - 1, 0) : yi + 1, max(xi - 1, 0) : xi + 1] = (0, 255, 0)
    return img


def _prior_columns(st: FaceStore, want: Sequence[str], idx: np.ndarray, hr: np.ndarray) -> list[tuple[str, np.ndarray]]:
    from facesr.priors.boxes import unpad_boxes
    from facesr.priors.overlay import draw_boxes, overlay_heatmap, overlay_parsing

    cols = []
    if "heatmap" in want:
        maps = _heatmap01(_rows(st, schema.HEATMAP.name, idx))
        cols.append(("heatmap", np.stack([overlay_heatmap(h, m) for h, m in zip(hr, maps)])))
    if "parsing" in want:
        cms = _rows(st, schema.PARSING.name, idx)
        cols.append(("parsing", np.stack([overlay_parsing(h, c) for h, c in zip(hr, cms)])))
    if "boxes" in want:
        if schema.BOXES.name in st:
            boxes = _rows(st, schema.BOXES.name, idx)
            cols.append(("boxes", np.stack([draw_boxes(h, unpad_boxes(b)[0]) for h, b in zip(hr, boxes)])))
        elif schema.LANDMARKS.name in st:
            pts = _rows(st, schema.LANDMARKS.name, idx)
            cols.append(("landmarks", np.stack([_landmark_dots(h, p) for h, p in zip(hr, pts)])))
    return cols


def _layout(blocks: list[np.ndarray], per_row: int) -> np.ndarray:
    per_row = max(1, min(int(per_row), len(blocks)))
    bh, bw = blocks[0].shape[:2]
    nrows = -(-len(blocks) // per_row)
    out = np.full((nrows * (bh + _PAD) + _PAD, per_row * (bw + _PAD) + _PAD, 3), 255, np.uint8)
    for k, b in enumerate(blocks):
        r, c = divmod(k, per_row)
        y, x = _PAD + r * (bh + _PAD), _PAD + c * (bw + _PAD)
        out[y : y + bh, x : x + bw] = b
    return out


def sample_grid(
    store: str | os.PathLike | FaceStore,
    n: int = 16,
    split: str | None = None,
    seed: int = 0,
    priors: str | Sequence[str] = "auto",
    lr: str | None = None,
    per_row: int = 4,
    *,
    with_lr: bool = True,
) -> np.ndarray:
    """A labelled grid of ``n`` random usable samples; uint8 RGB (H, W, 3). See the module docstring.

    ``lr``: which LR set (``"bicubic-pil:16"`` or ``"bicubic-pil_16"``); default the first ``lr/*`` array,
    none if the store has none (or ``with_lr=False``). ``priors``: ``"auto"`` (heatmap and parsing, those the
    store has), or names among :data:`PRIOR_TILES`.
    """
    st = _open(store)
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    names = st.names()
    if priors == "auto":
        want = [p for p in ("heatmap", "parsing") if _TILE_ARRAY[p] in names]
    else:
        want = [priors] if isinstance(priors, str) else list(priors)
        unknown = [p for p in want if p not in PRIOR_TILES]
        if unknown:
            raise ConfigError(f"cannot draw priors {unknown}; choose from {', '.join(PRIOR_TILES)}")
        for p in want:
            if p != "boxes":
                st.array(_TILE_ARRAY[p])  # StoreError naming what exists
    lr_name = None
    if with_lr:
        lr_name = schema.lr(lr).name if lr else next((x for x in names if x.startswith(schema.LR_GROUP + "/")), None)
        if lr_name:
            st.array(lr_name)

    idx = pick(st, n, split, seed)
    hr = _rows(st, schema.HR.name, idx)
    size = hr.shape[1]
    columns: list[tuple[str, np.ndarray]] = [("HR", hr)]
    if lr_name:
        lrs = _rows(st, lr_name, idx)
        up = np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_NEAREST) for x in lrs])
        columns.append((f"LR {lr_name.split('/', 1)[1]}", up))
    columns += _prior_columns(st, want, idx, hr)

    ids, splits = st.ids[idx], st.splits[idx]
    blocks = []
    for k, i in enumerate(idx.tolist()):
        tiles = [_caption(col[k], label) for label, col in columns]
        body = np.full((size, len(tiles) * size + (len(tiles) - 1) * 2, 3), 255, np.uint8)
        for j, t in enumerate(tiles):
            body[:, j * (size + 2) : j * (size + 2) + size] = t
        text = f"{ids[k]}  {splits[k]}  #{i}"
        blocks.append(np.concatenate([_label_strip(body.shape[1], text), body], axis=0))
    return _layout(blocks, per_row)


def priors_grid(store: str | os.PathLike | FaceStore, n: int = 16, *, split: str | None = None, seed: int = 0,
                columns: int = 2) -> np.ndarray:
    """Per sample HR | heatmap | parsing | part boxes (those the store has), ``columns`` blocks per row."""
    st = _open(store)
    names = set(st.names())
    want = [p for p in ("heatmap", "parsing") if _TILE_ARRAY[p] in names]
    if schema.BOXES.name in names or schema.LANDMARKS.name in names:
        want.append("boxes")
    return sample_grid(st, n, split, seed, priors=want, per_row=columns, with_lr=False)


def comparison_grid(samples: Mapping[str, np.ndarray], labels: Sequence[str] | None = None,
                    n: int | None = None, error: bool = True) -> np.ndarray:
    """uint8 RGB grid, one row per image: LR (nearest) | bicubic | SR | HR | |SR − HR| × 4.

    ``samples``: uint8 ``(N, h, w, 3)`` stacks keyed ``lr`` / ``bicubic`` / ``sr`` / ``hr`` (any subset with
    ``hr``; an evaluator result's ``samples``); ``n``: the first ``n`` rows (all by default).
    """
    from PIL import Image, ImageDraw

    hr = np.asarray(samples["hr"])
    h, w = hr.shape[1:3]
    count = len(hr) if n is None else min(int(n), len(hr))
    cols: list[tuple[str, np.ndarray]] = []
    if "lr" in samples:
        lr = np.asarray(samples["lr"])
        cols.append((f"LR {lr.shape[1]}px", np.stack([cv2.resize(x, (w, h), interpolation=cv2.INTER_NEAREST)
                                                      for x in lr[:count]])))
    for key, title in (("bicubic", "bicubic"), ("sr", "SR"), ("hr", "HR")):
        if key in samples:
            cols.append((title, np.asarray(samples[key])[:count]))
    if error and "sr" in samples:
        err = np.abs(np.asarray(samples["sr"])[:count].astype(np.int16) - hr[:count].astype(np.int16)).mean(-1)
        err = np.clip(err * ERROR_GAIN, 0, 255).astype(np.uint8)
        cols.append((f"|error| x{ERROR_GAIN}", np.repeat(err[..., None], 3, axis=-1)))
    head, gap = 14, 2
    canvas = Image.new("RGB", (len(cols) * (w + gap) + gap, head + count * (h + head) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, (title, _) in enumerate(cols):
        draw.text((gap + c * (w + gap) + 2, 1), title, fill=(0, 0, 0))
    for r in range(count):
        y = head + r * (h + head)
        if labels is not None:
            draw.text((gap + 2, y), str(labels[r]), fill=(0, 0, 0))
        for c, (_, stack) in enumerate(cols):
            canvas.paste(Image.fromarray(np.ascontiguousarray(stack[r])), (gap + c * (w + gap), y + head - 2))
    return np.asarray(canvas)


def save_png(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Write a uint8 RGB image as PNG (atomically; creates the folder)."""
    from facesr.data.images import write_png

    return write_png(path, img)
