"""Dataset layouts → records. The only code that parses dataset files.

A :class:`Source` lists :class:`Record` s (id, path, split, meta) for one dataset root, sorted by id;
ids are file stems, except that files sharing a stem in different folders (``a/1.jpg``, ``b/1.jpg``) get
their relative paths (``a/1``, ``b/1``). A source checks the layout (root, partition files, splits)
but not the images: a file that cannot be decoded is recorded later by the crop step. Listed files
missing from disk are left out and counted in ``Source.missing``.

``meta`` carries what the dataset's own files say about a face, in source pixels (x, y):
``box`` (x1, y1, x2, y2) and/or ``landmarks`` ((68, 2) or (5, 2) float arrays as nested lists), and
``lr_path`` for ``pairs``.

Sources (:data:`SOURCES`, opened with :func:`open_source`):

``celeba``       aligned CelebA, official layout: ``img_align_celeba/<id>.jpg`` and
                 ``list_eval_partition.txt`` (0 train, 1 val, 2 test). Identity, landmark and attribute
                 files are never needed. Option ``split_files={"train": path, "test": path}``: files
                 of ids (one per line, with or without ``.jpg``) replacing the official partition, e.g.
                 the DIC train/test id lists.
``celeba-wild``  in-the-wild CelebA: ``img_celeba/<id>.jpg``, the partition (or ``split_files``), and
                 ``list_landmarks_celeba.txt`` (5 points: eyes, nose, mouth corners → ``landmarks``)
                 and/or ``list_bbox_celeba.txt`` (x, y, w, h → ``box``); at least one is required.
``helen``        Helen photos, recursively under the root. Splits from 300-W folders named
                 ``trainset``/``testset``, else from ``trainnames.txt``/``testnames.txt`` (official
                 Helen), else every image goes to option ``split`` (default ``test``). 68-point
                 landmarks from a 300-W ``<stem>.pts`` beside an image, when present.
``ffhq``         ``images1024x1024/`` (or ``thumbnails128x128/``, option ``variant``; else the root),
                 PNGs, recursively. Splits from ``ffhq-dataset-v2.json`` (``category``
                 training/validation) when present, else FFHQ's rule: ids < 60000 train, the rest val.
``folder``       any images, recursively. Option ``split_file``: lines ``<name> <split>`` (name = file
                 name, relative path or stem; split train/val/test or 0/1/2), only listed files are
                 used; without it every image goes to option ``split`` (default ``test``).
``pairs``        existing HR/LR folders (``hr="HR"``, ``lr="LR"``), matched by stem; ``meta["lr_path"]``.
                 Option ``split`` (default ``test``). E.g. ``../shared/benchmarks/celeba_test_dic``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from facesr.data.images import IMAGE_EXTENSIONS
from facesr.data.splits import PARTITION_CODES as _PARTITION_CODES
from facesr.data.splits import SPLITS
from facesr.data.splits import check_split as _check_split
from facesr.data.splits import files_in as _files_in
from facesr.data.splits import list_images as _list_images
from facesr.data.splits import read_ids as _read_ids
from facesr.data.splits import split_file as _split_file
from facesr.data.splits import split_files as _split_files
from facesr.errors import ConfigError, DatasetError
from facesr.registry import Registry


@dataclass(frozen=True)
class Record:
    """One image of a dataset. ``split`` ∈ {train, val, test}; ``meta`` is JSON-able."""

    id: str
    path: Path
    split: str
    meta: dict = field(default_factory=dict, compare=False, hash=False)


class Source:
    """Base class: subclasses implement ``_scan()`` → all records (any order)."""

    name = "source"

    def __init__(self, root: str | os.PathLike, **options) -> None:
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.name} root {str(self.root)!r} does not exist or is not a folder",
                hint=f"pass the folder that holds the {self.name} files",
            )
        self.options = dict(options)
        self.missing = 0  # listed in the dataset's files but absent on disk
        self._records: list[Record] | None = None

    # ----------------------------------------------------------------------------------- API
    def config(self) -> dict:
        """JSON-able description (for hashing): source name, resolved root, options."""
        return {"source": self.name, "root": str(self.root.resolve()), "options": _jsonable(self.options)}

    def records(self, split: str | None = None) -> list[Record]:
        """Records of one split (or all), sorted by id; DatasetError for an unknown or empty split."""
        if split is not None and split not in SPLITS:
            raise DatasetError(f"unknown split {split!r}", hint=f"use one of {', '.join(SPLITS)}")
        if self._records is None:
            recs = sorted(_unique_ids(list(self._scan()), self.root), key=lambda r: r.id)
            seen: dict[str, Path] = {}
            for r in recs:
                if r.id in seen:
                    raise DatasetError(
                        f"{self.name}: id {r.id!r} is used by two files ({seen[r.id]}, {r.path})",
                        hint="ids are file stems and must be unique; rename or remove one",
                    )
                seen[r.id] = r.path
            self._records = recs
        out = self._records if split is None else [r for r in self._records if r.split == split]
        if not out:
            have = sorted({r.split for r in self._records})
            what = f"split {split!r}" if split else "any split"
            raise DatasetError(
                f"{self.name} at {self.root} has no images in {what}",
                hint=f"splits present: {', '.join(have)}" if have else "check the root folder and its layout",
            )
        return list(out)

    def splits(self) -> dict[str, int]:
        """Number of records per split present."""
        counts: dict[str, int] = {}
        for r in self.records():
            counts[r.split] = counts.get(r.split, 0) + 1
        return counts

    def _scan(self) -> Iterable[Record]:  # pragma: no cover - abstract
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.root)!r}, {self.options!r})"

    # ------------------------------------------------------------------------------- helpers
    def _require(self, rel: str, what: str, hint: str) -> Path:
        p = self.root / rel
        if not p.exists():
            raise DatasetError(f"{self.name}: {what} {str(p)!r} is missing", hint=hint)
        return p


SOURCES: Registry[Source] = Registry("dataset")


def open_source(name: str, root: str | os.PathLike, **options) -> Source:
    """Open the dataset ``name`` at ``root``. Unknown name, missing root or files → DatasetError."""
    try:
        cls = SOURCES.get(name)
    except ConfigError as e:
        raise DatasetError(f"unknown dataset {name!r}", hint=e.hint) from None
    return cls(root, **options)


# ---------------------------------------------------------------------------------------- utils
def _unique_ids(records: list[Record], root: Path) -> list[Record]:
    """Files sharing a stem (``a/1.jpg``, ``b/1.jpg``) get their path relative to ``root`` as id (``a/1``,
    ``b/1``; with the extension if that still collides); every other record keeps its stem."""
    from dataclasses import replace

    by_id: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        by_id.setdefault(r.id, []).append(i)
    out = list(records)
    for idx in by_id.values():
        if len(idx) < 2:
            continue
        for with_suffix in (False, True):
            ids = []
            for i in idx:
                try:
                    rel = Path(records[i].path).relative_to(root)
                except ValueError:
                    rel = Path(records[i].path)
                ids.append((rel if with_suffix else rel.with_suffix("")).as_posix())
            if len(set(ids)) == len(ids):
                break
        for i, new in zip(idx, ids):
            out[i] = replace(records[i], id=new)
    return out


def limit_records(records: list[Record], n: int) -> list[Record]:
    """The first records of each split, ``n`` in all, in the splits' proportions (largest remainder; every
    split present keeps at least one when ``n`` allows), returned in the original order. The first ``n``
    rows of CelebA are all train: a plain head would leave a limited store without val and test."""
    if n >= len(records):
        return list(records)
    counts: dict[str, int] = {}
    for r in records:
        counts[r.split] = counts.get(r.split, 0) + 1
    total = len(records)
    exact = {s: n * c / total for s, c in counts.items()}
    take = {s: int(v) for s, v in exact.items()}
    for s in sorted(exact, key=lambda s: exact[s] - take[s], reverse=True)[: n - sum(take.values())]:
        take[s] += 1
    for s in counts:  # a split rounded to nothing borrows one from the largest share
        if take[s] == 0 and n >= len(counts):
            big = max(take, key=take.get)
            take[big] -= 1
            take[s] = 1
    used: dict[str, int] = {}
    out = []
    for r in records:
        if used.get(r.split, 0) < take[r.split]:
            used[r.split] = used.get(r.split, 0) + 1
            out.append(r)
    return out


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in sorted(x.items())}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, os.PathLike):
        return str(x)
    return x


def _check_options(name: str, options: dict, known: dict) -> dict:
    import difflib

    out = dict(known)
    for k, v in options.items():
        if k not in known:
            close = difflib.get_close_matches(k, known, n=1)
            raise ConfigError(
                f"unknown option {k!r} for dataset {name!r}",
                hint=f"did you mean {close[0]!r}?" if close else f"options: {', '.join(known) or 'none'}",
            )
        out[k] = v
    return out


def _celeba_partition(src: Source, split_files: dict | None) -> dict[str, str]:
    if split_files:
        return _split_files(src.name, src.root, split_files)
    p = src._require(
        "list_eval_partition.txt",
        "partition file",
        "CelebA's list_eval_partition.txt (Eval/ in the official release) must be in the root, "
        "or pass split_files={'train': ids.txt, ...}",
    )
    out: dict[str, str] = {}
    for n, line in enumerate(p.read_text().split("\n"), 1):
        tok = line.split()
        if not tok:
            continue
        if len(tok) != 2 or tok[1] not in _PARTITION_CODES:
            raise DatasetError(f"{p}:{n}: expected '<file> 0|1|2', got {line.strip()!r}")
        out[Path(tok[0]).stem] = _PARTITION_CODES[tok[1]]
    return out


def _celeba_table(path: Path, ncols: int) -> dict[str, list[float]]:
    """CelebA annotation table: a count line, a header line, then ``<file> v1 … vN`` rows."""
    lines = path.read_text().split("\n")
    out: dict[str, list[float]] = {}
    for n, line in enumerate(lines[2:], 3):
        tok = line.split()
        if not tok:
            continue
        try:
            values = [float(v) for v in tok[1:]]
        except ValueError:
            values = []  # a non-number: the same error as a missing column
        if len(values) != ncols:
            raise DatasetError(f"{path}:{n}: expected a file name and {ncols} numbers, got {line.strip()!r}")
        out[Path(tok[0]).stem] = values
    return out


# -------------------------------------------------------------------------------------- sources
@SOURCES.register("celeba")
class CelebASource(Source):
    name = "celeba"
    image_dir = "img_align_celeba"
    _defaults: dict = {"split_files": None}

    def __init__(self, root, **options):
        super().__init__(root, **_check_options(self.name, options, self._defaults))
        self._images = self._require(
            self.image_dir, "image folder", f"the root must hold {self.image_dir}/ (CelebA's official layout)"
        )
        self._partition = _celeba_partition(self, self.options["split_files"])

    def _meta(self) -> dict[str, dict]:
        return {}

    def _scan(self):
        names = {Path(n).stem: n for n in _files_in(self._images) if n.lower().endswith(IMAGE_EXTENSIONS)}
        meta = self._meta()
        self.missing = 0
        for i, split in self._partition.items():
            fname = names.get(i)
            if fname is None:
                self.missing += 1
                continue
            yield Record(i, self._images / fname, split, dict(meta.get(i, {})))


@SOURCES.register("celeba-wild")
class CelebAWildSource(CelebASource):
    name = "celeba-wild"
    image_dir = "img_celeba"

    def __init__(self, root, **options):
        super().__init__(root, **options)
        self._lm = self.root / "list_landmarks_celeba.txt"
        self._bbox = self.root / "list_bbox_celeba.txt"
        if not self._lm.is_file() and not self._bbox.is_file():
            raise DatasetError(
                f"celeba-wild: neither list_landmarks_celeba.txt nor list_bbox_celeba.txt is in {self.root}",
                hint="put CelebA's Anno/ files in the root, or use the 'folder' source (faces found by dlib)",
            )

    def _meta(self):
        meta: dict[str, dict] = {}
        if self._lm.is_file():
            for i, v in _celeba_table(self._lm, 10).items():
                meta.setdefault(i, {})["landmarks"] = [[v[k], v[k + 1]] for k in range(0, 10, 2)]
        if self._bbox.is_file():
            for i, (x, y, w, h) in _celeba_table(self._bbox, 4).items():
                meta.setdefault(i, {})["box"] = [x, y, x + w, y + h]
        return meta


def read_pts(path: Path) -> list[list[float]]:
    """A 300-W / iBUG ``.pts`` file → list of [x, y] (the files are 1-based: 1 is subtracted so that
    coordinates follow the pixel-centre-at-integer convention)."""
    text = Path(path).read_text()
    try:
        body = text[text.index("{") + 1 : text.index("}")]
        pts = [[float(a) - 1.0, float(b) - 1.0] for a, b in (ln.split() for ln in body.split("\n") if ln.strip())]
    except ValueError as e:
        raise DatasetError(f"cannot parse landmark file {path}: {e}") from None
    return pts


@SOURCES.register("helen")
class HelenSource(Source):
    name = "helen"
    _defaults: dict = {"split": "test"}

    def __init__(self, root, **options):
        super().__init__(root, **_check_options(self.name, options, self._defaults))
        self._default_split = _check_split(self.options["split"], "option split")

    def _scan(self):
        names: dict[str, str] = {}
        for split, fname in (("train", "trainnames.txt"), ("test", "testnames.txt")):
            p = self.root / fname
            if p.is_file():
                for i in _read_ids(p):
                    names[i] = split
        for path in _list_images(self.root):
            parts = {q.lower() for q in path.relative_to(self.root).parts[:-1]}
            if "trainset" in parts:
                split = "train"
            elif "testset" in parts:
                split = "test"
            else:
                split = names.get(path.stem, self._default_split)
            meta = {}
            pts = path.with_suffix(".pts")
            if pts.is_file():
                lm = read_pts(pts)
                if len(lm) == 68:
                    meta["landmarks"] = lm
            yield Record(path.stem, path, split, meta)


@SOURCES.register("ffhq")
class FFHQSource(Source):
    name = "ffhq"
    _defaults: dict = {"variant": None}
    VARIANTS = ("images1024x1024", "thumbnails128x128")

    def __init__(self, root, **options):
        super().__init__(root, **_check_options(self.name, options, self._defaults))
        variant = self.options["variant"]
        if variant is not None:
            self._images = self._require(variant, "image folder", f"one of {', '.join(self.VARIANTS)}")
        else:
            self._images = next((self.root / v for v in self.VARIANTS if (self.root / v).is_dir()), self.root)

    def _scan(self):
        cats: dict[str, str] = {}
        meta_file = self.root / "ffhq-dataset-v2.json"
        if meta_file.is_file():
            try:
                for k, v in json.loads(meta_file.read_text()).items():
                    cats[f"{int(k):05d}"] = {"training": "train", "validation": "val"}.get(v.get("category"), "train")
            except (ValueError, AttributeError) as e:  # not JSON, or not FFHQ's {"<index>": {...}} layout
                raise DatasetError(f"ffhq: cannot read {meta_file}: {e}",
                                   hint="use FFHQ's own ffhq-dataset-v2.json, or remove it") from None
        for path in _list_images(self._images):
            i = path.stem
            if i in cats:
                split = cats[i]
            elif i.isdigit():
                split = "train" if int(i) < 60000 else "val"
            else:
                split = "train"
            yield Record(i, path, split, {})


@SOURCES.register("folder")
class FolderSource(Source):
    name = "folder"
    _defaults: dict = {"split": "test", "split_file": None}

    def __init__(self, root, **options):
        super().__init__(root, **_check_options(self.name, options, self._defaults))
        self._default_split = _check_split(self.options["split"], "option split")
        self._table: dict[str, str] | None = None
        if self.options["split_file"] is not None:
            p = _split_file(self.name, self.root, self.options["split_file"], "lines: '<name> <split>'")
            self._table = {}
            self._split_path = p
            try:
                text = p.read_text()
            except UnicodeDecodeError:
                raise DatasetError(f"{self.name}: split file {str(p)!r} is not a text file",
                                   hint="lines: '<name> <split>', UTF-8") from None
            for n, line in enumerate(text.split("\n"), 1):
                tok = line.split()
                if not tok:
                    continue
                if len(tok) != 2:
                    raise DatasetError(f"{p}:{n}: expected '<name> <split>', got {line.strip()!r}")
                self._table[tok[0]] = _check_split(tok[1], f"{p}:{n}")

    def _scan(self):
        table = self._table
        used: set[str] = set()
        for path in _list_images(self.root):
            if table is None:
                yield Record(path.stem, path, self._default_split, {})
                continue
            rel = path.relative_to(self.root).as_posix()
            for key in (rel, path.name, path.stem):
                if key in table:
                    used.add(key)
                    yield Record(path.stem, path, table[key], {})
                    break
        if table is not None:
            unmatched = sorted(set(table) - used)
            self.missing = len(unmatched)
            if unmatched:  # a typo or a wrong root: say so rather than build a store without those images
                raise DatasetError(
                    f"{self.name}: {len(unmatched)} lines of {str(self._split_path)!r} match no image under "
                    f"{self.root} (e.g. {', '.join(unmatched[:3])})",
                    hint="names are paths relative to --root, file names or stems; fix or remove those lines")


@SOURCES.register("pairs")
class PairsSource(Source):
    name = "pairs"
    _defaults: dict = {"hr": "HR", "lr": "LR", "split": "test"}

    def __init__(self, root, **options):
        super().__init__(root, **_check_options(self.name, options, self._defaults))
        self._hr = self._require(self.options["hr"], "HR folder", "pass hr=<folder name> for the HR images")
        self._lr = self._require(self.options["lr"], "LR folder", "pass lr=<folder name> for the LR images")
        self._split = _check_split(self.options["split"], "option split")

    def _scan(self):
        lr = {p.stem: p for p in _list_images(self._lr)}
        unmatched = []
        for path in _list_images(self._hr):
            lp = lr.get(path.stem)
            if lp is None:
                unmatched.append(path.name)
                continue
            yield Record(path.stem, path, self._split, {"lr_path": str(lp)})
        if unmatched:
            raise DatasetError(
                f"pairs: {len(unmatched)} HR images have no LR image of the same stem in {self._lr} "
                f"(e.g. {', '.join(unmatched[:3])})",
                hint="HR and LR files must share their file stem",
            )


__all__ = ["Record", "SOURCES", "SPLITS", "Source", "limit_records", "open_source", "read_pts"]

