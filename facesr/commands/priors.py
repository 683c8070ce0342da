"""`facesr priors ...` commands: build, status, verify, show. Parse, call :mod:`facesr.pipeline`, render."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Build and inspect the priors (landmarks, part boxes, heatmaps, parsing) of a store.",
                  no_args_is_help=True)

_out = Console(highlight=False)
_err = Console(stderr=True, highlight=False)


@app.command("build")
def build(
    store: Path = typer.Option(..., "--store", help="The zarr store (created when absent and --dataset is given)."),
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Source name (celeba, folder, ...) to create/fill it."),
    root: Optional[Path] = typer.Option(None, "--root", help="Dataset folder."),
    crop: Optional[str] = typer.Option(None, "--crop", help="aligned | landmarks | resize (default: as recorded, else aligned)."),
    lr: Optional[str] = typer.Option(None, "--lr", help="LR sets to add, e.g. bicubic-pil:16,bicubic-pil:32."),
    detector: str = typer.Option("landmarks", "--detector", help="Part detector: landmarks (offline) | yoloworld."),
    parser: str = typer.Option("landmarks", "--parser", help="Face parser: landmarks (offline) | bisenet."),
    heatmap: str = typer.Option("paper", "--heatmap", help="Heatmap preset: paper | released."),
    weights_dir: Optional[Path] = typer.Option(None, "--weights-dir", help="Weights folder (default $FACESR_WEIGHTS)."),
    chunk: Optional[int] = typer.Option(None, "--chunk", help="Rows per chunk when creating the store (default 256)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N records."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local workers (default: all cores)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="sync | threads | processes | tcp://host:port."),
    debug: bool = typer.Option(False, "--debug", help="Synchronous scheduler, full tracebacks."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Rebuild the store from scratch."),
    json_out: bool = typer.Option(False, "--json", help="Print the build report as JSON."),
) -> None:
    """Run every stage (ingest, crop, degrade, landmarks, detect, heatmap, parse, verify); resumes."""
    import os

    from facesr.commands._pipeline_ui import RichReporter, dump_json, print_build, print_verify
    from facesr.pipeline.build import build_store

    if debug:
        os.environ["FACESR_DEBUG"] = "1"
    with RichReporter(_err) as rep:
        report = build_store(
            store, dataset=dataset, root=root, crop=crop, lr=lr, chunk=chunk, limit=limit, detector=detector,
            parser=parser, heatmap=heatmap, weights_dir=weights_dir, workers=workers, scheduler=scheduler,
            debug=debug, overwrite=overwrite, reporter=rep,
        )
    if json_out:
        _out.print_json(dump_json(report.to_dict()))
    else:
        print_build(_out, report)
        if report.verify is not None:
            print_verify(_out, report.verify)
    if report.verify is not None and not report.verify["ok"]:
        raise typer.Exit(1)
    _out.print(f"next: facesr priors show {store} -n 16 -o grid.png")


@app.command("status")
def status(
    store: Path = typer.Argument(..., help="The zarr store."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Stages done/pending per chunk, with their keys."""
    from facesr.commands._pipeline_ui import dump_json
    from facesr.pipeline.build import pipeline_status

    st = pipeline_status(store)
    if json_out:
        _out.print_json(dump_json(st))
        return
    table = Table(title=f"{st['store']}: {st['n']} samples in {st['chunks']} chunks of {st['chunk']}")
    for col in ("stage", "key", "chunks done", "pending chunks", "state"):
        table.add_column(col)
    for name, s in st["stages"].items():
        pend = s["pending"]
        pend_txt = "-" if not pend else (", ".join(map(str, pend[:12])) + (" ..." if len(pend) > 12 else ""))
        table.add_row(name, s["key"], f"{s['done']}/{s['total']}", pend_txt,
                      "[green]done[/]" if s["complete"] else "[yellow]pending[/]")
    _out.print(table)
    if "verify" in st:
        _out.print(f"last verify: {'PASS' if st['verify']['ok'] else 'FAIL'}")
    if any(not s["complete"] for s in st["stages"].values()):
        _out.print(f"resume with: facesr priors build --store {store} (plus --dataset/--root if crop is pending)")


@app.command("verify")
def verify(
    store: Path = typer.Argument(..., help="The zarr store."),
    strict: bool = typer.Option(False, "--strict", help="Fail on warnings (faces without detections) too."),
    json_out: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Check shapes, ranges, NaNs and coverage; exit code 1 when the store fails."""
    from facesr.commands._pipeline_ui import dump_json, print_verify
    from facesr.data.store import FaceStore
    from facesr.pipeline.lock import Ledger
    from facesr.pipeline.verify import verify_store

    fs = FaceStore.open(store)
    report = verify_store(fs, ledger=Ledger(store), strict=strict)
    if json_out:
        _out.print_json(dump_json(report))
    else:
        print_verify(_out, report)
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("show")
def show(
    store: Path = typer.Argument(..., help="The zarr store."),
    n: int = typer.Option(16, "-n", help="How many samples."),
    out: Path = typer.Option(Path("grid.png"), "-o", "--out", help="PNG to write."),
    split: Optional[str] = typer.Option(None, "--split", help="train | val | test (default: all)."),
    seed: int = typer.Option(0, "--seed", help="Shift which samples are picked."),
) -> None:
    """Write a grid: HR | heatmap overlay | parsing overlay | part boxes, per sample."""
    from facesr.data.images import write_png
    from facesr.data.store import FaceStore
    from facesr.pipeline.show import priors_grid

    fs = FaceStore.open(store)
    img = priors_grid(fs, n, split=split, seed=seed)
    write_png(out, img)
    _out.print(f"wrote {out} ({img.shape[1]}x{img.shape[0]}): HR | heatmap | parsing | boxes for {n} samples")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="priors")
