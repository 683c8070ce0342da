"""Evaluate super-resolved images against ground truth: arrays or folders in, a named table out.

``evaluate_arrays(sr, hr)`` scores uint8 RGB ``(N, H, W, 3)`` batches; ``evaluate_folders(pred, gt)``
pairs the image files of two folders by file stem (``.png``, ``.jpg``, ``.jpeg``, ``.bmp``, ``.webp``)
and calls it. Every column names what produced it: ``psnr[dic]``, ``ssim[sparnet]``, ``msssim[rgb]``,
``lpips[alex]``, ``aed[68]``, ``identity[dlib]``. Means are over images; columns that can be NaN (no face
found) are averaged over the finite values and the NaN count is reported beside them.

Writers: :meth:`EvalResult.write_markdown` (means, settings), :meth:`EvalResult.write_csv` (one row per
image) and :func:`write_grid` (a PNG of a few samples: GT | prediction | |error| × 4).
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from facesr.errors import ConfigError, DatasetError
from facesr.metrics.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol, psnr_ssim

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
EXTRAS = ("msssim", "lpips", "lpips-vgg", "aed", "identity", "regions")
ERROR_GAIN = 4


@dataclass
class EvalResult:
    """Per-image columns (``(N,)`` float arrays keyed by named metric) for ``ids``, plus settings."""

    ids: list[str]
    columns: dict[str, np.ndarray]
    settings: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    baselines: dict[str, dict[str, float]] = field(default_factory=dict)  # name → metric means on the same images

    def means(self) -> dict[str, float]:
        return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in self.columns.items()}

    def nan_counts(self) -> dict[str, int]:
        return {k: int((~np.isfinite(v)).sum()) for k, v in self.columns.items()}

    def to_markdown(self) -> str:
        means, nans = self.means(), self.nan_counts()
        lines = [f"# facesr eval — {len(self.ids)} images", ""]
        lines += [f"- {k}: {v}" for k, v in self.settings.items()]
        base = list(self.baselines)
        lines += ["", "| metric | mean | " + "".join(f"{b} | " for b in base) + "images | no value |",
                  "| --- " * (4 + len(base)) + "|"]
        for k, v in means.items():
            cells = "".join(f"{format_value(k, self.baselines[b].get(k, float('nan')))} | " for b in base)
            lines.append(f"| {k} | {format_value(k, v)} | {cells}{len(self.ids) - nans[k]} | {nans[k]} |")
        return "\n".join(lines) + "\n"

    def write_markdown(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_markdown())
        return path

    def write_csv(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        names = list(self.columns)
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["id", *names])
            for i, id_ in enumerate(self.ids):
                w.writerow([id_, *(repr(float(self.columns[n][i])) for n in names)])
        return path


def format_value(name: str, value: float) -> str:
    if name.startswith("psnr") or name.startswith("aed"):
        return f"{value:.3f}"
    return f"{value:.4f}"


def evaluate_arrays(
    sr: np.ndarray,
    hr: np.ndarray,
    ids: Sequence[str] | None = None,
    *,
    protocols: Sequence[str] = (DEFAULT_PROTOCOL,),
    extra: Sequence[str] = (),
    weights_dir: str | os.PathLike | None = None,
    device: str = "cpu",
    landmarker=None,
    lpips_rand: bool = False,
    classes: np.ndarray | None = None,
) -> EvalResult:
    """Score uint8 RGB ``(N, H, W, 3)`` predictions against ground truth under each protocol and extra.

    ``lpips_rand`` builds LPIPS with a random trunk (plumbing tests only; the column says ``-rand``).
    ``regions``: PSNR inside eyes / nose / mouth per protocol, from ``classes`` ``(N, H, W)`` (a store's
    ``priors/parsing``) or, without them, from class maps drawn from dlib landmarks of the ground truth.
    """
    sr, hr = np.asarray(sr), np.asarray(hr)
    if sr.shape != hr.shape or sr.ndim != 4:
        raise ConfigError(f"predictions {sr.shape} and ground truth {hr.shape} must be equal (N, H, W, 3) batches")
    protos = _check_names(protocols, extra)
    ids = list(ids) if ids is not None else [str(i) for i in range(len(sr))]
    columns: dict[str, np.ndarray] = {}
    for p in protos:
        columns.update(psnr_ssim(sr, hr, p).columns())
    if "msssim" in extra:
        from facesr.metrics.msssim import COLUMN, ms_ssim

        columns[COLUMN] = np.atleast_1d(ms_ssim(sr, hr))
    for name in ("lpips", "lpips-vgg"):
        if name in extra:
            from facesr.metrics.lpips import LPIPSMetric

            m = LPIPSMetric("vgg" if name.endswith("vgg") else "alex", pnet_rand=lpips_rand, device=device,
                            weights_dir=weights_dir)
            columns[m.column] = m(sr, hr)
    need_points = "aed" in extra or "identity" in extra or ("regions" in extra and classes is None)
    if need_points:
        from facesr.metrics import face

        lm = landmarker or face._default_landmarker()
        lm_hr = np.asarray(lm(hr), dtype=np.float64)
        if "regions" in extra and classes is None:
            from facesr.priors.parsing import parse_from_landmarks

            h, w = hr.shape[1:3]  # no face found: an all-"other" map, so its regions score NaN
            classes = np.stack([parse_from_landmarks(p, h, w) for p in lm_hr.astype(np.float32)])
        if "aed" in extra:
            columns["aed[68]"] = face.landmark_aed(sr, hr, lm, lm_hr=lm_hr)
        if "identity" in extra:
            columns["identity[dlib]"] = face.identity_similarity(sr, hr, model="dlib", lm_hr=lm_hr)
    if "regions" in extra:
        from facesr.metrics.regions import region_psnr

        for p in protos:
            columns.update(region_psnr(sr, hr, classes, protocol=p))
    settings = {p.name: p.description for p in protos}
    return EvalResult(ids, columns, settings)


def _check_names(protocols: Sequence[str], extra: Sequence[str]) -> list[Protocol]:
    """The protocols by name, once every protocol and extra name is known to be valid."""
    protos = [get_protocol(p) for p in protocols]
    unknown = [e for e in extra if e not in EXTRAS]
    if unknown:
        raise ConfigError(f"unknown extra metric(s) {unknown}", hint=f"choose from {', '.join(EXTRAS)}")
    return protos


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


def load_pairs(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(ids, sr, hr)`` uint8 RGB stacks of the images paired by stem; DatasetError on any mismatch."""
    from PIL import Image

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
    ids = sorted(gt)
    sr = [np.asarray(Image.open(pred[i]).convert("RGB")) for i in ids]
    hr = [np.asarray(Image.open(gt[i]).convert("RGB")) for i in ids]
    bad = [i for i, a, b in zip(ids, sr, hr) if a.shape != b.shape]
    if bad:
        k = ids.index(bad[0])
        raise DatasetError(f"{len(bad)} of {len(ids)} predictions differ in size from their ground truth "
                           f"(e.g. {bad[0]}: {sr[k].shape[:2]} vs {hr[k].shape[:2]})")
    if len({a.shape for a in hr}) > 1:
        raise DatasetError(f"ground-truth images in {gt_dir} differ in size; evaluate one size at a time")
    return ids, np.stack(sr), np.stack(hr)


