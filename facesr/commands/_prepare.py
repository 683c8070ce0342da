"""``facesr data prepare``: the data half of the pipeline (ingest → crop → degrade) into a new store.

Lives in its own file so that ``facesr/commands/data.py`` only mounts it (one line there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console


def prepare(
    dataset: str = typer.Option(..., "--dataset", help="Source: celeba, celeba-wild, helen, ffhq, folder, pairs."),
    root: Path = typer.Option(..., "--root", help="Dataset folder."),
    out: Path = typer.Option(..., "--out", help="The zarr store to write (e.g. stores/celeba.zarr)."),
    crop: str = typer.Option("aligned", "--crop", help="aligned (aligned CelebA) | landmarks (wild photos) | resize."),
    lr: Optional[str] = typer.Option(None, "--lr", help="LR sets, e.g. bicubic-pil:16,bilinear-progressive:16."),
    chunk: Optional[int] = typer.Option(None, "--chunk", help="Rows per chunk (default 256)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Local workers (default: all cores)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Use only the first N records."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="sync | threads | processes | tcp://host:port."),
    split_file: Optional[Path] = typer.Option(None, "--split-file", help="folder source: lines '<name> <split>'."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing store."),
    debug: bool = typer.Option(False, "--debug", help="Synchronous scheduler, full tracebacks."),
) -> None:
    """Ingest, crop and degrade a dataset into a store (resumable; rerun to finish an interrupted run)."""
    from facesr.commands._pipeline_ui import RichReporter, print_build
    from facesr.pipeline.build import prepare_store

    out_console = Console(highlight=False)
    source_options = {"split_file": str(split_file)} if split_file else None
    with RichReporter() as rep:
        report = prepare_store(
            out, dataset=dataset, root=root, crop=crop, lr=lr, chunk=chunk, limit=limit, workers=workers,
            scheduler=scheduler, debug=debug, overwrite=overwrite, source_options=source_options, reporter=rep,
        )
    print_build(out_console, report)
    out_console.print(f"next: facesr priors build --store {out}   (or: facesr data info {out})")
