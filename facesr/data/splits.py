"""Split names, split/id list files and image listing shared by the dataset sources (:mod:`facesr.data.sources`).

A split is ``train``, ``val`` or ``test`` (or CelebA's partition codes 0/1/2). An id list file has one id per
line (its first token's stem: ``000001.jpg`` and ``000001`` are the same id).
"""

from __future__ import annotations

import os
from pathlib import Path

from facesr.data.images import IMAGE_EXTENSIONS
from facesr.errors import DatasetError

__all__ = ["SPLITS", "PARTITION_CODES", "check_split", "files_in", "list_images", "read_ids", "split_file",
           "split_files"]

SPLITS = ("train", "val", "test")
PARTITION_CODES = {"0": "train", "1": "val", "2": "test"}


def check_split(split: str, where: str) -> str:
    s = PARTITION_CODES.get(str(split), str(split))
    if s not in SPLITS:
        raise DatasetError(f"unknown split {split!r} in {where}", hint=f"use one of {', '.join(SPLITS)} (or 0/1/2)")
    return s


def list_images(folder: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if not f.startswith(".") and f.lower().endswith(IMAGE_EXTENSIONS):
                out.append(Path(dirpath) / f)
    return sorted(out)


def files_in(folder: Path) -> set[str]:
    with os.scandir(folder) as it:
        return {e.name for e in it if e.is_file()}


def read_ids(path: Path) -> list[str]:
    ids = []
    for line in Path(path).read_text().split("\n"):
        tok = line.split()
        if tok:
            ids.append(Path(tok[0]).stem)
    return ids


def split_file(name: str, root: Path, f: str | os.PathLike, hint: str) -> Path:
    """A split file given as a path, or relative to the dataset root; DatasetError if it is missing."""
    p = Path(f).expanduser()
    if not p.is_absolute() and not p.exists():
        p = root / p
    if not p.is_file():
        raise DatasetError(f"{name}: split file {str(p)!r} is missing", hint=hint)
    return p


def split_files(name: str, root: Path, split_files: dict) -> dict[str, str]:
    """id → split from ``{split: file of ids}``."""
    out: dict[str, str] = {}
    for split, f in split_files.items():
        split = check_split(split, "split_files")
        p = split_file(name, root, f, "pass existing id list files")
        for i in read_ids(p):
            out[i] = split
    return out
