"""Writers of :class:`facesr.metrics.evaluate.EvalResult`: a markdown page, a CSV row per image, a grid.

``write_report(result, out_dir)`` writes ``metrics.md`` (means, baselines, settings), ``metrics.csv`` (one
row per image) and, when the result kept samples (``grid_n``), ``grid.png``
(:func:`facesr.data.visualize.comparison_grid`). ``resolution_table(results)`` is the multi-resolution
layout of the UFVNet paper: one row per input LR resolution, one column per metric.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["resolution_rows", "resolution_table", "to_markdown", "write_csv", "write_report"]


def to_markdown(result) -> str:
    from facesr.metrics.evaluate import format_value

    means, nans = result.means(), result.nan_counts()
    lines = [f"# facesr eval — {len(result.ids)} images", ""]
    lines += [f"- {k}: {v}" for k, v in result.settings.items()]
    base = list(result.baselines)
    lines += ["", "| metric | mean | " + "".join(f"{b} | " for b in base) + "images | no value |",
              "| --- " * (4 + len(base)) + "|"]
    bmeans = {b: result.means(b) for b in base}
    for k, v in means.items():
        cells = "".join(f"{format_value(k, bmeans[b].get(k, float('nan')))} | " for b in base)
        lines.append(f"| {k} | {format_value(k, v)} | {cells}{len(result.ids) - nans[k]} | {nans[k]} |")
    return "\n".join(lines) + "\n"


def write_csv(result, path: str | os.PathLike) -> Path:
    path = Path(path)
    names = list(result.columns)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", *names])
        for i, id_ in enumerate(result.ids):
            w.writerow([id_, *(repr(float(result.columns[n][i])) for n in names)])
    return path


def write_report(result, out_dir: str | os.PathLike, prefix: str = "") -> dict[str, Path]:
    """``{prefix}metrics.md``, ``{prefix}metrics.csv`` and (with samples) ``{prefix}grid.png`` in ``out_dir``."""
    from facesr.data.images import write_png
    from facesr.data.visualize import comparison_grid

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"markdown": result.write_markdown(out / f"{prefix}metrics.md"),
             "csv": result.write_csv(out / f"{prefix}metrics.csv")}
    if result.samples:
        first = next((k for k in result.columns if k.startswith("psnr[")), None)
        n = len(result.samples["hr"])
        labels = [str(i) if first is None else f"{i}  {first} {v:.2f}"
                  for i, v in zip(result.samples["ids"], result.columns.get(first, [float("nan")] * n))]
        files["grid"] = write_png(out / f"{prefix}grid.png", comparison_grid(result.samples, labels))
    return files


def resolution_rows(results: Mapping[str, object], baseline: str | None = None) -> list[tuple[str, dict[str, float]]]:
    """``[(lr_spec, means)]`` in the given order (``baseline``: the baseline's means instead)."""
    return [(spec, r.means(baseline) if baseline else r.means()) for spec, r in results.items()
            if baseline is None or baseline in r.baselines]


def resolution_table(results: Mapping[str, object]) -> str:
    """Markdown: one row per input resolution (UFVNet's layout), model and bicubic side by side."""
    from facesr.metrics.evaluate import format_value

    if not results:
        return ""
    names = list(next(iter(results.values())).columns)
    head = "| input | images | " + " | ".join(names) + " |"
    lines = [head, "|---" * (2 + len(names)) + "|"]
    for spec, r in results.items():
        m = r.means()
        lines.append(f"| {spec} | {len(r.ids)} | " + " | ".join(format_value(k, m.get(k, float('nan')))
                                                             for k in names) + " |")
        if "bicubic" in r.baselines:
            b = r.means("bicubic")
            lines.append(f"| {spec} bicubic | {len(r.ids)} | " + " | ".join(format_value(k, b.get(k, float('nan')))
                                                                         for k in names) + " |")
    return "\n".join(lines) + "\n"
