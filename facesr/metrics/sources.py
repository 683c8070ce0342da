"""Batch sources for :func:`facesr.metrics.evaluate.evaluate`: prediction folders and store splits.

``folder_batches(pred, gt)`` pairs the image files of two folders by file stem (``.png``, ``.jpg``,
``.jpeg``, ``.bmp``, ``.webp``) and yields ``{"ids", "sr", "hr"}`` uint8 batches; every mismatch (missing or
orphan files, sizes) is one :class:`DatasetError` before anything is scored. ``store_batches(store, split,
lr)`` yields a split's ``{"index", "ids", "lr", "hr"[, "parsing"]}`` uint8 batches in store order.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from facesr.errors import DatasetError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")

__all__ = ["IMAGE_EXTS", "default_split", "folder_batches", "list_images", "load_pairs", "store_batches",
           "store_lr_specs"]


def list_images(folder: str | os.PathLike) -> dict[str, Path]:
    """``{stem: path}`` of the image files directly inside ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder} is not a folder")
    found: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.suffix.lower() in IMAGE_EXTS and p.is_file():
            if p.stem in found:
                raise DatasetError(f"{folder} holds two images with the stem {p.stem!r}: {found[p.stem].name}, {p.name}")
            found[p.stem] = p
    return found


def _pair(pred_dir, gt_dir) -> tuple[list[str], dict[str, Path], dict[str, Path]]:
    pred, gt = list_images(pred_dir), list_images(gt_dir)
    if not gt:
        raise DatasetError(f"no images ({', '.join(IMAGE_EXTS)}) in the ground-truth folder {gt_dir}")
    missing = sorted(set(gt) - set(pred))
    orphans = sorted(set(pred) - set(gt))
    if missing or orphans:
        parts = []
        if missing:
            parts.append(f"{len(missing)} of {len(gt)} ground-truth images have no prediction (e.g. {', '.join(missing[:3])})")
        if orphans:
            parts.append(f"{len(orphans)} of {len(pred)} predictions have no ground truth (e.g. {', '.join(orphans[:3])})")
        raise DatasetError(f"{pred_dir} and {gt_dir} do not pair up: " + "; ".join(parts),
                           hint="predictions must carry the ground truth's file stems")
    return sorted(gt), pred, gt


def load_pairs(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(ids, sr, hr)`` uint8 RGB stacks of the images paired by stem; DatasetError on any mismatch."""
    from PIL import Image

    def load(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:  # truncated, not an image, a decompression bomb: name the file
            raise DatasetError(f"cannot read {path}: {exc}", hint="re-write or remove that file", path=str(path)) from None

    ids, pred, gt = _pair(pred_dir, gt_dir)
    sr = [load(pred[i]) for i in ids]
    hr = [load(gt[i]) for i in ids]
    bad = [i for i, a, b in zip(ids, sr, hr) if a.shape != b.shape]
    if bad:
        k = ids.index(bad[0])
        raise DatasetError(f"{len(bad)} of {len(ids)} predictions differ in size from their ground truth "
                           f"(e.g. {bad[0]}: {sr[k].shape[:2]} vs {hr[k].shape[:2]})")
    if len({a.shape for a in hr}) > 1:
        raise DatasetError(f"ground-truth images in {gt_dir} differ in size; evaluate one size at a time")
    return ids, np.stack(sr), np.stack(hr)


def folder_batches(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, batch_size: int = 256) -> list[dict]:
    """The paired images as ``{"ids", "sr", "hr"}`` batches (read and checked up front, so a mismatch is
    reported before any scoring)."""
    ids, sr, hr = load_pairs(pred_dir, gt_dir)
    return [{"ids": ids[i : i + batch_size], "sr": sr[i : i + batch_size], "hr": hr[i : i + batch_size]}
            for i in range(0, len(ids), batch_size)]


def _open(store):
    from facesr.data.store import FaceStore

    return store if isinstance(store, FaceStore) else FaceStore.open(store, snapshot="latest")  # a complete build


def default_split(store) -> str:
    """``test`` when the store has test samples, else ``val`` (what ``facesr eval`` scores by default)."""
    st = _open(store)
    return "test" if len(st.indices("test")) else "val"


def store_lr_specs(store) -> list[str]:
    """The names of a store's LR arrays (``["bicubic-pil_16", …]``), in store order."""
    from facesr.data import schema

    prefix = schema.LR_GROUP + "/"
    return [n[len(prefix):] for n in _open(store).names() if n.startswith(prefix) and schema.spec_for(n) is not None]


def store_batches(store, split: str | None, lr: str, *, batch_size: int = 32, parsing: bool = False) -> Iterator[dict]:
    """A split's usable samples in store order: ``{"index", "ids", "lr", "hr"}`` uint8 batches (plus the
    ``priors/parsing`` maps as ``"parsing"`` when asked). A split with no usable sample is a DatasetError."""
    from facesr.data.loader import StoreEvalDataset

    st = _open(store)
    if not len(st.indices(split)):
        raise DatasetError(f"split {split!r} of {getattr(st, 'path', None) or st._where()} has no usable samples",
                           hint="see `facesr data info STORE` for its splits")
    ds = StoreEvalDataset(st, split, lr=lr, priors=("parsing",) if parsing else (), batch_size=batch_size, rank=0,
                          world_size=1)
    ids_all = st.ids
    for raw in ds:
        idx = raw["index"].numpy()
        out = {"index": idx, "ids": ids_all[idx].tolist(), "lr": raw["lr"].numpy(), "hr": raw["hr"].numpy()}
        if parsing:
            out["parsing"] = raw["parsing"].numpy()
        yield out