def evaluate_folders(pred_dir: str | os.PathLike, gt_dir: str | os.PathLike, protocols: Sequence[str] = (DEFAULT_PROTOCOL,),
                     extra: Sequence[str] = (), *, out_dir: str | os.PathLike | None = None, n_grid: int = 6,
                     **kwargs) -> EvalResult:
    """:func:`evaluate_arrays` on the images of two folders paired by file stem.

    With ``out_dir``, also writes ``metrics.md``, ``metrics.csv`` and ``grid.png`` there (``result.files``).
    """
    _check_names(protocols, extra)  # fail on a bad name before reading any image
    ids, sr, hr = load_pairs(pred_dir, gt_dir)
    result = evaluate_arrays(sr, hr, ids, protocols=protocols, extra=extra, **kwargs)
    result.settings = {"predictions": str(pred_dir), "ground truth": str(gt_dir), **result.settings}
    if out_dir is not None:
        result.files = write_report(result, out_dir, sr, hr, n_grid)
    return result


def comparison_grid(sr: np.ndarray, hr: np.ndarray, labels: Sequence[str] | None = None, n: int = 6) -> np.ndarray:
    """uint8 RGB grid of ``n`` evenly spaced samples, one row each: GT | prediction | |error| × 4."""
    from PIL import Image, ImageDraw

    idx = np.unique(np.linspace(0, len(sr) - 1, num=min(n, len(sr))).round().astype(int))
    h, w = hr.shape[1:3]
    head, gap = 14, 2
    canvas = Image.new("RGB", (3 * w + 4 * gap, head + len(idx) * (h + head) + gap), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, title in enumerate(("GT", "prediction", f"|error| x{ERROR_GAIN}")):
        draw.text((gap + c * (w + gap) + 2, 1), title, fill=(0, 0, 0))
    for r, i in enumerate(idx):
        err = np.abs(sr[i].astype(np.int16) - hr[i].astype(np.int16)).mean(-1) * ERROR_GAIN
        err = np.repeat(np.clip(err, 0, 255).astype(np.uint8)[..., None], 3, axis=-1)
        y = head + r * (h + head)
        if labels is not None:
            draw.text((gap + 2, y), str(labels[i]), fill=(0, 0, 0))
        for c, tile in enumerate((hr[i], sr[i], err)):
            canvas.paste(Image.fromarray(np.ascontiguousarray(tile)), (gap + c * (w + gap), y + head - 2))
    return np.asarray(canvas)


def write_grid(path: str | os.PathLike, sr: np.ndarray, hr: np.ndarray, labels: Sequence[str] | None = None,
               n: int = 6) -> Path:
    from PIL import Image

    path = Path(path)
    Image.fromarray(comparison_grid(sr, hr, labels, n)).save(path)
    return path


def write_report(result: EvalResult, out_dir: str | os.PathLike, sr: np.ndarray, hr: np.ndarray,
                 n_grid: int = 6) -> dict[str, Path]:
    """``metrics.md``, ``metrics.csv`` and ``grid.png`` in ``out_dir`` (created)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    first = next((k for k in result.columns if k.startswith("psnr[")), None)
    labels = result.ids if first is None else [f"{i}  {first} {v:.2f}" for i, v in zip(result.ids, result.columns[first])]
    return {
        "markdown": result.write_markdown(out / "metrics.md"),
        "csv": result.write_csv(out / "metrics.csv"),
        "grid": write_grid(out / "grid.png", sr, hr, labels, n_grid),
    }


__all__ = [
    "EXTRAS",
    "EvalResult",
    "comparison_grid",
    "format_value",
    "evaluate_arrays",
    "evaluate_folders",
    "list_images",
    "load_pairs",
    "write_grid",
    "write_report",
]
