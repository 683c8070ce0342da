"""`facesr demo`: faces from a public-domain photo → store → priors → grid, on any machine, offline."""

from __future__ import annotations

from pathlib import Path

import typer

from facesr.commands import _options as O
from facesr.commands import _render as R


def demo(
    out: Path = typer.Option(Path("facesr-demo"), "-o", "--out",
                             help="Folder for faces/, store.zarr, grid.png, run/, eval_grid.png and report.md."),
    n: O.Faces = 56,
    workers: O.Workers = None,
    json_out: O.Json = False,
    quiet: O.Quiet = False,
) -> None:
    """Make ~56 faces from scikit-image's astronaut portrait; build priors, train briefly, evaluate, report."""
    from facesr.demo import run_demo

    console = R.err_console() if json_out else R.out_console()
    quiet = quiet or json_out

    def on_step(name: str, summary: str, seconds: float) -> None:
        if not quiet:
            console.print(f"[bold green]✓[/] {name} ({seconds:.1f} s): {summary}")

    with R.reporter(quiet) as rep:
        ctx = run_demo(out, n_faces=n, workers=workers, on_step=on_step, reporter=rep)
    total = sum(ctx.timings.values())
    if json_out:
        R.emit_json({"out": str(out), "seconds": round(total, 2), "timings": ctx.timings, "summaries": ctx.summaries,
                     "made": {k: str(v) for k, v in ctx.made.items()}, "next": ctx.next_steps})
        return
    console.print(f"done in {total:.1f} s. Report: {out}/report.md (store.zarr, grid.png, run/, eval_grid.png)")
    if quiet:
        return
    console.print("next:")
    for cmd in [*ctx.next_steps, f"facesr priors show {out}/store.zarr -n 16 -o grid16.png"]:
        console.print(f"  {cmd}")
    console.print("  on real data: facesr priors build --dataset celeba --root DIR --store stores/celeba.zarr --heatmap released")


def register(root: typer.Typer) -> None:
    root.command("demo")(demo)
