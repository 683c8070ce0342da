"""Pictures of a store for humans: a labelled grid of samples (``facesr data show``). uint8 RGB out.

Per sample one block of 128×128 tiles side by side: HR | LR upscaled with nearest neighbour (its pixels
stay visible) | HR + heatmap overlay | HR + parsing overlay; the prior tiles appear when the store has
``priors/heatmap`` / ``priors/parsing`` (``priors="auto"``) or are required (``priors=("heatmap",)``:
a missing array is a StoreError naming what the store has). Only usable samples are drawn (failed ones
are listed by ``facesr data info``). Above each block a strip names the sample (id, split, row index);
each tile is captioned. Blocks are laid
out ``per_row`` to a row. Overlays come from :mod:`facesr.priors.overlay`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from facesr.data.store import FaceStore
from facesr.errors import ConfigError, StoreError

__all__ = ["pick", "sample_grid", "save_png"]

_PAD = 4
_STRIP = 16  # label strip above a block
_FONT = cv2.FONT_HERSHEY_SIMPLEX


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


def _heatmap01(store: FaceStore, maps: np.ndarray) -> np.ndarray:
    from facesr.data.loader import _heatmap_scale

    scale = _heatmap_scale(store.array("priors/heatmap"))
    m = maps.astype(np.float32)
    if scale is not None:
        m /= scale
    if m.ndim == 4:  # (k, 1, S, S) or (k, S, S, 1)
        m = m[:, 0] if m.shape[1] == 1 else m[..., 0]
    return np.nan_to_num(m)


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


def sample_grid(
    store: str | os.PathLike | FaceStore,
    n: int = 16,
    split: str | None = None,
    seed: int = 0,
    priors: str | Sequence[str] = "auto",
    lr: str | None = None,
    per_row: int = 4,
) -> np.ndarray:
    """A labelled grid of ``n`` random usable samples; uint8 RGB (H, W, 3). See the module docstring.

    ``lr``: which LR set (``"bicubic-pil:16"`` or ``"bicubic-pil_16"``); default the first ``lr/*`` array,
    none if the store has none. ``priors``: ``"auto"`` (what the store has), or names among
    ``("heatmap", "parsing")``.
    """
    from facesr.data.loader import lr_array_name
    from facesr.priors.overlay import overlay_heatmap, overlay_parsing

    st = _open(store)
    if n < 1:
        raise ConfigError(f"n must be at least 1, got {n}")
    names = st.names()
    if priors == "auto":
        want = [p for p in ("heatmap", "parsing") if f"priors/{p}" in names]
    else:
        want = [priors] if isinstance(priors, str) else list(priors)
        unknown = [p for p in want if p not in ("heatmap", "parsing")]
        if unknown:
            raise ConfigError(f"cannot draw priors {unknown}; choose from heatmap, parsing")
        for p in want:
            st.array(f"priors/{p}")  # StoreError naming what exists
    lr_name = lr_array_name(lr) if lr else next((x for x in names if x.startswith("lr/")), None)
    if lr_name:
        st.array(lr_name)

    idx = pick(st, n, split, seed)
    hr = _rows(st, "hr", idx)
    size = hr.shape[1]
    columns: list[tuple[str, np.ndarray]] = [("HR", hr)]
    if lr_name:
        lrs = _rows(st, lr_name, idx)
        up = np.stack([cv2.resize(x, (size, size), interpolation=cv2.INTER_NEAREST) for x in lrs])
        columns.append((f"LR {lr_name.split('/', 1)[1]}", up))
    if "heatmap" in want:
        maps = _heatmap01(st, _rows(st, "priors/heatmap", idx))
        columns.append(("heatmap", np.stack([overlay_heatmap(h, m) for h, m in zip(hr, maps)])))
    if "parsing" in want:
        cms = _rows(st, "priors/parsing", idx)
        columns.append(("parsing", np.stack([overlay_parsing(h, c) for h, c in zip(hr, cms)])))

    ids, splits = st.ids[idx], st.splits[idx]
    blocks = []
    for k, i in enumerate(idx.tolist()):
        tiles = [_caption(col[k], label) for label, col in columns]
        body = np.full((size, len(tiles) * size + (len(tiles) - 1) * 2, 3), 255, np.uint8)
        for j, t in enumerate(tiles):
            body[:, j * (size + 2) : j * (size + 2) + size] = t
        text = f"{ids[k]}  {splits[k]}  #{i}"
        blocks.append(np.concatenate([_label_strip(body.shape[1], text), body], axis=0))

    per_row = max(1, min(int(per_row), len(blocks)))
    bh, bw = blocks[0].shape[:2]
    nrows = -(-len(blocks) // per_row)
    out = np.full((nrows * (bh + _PAD) + _PAD, per_row * (bw + _PAD) + _PAD, 3), 255, np.uint8)
    for k, b in enumerate(blocks):
        r, c = divmod(k, per_row)
        y, x = _PAD + r * (bh + _PAD), _PAD + c * (bw + _PAD)
        out[y : y + bh, x : x + bw] = b
    return out


def save_png(path: str | os.PathLike, img: np.ndarray) -> Path:
    """Write a uint8 RGB image as PNG (atomically; creates the folder)."""
    from facesr.data.images import write_png

    return write_png(path, img)
