"""A picture of a built store's priors: per sample, HR | HR + heatmap | HR + parsing | HR + part boxes.

Pictures are drawn by :mod:`facesr.priors.overlay`; this module only picks samples and lays them out.
"""

from __future__ import annotations

import numpy as np

__all__ = ["priors_grid", "pick_samples"]


def pick_samples(fs, n: int, *, split: str | None = None, seed: int = 0) -> np.ndarray:
    """``n`` usable sample indices, spread evenly over the store (deterministic; ``seed`` shifts them)."""
    idx = fs.indices(split)
    if len(idx) == 0:
        return idx
    n = min(n, len(idx))
    pos = (np.linspace(0, len(idx), n, endpoint=False) + seed) % len(idx)
    return idx[np.unique(pos.astype(int))]


def priors_grid(fs, n: int = 16, *, split: str | None = None, seed: int = 0, columns: int = 2) -> np.ndarray:
    """uint8 RGB image: ``n`` samples, each a strip of 4 tiles, ``columns`` strips per row."""
    from facesr.priors.boxes import unpad_boxes
    from facesr.priors.overlay import draw_boxes, grid, overlay_heatmap, overlay_parsing

    idx = pick_samples(fs, n, split=split, seed=seed)
    names = set(fs.names())
    strips = []
    for i in idx.tolist():
        hr = fs.read("hr", i)
        tiles = [hr]
        if "priors/heatmap" in names:
            tiles.append(overlay_heatmap(hr, fs.read("priors/heatmap", i).astype(np.float32)))
        if "priors/parsing" in names:
            tiles.append(overlay_parsing(hr, fs.read("priors/parsing", i)))
        if "priors/boxes" in names:
            tiles.append(draw_boxes(hr, unpad_boxes(fs.read("priors/boxes", i))[0]))
        elif "landmarks" in names:
            pts = fs.read("landmarks", i)
            img = hr.copy()
            for x, y in pts[np.isfinite(pts).all(axis=1)]:
                xi, yi = int(round(x)), int(round(y))
                img[max(yi - 1, 0) : yi + 1, max(xi - 1, 0) : xi + 1] = (0, 255, 0)
            tiles.append(img)
        strips.append(np.concatenate(tiles, axis=1))
    if not strips:
        return np.full((64, 64, 3), 255, np.uint8)
    rows = [strips[r : r + columns] for r in range(0, len(strips), columns)]
    if len(rows[-1]) < columns and len(rows) > 1:
        rows[-1] = rows[-1] + [np.full_like(strips[0], 255)] * (columns - len(rows[-1]))
    return grid(rows, pad=4)
