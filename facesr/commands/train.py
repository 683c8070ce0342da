"""`facesr train`: resolve a preset + overrides, train (or resume) a run, render progress with rich.

Examples::

    facesr train --store celeba.zarr --preset seed000-bicubic --out runs/s000 --set loss.lpips=0
    facesr train --out runs/s000 --resume --max-minutes 20          # store/preset/config from the run
    torchrun --nproc-per-node 2 -m facesr.cli train --store ... --preset gvtnet --out runs/gvt
    facesr train --list-presets
    facesr train --preset mrrgan --show-config --set optim.lr=2e-4
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import typer

from facesr.commands import _options as O
from facesr.commands import _render as R


def _config(preset, model, overrides, out: Path, resume: bool):
    import yaml

    from facesr.errors import ConfigError
    from facesr.train.config import load_config

    if resume:
        path = out / "config.yaml"
        if not path.is_file():
            raise ConfigError(f"--resume: {path} not found", hint="start the run without --resume")
        base = yaml.safe_load(path.read_text())
        if preset and preset != base.get("preset"):
            raise ConfigError(f"--resume: the run was trained with preset {base.get('preset')!r}, not {preset!r}",
                              hint="drop --preset when resuming (the run's config.yaml is used)")
        return load_config(base=base, overrides=overrides)
    if not preset and not model:
        raise ConfigError("give --preset (and optionally --model)",
                          hint="list presets with `facesr train --list-presets`")
    return load_config(preset or None, overrides)


def _overrides(sets, model, epochs, max_steps, max_minutes, no_pretrained, device) -> list[str]:
    items = list(sets or [])
    if model:
        items.insert(0, f"model.name={model}")
    if epochs is not None:
        items.append(f"epochs={epochs}")
    if max_steps is not None:
        items.append(f"max_steps={max_steps}")
    if max_minutes is not None:
        items.append(f"max_minutes={max_minutes}")
    if device:
        items.append(f"device={device}")
    if no_pretrained:
        items.append("pretrained=false")
    return items


class RichTrainReporter:
    """Progress bar with samples/s and the loss on a terminal; plain lines otherwise (logs, CI)."""

    def __init__(self, console=None, every: int = 10) -> None:
        from rich.console import Console

        self.console = console or Console(stderr=True, highlight=False)
        self.every = max(every, 1)
        self.progress = None
        self.task = None

    def start(self, *, total_steps, first_step, steps_per_epoch, info) -> None:
        self.console.print(
            f"training {info['model']} ({info['params']:,} params) on {info['device']}, amp {info['amp']}, "
            f"{info['world_size']} process(es); {steps_per_epoch} steps/epoch, steps {first_step}→{total_steps}")
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
                TimeRemainingColumn

            self.progress = Progress(
                TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(),
                TextColumn("ep {task.fields[epoch]}  loss {task.fields[loss]}  {task.fields[rate]} img/s"),
                TimeElapsedColumn(), TimeRemainingColumn(), console=self.console)
            self.progress.start()
            self.task = self.progress.add_task("train", total=max(total_steps, 1), completed=first_step,
                                               epoch="-", loss="-", rate="-")

    def step(self, row) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=row["step"], epoch=row["epoch"], loss=f"{row['loss']:.4g}",
                                 rate=f"{row['samples_per_s']:.1f}")
        elif row["step"] % self.every == 0:
            self.console.print(f"step {row['step']:>7}  epoch {row['epoch']:>3}  loss {row['loss']:.5g}  "
                               f"lr {row['lr']:.3g}  {row['samples_per_s']:.1f} img/s")

    def validation(self, row) -> None:
        keys = [k for k in row if k.startswith(("psnr[", "ssim[", "bicubic_"))]
        vals = "  ".join(f"{k} {row[k]:.4f}" for k in keys)
        lp = row.get("lpips")
        lp_s = f"  lpips {lp:.4f}" if lp == lp else ""
        star = " *" if row.get("best") else ""
        from rich.markup import escape

        self.console.print(escape(f"val epoch {row['epoch']} step {row['step']} ({row['images']} img, {row['kind']}): "
                                  f"{vals}{lp_s}  criterion {row['criterion']:.4f}{star}"))

    def message(self, text) -> None:
        from rich.markup import escape

        self.console.print(f"[yellow]note:[/] {escape(text)}")

    def end(self, result) -> None:
        if self.progress is not None:
            self.progress.stop()
        self.console.print(f"stopped: {result.reason}; epoch {result.state['epoch']}, step {result.state['step']}; "
                           f"run in {result.out}")
        if result.reason in ("interrupted", "budget_steps", "budget_time"):
            self.console.print(f"continue with: facesr train --out {result.out} --resume")


def train(
    store: O.Store = None,
    model: str = typer.Option(None, "--model", help="Model name (overrides the preset's model.name)."),
    preset: O.Preset = None,
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Run folder (config, checkpoints, logs, grids)."),
    sets: O.Sets = [],  # noqa: B006 - typer copies list defaults
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out from checkpoints/last."),
    no_pretrained: bool = typer.Option(False, "--no-pretrained",
                                       help="Random VGG/LPIPS trunks (plumbing tests only: values are meaningless)."),
    epochs: O.Epochs = None,
    max_steps: O.MaxSteps = None,
    max_minutes: O.MaxMinutes = None,
    device: O.Device = None,
    weights_dir: O.WeightsDir = None,
    show_config: bool = typer.Option(False, "--show-config", help="Print the resolved config and exit."),
    recipe: Optional[str] = typer.Option(None, "--recipe", metavar="PRESET",
                                         help="Print PRESET's recipe card (paper / released code / facesr) and exit."),
    list_presets: bool = typer.Option(False, "--list-presets", help="List presets and exit."),
    json_out: O.Json = False,
    quiet: O.Quiet = False,
) -> None:
    """Train a model on a store from a paper preset; resumable after any interruption.

    ``--device`` defaults to the config's ``device`` (``auto`` unless a preset or ``--set`` says otherwise).
    """
    from facesr.errors import ConfigError

    if recipe:
        _print_recipe(recipe, sets, json_out)
        return
    if list_presets:
        from facesr.train.config import list_presets as _lp
        from facesr.train.config import preset_text

        rows = {name: next((ln[2:] for ln in preset_text(name).splitlines() if ln.startswith("# ")), "")
                for name in _lp()}
        if json_out:
            R.emit_json(rows)
        else:
            for name, first in rows.items():
                typer.echo(f"{name:<18} {first}")
        return
    overrides = _overrides(sets, model, epochs, max_steps, max_minutes, no_pretrained, device)
    if show_config:
        from facesr.train.config import dump_yaml

        cfg = _config(preset, model, overrides, out or Path("."), resume and out is not None)
        if json_out:
            import yaml

            R.emit_json(yaml.safe_load(dump_yaml(cfg)))
        else:
            typer.echo(dump_yaml(cfg), nl=False)
        return
    if out is None:
        raise ConfigError("--out RUN is required", hint="e.g. --out runs/seed000")
    cfg = _config(preset, model, overrides, out, resume)
    if store is None:
        run_json = out / "run.json"
        if resume and run_json.is_file():
            saved: Any = json.loads(run_json.read_text()).get("store")
            if saved:
                store = str(saved)
        if store is None:
            raise ConfigError("--store STORE is required",
                              hint="build one with `facesr data prepare ... --store STORE`")

    from facesr.runtime import resolve_device, restore_threads
    from facesr.train import distributed
    from facesr.train.trainer import train as run_training

    resolve_device(cfg.device)  # an unusable device is one line before the store is opened
    restore_threads()
    reporter = RichTrainReporter(every=cfg.log_every) if distributed.env_info().is_main and not quiet else None
    try:
        result = run_training(cfg, store, out, resume=resume, reporter=reporter, weights_dir=weights_dir)
    finally:
        distributed.cleanup()
    if json_out:
        R.emit_json({"out": str(result.out), "reason": result.reason, "state": result.state,
                     "last_validation": result.last_validation})
    if result.reason == "interrupted":
        raise typer.Exit(130)  # saved, but the job did not finish: let schedulers and scripts see that


def _print_recipe(preset: str, sets, json_out: bool) -> None:
    """``--recipe PRESET``: the preset's recipe card (facesr/train/recipe.py), the facesr column resolved."""
    from facesr.train.recipe import card_dict

    d = card_dict(preset, list(sets or []))
    if json_out:
        R.emit_json(d)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"recipe {d['preset']}: paper {d['paper']}; code {d['code']}", show_lines=True)
    for col in ("setting", "paper says", "released code says", "facesr does", "verdict"):
        table.add_column(col, overflow="fold")
    for r in d["rows"]:
        verdict = r["verdict"] + (f" ({r['note']})" if r["note"] else "")
        table.add_row(r["setting"], r["paper"], r["code"], r["facesr"], verdict)
    Console(width=200, highlight=False).print(table)


def register(root: typer.Typer) -> None:
    root.command("train")(train)
