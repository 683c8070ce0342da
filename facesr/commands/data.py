"""``facesr data ...``: make a store (prepare: ingest → crop → degrade) and look inside one (info, show).

Parse, call the library, render (rendering helpers in :mod:`facesr.commands._render`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer
from rich import box
from rich.table import Table

from facesr.commands import _options as O
from facesr.commands import _render as R

app = typer.Typer(help="Build and inspect stores: ingest, crop and degrade a dataset; info; picture grids.",
                  no_args_is_help=True)


@app.command("prepare")
def prepare(
    ctx: typer.Context,
    dataset: O.Dataset = None,
    root: O.Root = None,
    store: O.Store = None,
    crop: O.Crop = None,
    lr: O.LR = None,
    chunk: O.Chunk = None,
    workers: O.Workers = None,
    limit: O.Limit = None,
    max_pixels: O.MaxPixels = None,
    min_side: O.MinSide = None,
    scheduler: O.Scheduler = None,
    timeout: O.ClusterTimeout = None,
    split_file: O.SplitFile = None,
    overwrite: O.Overwrite = False,
    debug: O.Debug = False,
    json_out: O.Json = False,
    quiet: O.Quiet = False,
) -> None:
    """Ingest, crop and degrade a dataset into a store (resumable; rerun to finish an interrupted run)."""
    from facesr.commands.priors import pipeline_args
    from facesr.pipeline.build import prepare_store

    missing = [f for f, v in (("--dataset", dataset), ("--root", root), ("--store", store)) if not v]
    if missing:
        raise typer.BadParameter(f"missing {', '.join(missing)}", param_hint="'facesr data prepare'")
    options, source, run = pipeline_args(
        dataset=dataset, root=root, split_file=split_file, limit=limit, crop=crop, lr=lr, chunk=chunk, priors=False,
        max_pixels=max_pixels, min_side=min_side, workers=workers, scheduler=scheduler, debug=O.state(ctx).debug,
        overwrite=overwrite, timeout=timeout)
    with R.reporter(quiet or json_out) as rep:
        report = prepare_store(store, options, source=source, run=run, reporter=rep)
    R.report_build(report, next_step=f"facesr priors build --store {store}   (or: facesr data info {store})",
                   json_out=json_out, quiet=quiet)


def store_summary(store: Any) -> dict[str, Any]:
    """Everything ``facesr data info`` shows, as plain data (also its ``--json`` output): ``FaceStore.info()``."""
    from facesr.data.store import FaceStore

    fs = store if isinstance(store, FaceStore) else FaceStore.open(store)
    return fs.info().as_dict()


_PROVENANCE_FIRST = ("source", "crop", "lr", "codecs", "versions", "hr_size")
_HEADER_KEYS = ("schema_version", "facesr_version", "created", "chunk")


@app.command("info")
def info(
    store_arg: O.StoreArg = None,
    store: O.Store = None,
    json_out: O.Json = False,
    reasons: int = typer.Option(5, "--reasons", min=0, help="How many failure reasons to list."),
    quiet: O.Quiet = False,
) -> None:
    """Samples, splits, failures, arrays (shape, dtype, chunks, codec, stored size) and provenance."""
    store = O.resolve_store(store_arg, store)
    s = store_summary(store)
    if (out := R.console_unless_json(s, json_out)) is None:
        return
    a = s["attrs"]
    out.print(f"[bold]{s['path']}[/]: {s['n']} samples in {s['chunks']} chunks of {s['chunk']} "
              f"(schema {a.get('schema_version')}, facesr {a.get('facesr_version')}, created {a.get('created')})")
    splits = "  ".join(f"{k} {v['samples']} ({v['usable']} usable)" for k, v in s["splits"].items())
    out.print(f"splits: {splits}")
    if s["failures"]:
        out.print(f"failures: {s['failures']}")
        for r in s["failure_reasons"][:reasons]:
            out.print(f"  {r['count']:>6} × {R.short(r['reason'], 100)}  (e.g. {r['first_id']})")
        more = len(s["failure_reasons"]) - reasons
        if more > 0:
            out.print(f"  … {more} more reasons (--reasons N, or --json)")
    else:
        out.print("failures: 0")
    if s.get("building"):
        out.print(f"[bold red]building[/]: {s['building'].get('holder')} since {s['building'].get('started')} "
                  "(running or interrupted: training and evaluation refuse the store until it commits)")
    for snap in s.get("snapshots", []):
        out.print(f"snapshot {snap['id']}: {snap['files']} files, {R.size(snap['bytes'])}"
                  f"{' (being read)' if snap.get('readers') else ''}")

    t = Table(title=f"arrays (per sample; chunks of {s['chunk']} along N)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for col, just in (("name", "left"), ("shape", "right"), ("dtype", "left"), ("codec", "left"),
                      ("stored", "right"), ("ratio", "right")):
        t.add_column(col, justify=just, no_wrap=True)
    for name, arr in s["arrays"].items():
        r = arr["ratio"]
        t.add_row(name, "×".join(map(str, arr["shape"][1:])) or "-", arr["dtype"], arr["codec_short"],
                  R.size(arr["stored_bytes"]), "" if not r else f"{r:.2f}×" if r < 10 else f"{r:.0f}×")
    out.print(t)
    for name, arr in s["arrays"].items():
        if arr["attrs"]:
            out.print(f"  {name}: {R.short(arr['attrs'], 200)}", soft_wrap=True)

    t = Table(title="provenance", title_justify="left", show_header=False)
    t.add_column("key")
    t.add_column("value")
    for key in _PROVENANCE_FIRST:
        if key in a:
            t.add_row(key, R.short(a[key], 110))
    for key, v in a.items():
        if key not in _PROVENANCE_FIRST + _HEADER_KEYS:
            t.add_row(key, R.short(v, 110))
    out.print(t)
    R.hint_next(out, f"facesr data show {store} -n 16 -o grid.png", quiet=quiet)


@app.command("show")
def show(
    store_arg: O.StoreArg = None,
    store: O.Store = None,
    n: O.Samples = 16,
    out: O.OutPng = Path("grid.png"),
    split: O.Split = None,
    seed: O.Seed = 0,
    lr: Optional[str] = typer.Option(None, "--lr", help="LR set, e.g. bicubic-pil:16 (default: the first)."),
    per_row: int = typer.Option(4, "--per-row", min=1, help="Samples per grid row."),
    json_out: O.Json = False,
) -> None:
    """Write a labelled grid: per sample HR | LR (nearest) | heatmap overlay | parsing overlay."""
    from facesr.data.visualize import sample_grid, save_png

    store = O.resolve_store(store_arg, store)
    img = sample_grid(store, n=n, split=split, seed=seed, lr=lr, per_row=per_row)
    save_png(out, img)
    if (console := R.console_unless_json(R.grid_json(out, img, n=n, split=split, seed=seed), json_out)) is None:
        return
    console.print(f"wrote {out} ({img.shape[1]}×{img.shape[0]}): {n} random usable samples"
                          f"{' of ' + split if split else ''} (seed {seed}; fewer if the split is smaller)")


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
