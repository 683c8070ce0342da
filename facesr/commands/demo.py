"""`facesr demo`: faces from a public-domain photo → store → priors → grid, on any machine, offline."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def demo(
    out: Path = typer.Option(Path("facesr-demo"), "--out", help="Folder for faces/, store.zarr, grid.png, run/, eval_grid.png and report.md."),
    n: int = typer.Option(56, "-n", "--faces", help="How many face variants to make."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local workers (default: up to 2)."),
) -> None:
    """Make ~56 faces from scikit-image's astronaut portrait; build priors, train briefly, evaluate, report."""
    from facesr.commands._pipeline_ui import RichReporter
    from facesr.demo import run_demo

    console = Console(highlight=False)

    def on_step(name: str, summary: str, seconds: float) -> None:
        console.print(f"[bold green]✓[/] {name} ({seconds:.1f} s): {summary}")

    with RichReporter() as rep:
        ctx = run_demo(out, n_faces=n, workers=workers, on_step=on_step, reporter=rep)
    total = sum(ctx.timings.values())
    console.print(f"done in {total:.1f} s. Report: {out}/report.md (store.zarr, grid.png, run/, eval_grid.png)")
    console.print("next:")
    for cmd in [*ctx.next_steps, f"facesr priors show {out}/store.zarr -n 16 -o grid16.png"]:
        console.print(f"  {cmd}")
    console.print("  on real data: facesr priors build --dataset celeba --root DIR --store stores/celeba.zarr")


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
