"""``facesr priors ...``: build, status, verify, show. Parse, call :mod:`facesr.pipeline`, render."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from facesr.commands import _options as O
from facesr.commands import _render as R

app = typer.Typer(help="Build and inspect the priors (landmarks, part boxes, heatmaps, parsing) of a store.",
                  no_args_is_help=True)


def pipeline_args(*, dataset, root, split_file=None, limit=None, crop=None, lr=None, chunk=None, priors=True,
                  detector="landmarks", parser="landmarks", heatmap="paper", max_pixels=None, min_side=None,
                  workers=None, scheduler=None, debug=False, strict=False, min_usable=None, overwrite=False,
                  timeout=None, weights_dir=None, yoloworld=None):
    """CLI values → ``(BuildOptions, SourceSpec | None, RunOptions)`` for :func:`facesr.pipeline.build.build_store`
    (``data prepare`` and ``priors build`` share it; unset values keep the library's defaults)."""
    from facesr.pipeline.options import BuildOptions, RunOptions, SourceSpec

    if dataset is not None and root is None:
        raise typer.BadParameter("--dataset needs --root (the dataset folder)", param_hint="'--root'")
    if dataset is None and (root is not None or split_file is not None):
        raise typer.BadParameter("--root/--split-file need --dataset", param_hint="'--dataset'")
    source = None
    if dataset is not None:
        source = SourceSpec(dataset, root, {"split_file": str(split_file)} if split_file else {}, limit=limit)
    limits = {k: v for k, v in (("max_pixels", max_pixels), ("min_side", min_side)) if v is not None}
    detector_options = {"version": yoloworld} if yoloworld and detector.startswith("yoloworld") else {}
    options = BuildOptions(crop=crop, lr=lr or (), chunk=chunk, priors=priors, detector=detector, parser=parser,
                           detector_options=detector_options, heatmap=heatmap, **limits)
    verify = {"min_usable": min_usable} if min_usable is not None else {}
    run = RunOptions(workers=workers, scheduler=scheduler, debug=debug, strict=strict, overwrite=overwrite,
                     cluster_timeout=timeout, weights_dir=str(weights_dir) if weights_dir else None, **verify)
    return options, source, run


@app.command("build")
def build(
    ctx: typer.Context,
    store: O.Store = None,
    dataset: O.Dataset = None,
    root: O.Root = None,
    split_file: O.SplitFile = None,
    crop: O.Crop = None,
    lr: O.LR = None,
    detector: str = typer.Option("landmarks", "--detector", help="Part detector: landmarks (offline) | yoloworld."),
    yoloworld: str = typer.Option("v1", "--yoloworld",
                                  help="YOLO-World version: v1 (yolov8s-world.pt, the notebook's) | v2 (yolov8s-worldv2.pt)."),
    parser: str = typer.Option("landmarks", "--parser", help="Face parser: landmarks (offline) | bisenet."),
    heatmap: str = typer.Option("paper", "--heatmap", help="Heatmap preset: paper | released."),
    weights_dir: O.WeightsDir = None,
    chunk: O.Chunk = None,
    limit: O.Limit = None,
    max_pixels: O.MaxPixels = None,
    min_side: O.MinSide = None,
    workers: O.Workers = None,
    scheduler: O.Scheduler = None,
    timeout: O.ClusterTimeout = None,
    strict: O.Strict = False,
    min_usable: O.MinUsable = None,
    debug: O.Debug = False,
    overwrite: O.Overwrite = False,
    json_out: O.Json = False,
    quiet: O.Quiet = False,
) -> None:
    """Run every stage (ingest, crop, degrade, landmarks, detect, heatmap, parse, verify); resumes."""
    from facesr.pipeline.build import build_store

    if not store:
        raise typer.BadParameter("missing --store", param_hint="'--store'")
    options, source, run = pipeline_args(
        dataset=dataset, root=root, split_file=split_file, limit=limit, crop=crop, lr=lr, chunk=chunk,
        detector=detector, parser=parser, heatmap=heatmap, max_pixels=max_pixels, min_side=min_side, workers=workers,
        scheduler=scheduler, debug=O.state(ctx).debug, strict=strict, min_usable=min_usable, overwrite=overwrite,
        timeout=timeout, weights_dir=weights_dir, yoloworld=yoloworld)
    with R.reporter(quiet or json_out) as rep:
        report = build_store(store, options, source=source, run=run, reporter=rep)
    R.report_build(report, next_step=f"facesr priors show {store} -n 16 -o grid.png", json_out=json_out, quiet=quiet)


@app.command("status")
def status(
    store_arg: O.StoreArg = None,
    store: O.Store = None,
    json_out: O.Json = False,
    quiet: O.Quiet = False,
) -> None:
    """Stages done/pending per chunk, with their keys."""
    from facesr.pipeline.status import pipeline_status

    store = O.resolve_store(store_arg, store)
    st = pipeline_status(store)
    if (out := R.console_unless_json(st, json_out)) is None:
        return
    table = Table(title=f"{st['store']}: {st['n']} samples in {st['chunks']} chunks of {st['chunk']}")
    for col in ("stage", "key", "chunks done", "pending chunks", "state"):
        table.add_column(col)
    for name, s in st["stages"].items():
        pend = s["pending"]
        pend_txt = "-" if not pend else (", ".join(map(str, pend[:12])) + (" ..." if len(pend) > 12 else ""))
        table.add_row(name, s["key"], f"{s['done']}/{s['total']}", pend_txt,
                      "[green]done[/]" if s["complete"] else "[yellow]pending[/]")
    out.print(table)
    if "verify" in st:
        out.print(f"last verify: {'PASS' if st['verify']['ok'] else 'FAIL'}")
    if any(not s["complete"] for s in st["stages"].values()) and not quiet:
        out.print(f"resume with: facesr priors build --store {store} (plus --dataset/--root if crop is pending)")


@app.command("verify")
def verify(
    store_arg: O.StoreArg = None,
    store: O.Store = None,
    strict: O.Strict = False,
    min_usable: O.MinUsable = None,
    json_out: O.Json = False,
) -> None:
    """Check shapes, ranges, NaNs and coverage; exit code 1 when the store fails."""
    from facesr.data.store import FaceStore
    from facesr.pipeline.lock import Ledger
    from facesr.pipeline.verify import verify_store

    store = O.resolve_store(store_arg, store)
    fs = FaceStore.open(store)
    kw = {"min_usable": min_usable} if min_usable is not None else {}
    report = verify_store(fs, ledger=Ledger(store), strict=strict, **kw)
    if json_out:
        R.emit_json(report)
    else:
        R.print_verify(R.out_console(), report)
    if not report["ok"]:
        raise typer.Exit(1)


def _check_split(fs, split: str | None) -> None:
    """A split the store does not have is one line naming the ones it has (not an empty picture)."""
    from facesr.errors import DatasetError

    if split is None:
        return
    have = sorted(set(fs.info().splits))
    if split not in have:
        raise DatasetError(f"{fs.info().path} has no {split!r} split", hint=f"splits here: {', '.join(have) or 'none'}")


@app.command("show")
def show(
    store_arg: O.StoreArg = None,
    store: O.Store = None,
    n: O.Samples = 16,
    out: O.OutPng = Path("grid.png"),
    split: O.Split = None,
    seed: O.Seed = 0,
    json_out: O.Json = False,
) -> None:
    """Write a grid: HR | heatmap overlay | parsing overlay | part boxes, per sample."""
    from facesr.data.images import write_png
    from facesr.data.store import FaceStore
    from facesr.data.visualize import priors_grid

    store = O.resolve_store(store_arg, store)
    fs = FaceStore.open(store)
    _check_split(fs, split)
    img = priors_grid(fs, n, split=split, seed=seed)
    write_png(out, img)
    if (console := R.console_unless_json(R.grid_json(out, img, n=n, split=split, seed=seed), json_out)) is None:
        return
    console.print(f"wrote {out} ({img.shape[1]}x{img.shape[0]}): HR | heatmap | parsing | boxes for {n} "
                          "samples")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="priors")
