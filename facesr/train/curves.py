"""``curves.png`` of a run folder: training loss per step and validation PSNR/SSIM against bicubic.

Drawn from ``steps.csv`` and ``metrics.csv`` alone, so it can be redrawn for any run, finished or not
(:func:`plot_curves`); the trainer redraws it after every validation.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from facesr.train.logging import read_csv

__all__ = ["plot_curves"]


def _floats(rows: list[dict[str, str]], key: str) -> list[float]:
    out = []
    for r in rows:
        try:
            out.append(float(r.get(key, "nan")))
        except ValueError:
            out.append(math.nan)
    return out


def _smooth(values: list[float], window: int) -> list[float]:
    """Trailing mean over ``window`` finite values: raw per-step losses are too noisy to read."""
    out, buf = [], []
    for v in values:
        if math.isfinite(v):
            buf.append(v)
            buf = buf[-window:]
        out.append(sum(buf) / len(buf) if buf else math.nan)
    return out


def plot_curves(run: str | os.PathLike, out: str | os.PathLike | None = None) -> Path | None:
    """Write ``<run>/curves.png`` (or ``out``); None when the run has no logged steps yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = Path(run)
    steps = read_csv(run / "steps.csv") if (run / "steps.csv").exists() else []
    vals = read_csv(run / "metrics.csv") if (run / "metrics.csv").exists() else []
    if not steps:
        return None
    psnr_key = next((k for k in (vals[0] if vals else {}) if k.startswith("psnr[")), None)
    fig, axes = plt.subplots(1, 3 if psnr_key else 1, figsize=(15 if psnr_key else 5, 3.6), squeeze=False)
    ax = axes[0, 0]
    x = _floats(steps, "step")
    loss = _floats(steps, "loss")
    ax.plot(x, loss, lw=0.5, alpha=0.35, color="tab:blue")
    ax.plot(x, _smooth(loss, max(1, len(loss) // 50)), lw=1.5, color="tab:blue", label="loss (smoothed)")
    ax.set_xlabel("step"), ax.set_title("training loss"), ax.legend(loc="upper right")
    if psnr_key:
        proto = psnr_key[len("psnr["):-1]
        vx = _floats(vals, "step")
        for ax, metric in zip(axes[0, 1:], ("psnr", "ssim")):
            key = f"{metric}[{proto}]"
            ax.plot(vx, _floats(vals, key), "o-", ms=3, label="model")
            base = [v for v in _floats(vals, f"bicubic_{key}") if math.isfinite(v)]
            if base:
                ax.axhline(base[-1], color="grey", ls="--", label=f"bicubic {base[-1]:.4g}")
            ax.set_xlabel("step"), ax.set_title(f"val {metric.upper()} ({proto} protocol)")
            ax.legend(loc="lower right")
    fig.tight_layout()
    path = Path(out) if out is not None else run / "curves.png"
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)  # a reader never sees half a PNG
    return path
