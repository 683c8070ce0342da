"""Run logs: per-step and per-validation CSV files plus TensorBoard events.

* ``steps.csv`` — one row per optimizer step (rank 0): ``step, epoch, batch, loss, <terms…>, lr, skipped,
  samples_per_s, time``. Rows are appended and flushed as they happen; the loss columns are what the
  exact-resume test compares.
* ``metrics.csv`` — one row per validation: ``epoch, step, kind, psnr[p], ssim[p], lpips, criterion,
  bicubic psnr[p], bicubic ssim[p], lr, best``.
* ``config.yaml``, ``run.json`` — :func:`write_run_files`.
* progress for people — a :class:`Reporter` (the CLI's draws a rich progress bar).
* ``tb/`` — TensorBoard scalars (``train/*`` every ``log_every`` steps, ``val/*`` per validation) and grids.

On resume, :meth:`RunLog.truncate` drops rows written after the checkpoint being resumed (their steps
will be re-run), and TensorBoard is opened with ``purge_step`` so its curves have no duplicates either.
The header is fixed by the first row written; later rows with new keys are an error, rows with missing
keys get empty cells.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class CsvLog:
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fields: list[str] | None = None
        self._fh = None
        if self.path.exists():
            with open(self.path, newline="") as fh:
                header = fh.readline()
            if header.strip():
                self._fields = next(csv.reader([header]))

    def write(self, row: dict[str, Any]) -> None:
        if self._fields is None:
            self._fields = list(row)
            with open(self.path, "w", newline="") as fh:
                csv.writer(fh).writerow(self._fields)
        extra = [k for k in row if k not in self._fields]
        if extra:
            raise ValueError(f"{self.path.name}: new columns {extra} after the header was written")
        if self._fh is None:
            self._fh = open(self.path, "a", newline="")
        csv.writer(self._fh).writerow([_fmt(row.get(k, "")) for k in self._fields])
        self._fh.flush()

    def truncate(self, max_step: int) -> int:
        """Keep only complete rows with ``step <= max_step`` (no row left: no file); returns how many were dropped."""
        self.close()
        if not self.path.exists():
            return 0
        text = self.path.read_text()
        lines = text.splitlines(keepends=True)
        if not lines:
            return 0
        header = next(csv.reader([lines[0]]))
        si = header.index("step") if "step" in header else None

        def step_of(line: str) -> int | None:
            """The row's step; None for a row cut by a kill (no newline) or otherwise malformed."""
            cells = next(csv.reader([line]), []) if line.endswith("\n") else []
            if si is None or len(cells) != len(header):
                return None
            try:
                return int(cells[si])
            except ValueError:
                return None

        keep = [lines[0]] + [ln for ln in lines[1:] if (step := step_of(ln)) is not None and step <= max_step]
        dropped = len(lines) - len(keep)
        if len(keep) == 1:  # no row left (a fresh run): start over, the columns may differ
            self.path.unlink()
            self._fields = None
            return dropped
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text("".join(keep))
        os.replace(tmp, self.path)
        self._fields = header
        return dropped

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        return repr(v)  # full precision: resume comparisons read these back
    return str(v)


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


class RunLog:
    """The run's CSV files and TensorBoard writer (rank 0 only)."""

    def __init__(self, out: Path, *, resume_step: int | None = None, tensorboard: bool = True) -> None:
        self.out = Path(out)
        self.steps = CsvLog(self.out / "steps.csv")
        self.metrics = CsvLog(self.out / "metrics.csv")
        if resume_step is not None:
            self.steps.truncate(resume_step)
            self.metrics.truncate(resume_step)
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except Exception:  # pragma: no cover - tensorboard missing: CSV only
                SummaryWriter = None
            if SummaryWriter is not None:
                kw = {"purge_step": resume_step + 1} if resume_step is not None else {}
                self.tb = SummaryWriter(log_dir=str(self.out / "tb"), **kw)

    def step(self, row: dict[str, Any], *, scalars: bool) -> None:
        self.steps.write(row)
        if scalars and self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch", "batch", "time") and isinstance(v, (int, float)):
                    self.tb.add_scalar(f"train/{k}", v, row["step"])

    def validation(self, row: dict[str, Any]) -> None:
        from facesr.train.curves import plot_curves

        self.metrics.write(row)
        plot_curves(self.out)
        if self.tb is not None:
            for k, v in row.items():
                if k not in ("step", "epoch") and isinstance(v, (int, float)) and not isinstance(v, bool):
                    self.tb.add_scalar(f"val/{k}", v, row["step"])
            self.tb.flush()

    def image(self, tag: str, img_hwc, step: int) -> None:
        if self.tb is not None:
            self.tb.add_image(tag, img_hwc, step, dataformats="HWC")

    def close(self) -> None:
        self.steps.close()
        self.metrics.close()
        if self.tb is not None:
            self.tb.close()


class Reporter:
    """Receives progress events; this base class ignores them (the library never prints)."""

    def start(self, *, total_steps: int, first_step: int, steps_per_epoch: int, info: dict) -> None: ...

    def step(self, row: dict[str, Any]) -> None: ...

    def validation(self, row: dict[str, Any]) -> None: ...

    def message(self, text: str) -> None: ...

    def end(self, result: TrainResult) -> None: ...


@dataclass(frozen=True)
class TrainResult:
    out: Path
    state: dict
    reason: str  # epochs | early_stop | budget_steps | budget_time | interrupted | finished
    last_validation: dict | None


def write_run_files(out: Path, config_yaml: str, store, *, world_size: int, device: str, amp: str) -> None:
    """``config.yaml`` (the resolved config) and ``run.json`` (store path, snapshot id and attributes, world
    size, versions): what a run was trained on, for provenance and for ``--resume``."""
    import json
    import platform

    import torch

    from facesr import __version__

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config_yaml)
    run = {"store": str(store.path) if store.path is not None else None,
           "store_snapshot": getattr(store, "snapshot_id", None),
           "store_attrs": {k: v for k, v in store.attrs.items() if isinstance(v, (str, int, float, bool))},
           "world_size": world_size, "torch": torch.__version__, "python": platform.python_version(),
           "device": device, "amp": amp, "facesr": __version__}
    (out / "run.json").write_text(json.dumps(run, indent=2))


__all__ = ["CsvLog", "Reporter", "RunLog", "TrainResult", "read_csv", "write_run_files"]
