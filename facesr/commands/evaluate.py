"""`facesr eval`: score predictions against ground truth under named protocols (the one evaluator,
:func:`facesr.metrics.evaluate.evaluate`).

Two sources of predictions:

- ``--pred DIR --gt DIR``: image files paired by file stem (:func:`facesr.metrics.sources.folder_batches`).
- ``--checkpoint RUN --store STORE [--split S]``: a trained model over a store split
  (:func:`facesr.train.inference.evaluate_run`), PIL bicubic of the same LR faces as the baseline column.
  The split defaults to ``test`` when the store has one, else ``val`` (and says so). A run trained on
  several LR arrays (UFVNet's multi-resolution sets) gets one table row per input resolution.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from facesr.commands import _options as O
from facesr.commands import _render as R
from facesr.errors import ConfigError


def _render_results(results: dict, protocol: list[str]) -> None:
    """The rich table: metric rows for one result; one row per input resolution for several."""
    from rich.markup import escape
    from rich.table import Table

    from facesr.metrics import evaluate as ev

    console = R.out_console()
    first = next(iter(results.values()))
    if len(results) == 1:
        table = Table(title=f"facesr eval — {len(first.ids)} images")
        table.add_column("metric")
        table.add_column("mean", justify="right")
        for base in first.baselines:
            table.add_column(base, justify="right")
        table.add_column("no value", justify="right")
        nans = first.nan_counts()
        bmeans = [first.means(b) for b in first.baselines]
        for name, value in first.means().items():
            cells = [ev.format_value(name, b.get(name, float("nan"))) for b in bmeans]
            table.add_row(escape(name), ev.format_value(name, value), *cells, str(nans[name]))
    else:
        table = Table(title=f"facesr eval — {len(results)} input resolutions, {len(first.ids)} images each")
        names = list(first.columns)
        table.add_column("input")
        for name in names:
            table.add_column(escape(name), justify="right")
        for spec, r in results.items():
            m = r.means()
            table.add_row(escape(spec), *(ev.format_value(k, m.get(k, float("nan"))) for k in names))
            if ev.BICUBIC in r.baselines:
                b = r.means(ev.BICUBIC)
                table.add_row(f"[dim]{escape(spec)} bicubic[/]",
                              *(f"[dim]{ev.format_value(k, b.get(k, float('nan')))}[/]" for k in names))
    console.print(table)
    for name in first.settings:
        if name in protocol:
            console.print(f"[dim]{escape(name)}: {escape(first.settings[name])}[/]")
    for r in results.values():
        for kind, path in r.files.items():
            console.print(f"wrote {kind}: {escape(str(path))}")


def eval_command(
    pred: Optional[Path] = typer.Option(None, "--pred", help="Folder of predicted images (file stems match --gt).",
                                        file_okay=False),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Folder of ground-truth images.", file_okay=False),
    checkpoint: O.Checkpoint = None,
    store: O.Store = None,
    split: Optional[str] = typer.Option(None, "--split", show_default=False,
                                        help="Store split to evaluate with --checkpoint (default: test, else val)."),
    self_ensemble: O.SelfEnsemble = False,
    protocol: O.Protocols = ["dic"],  # noqa: B006 - typer copies list defaults
    extra: O.Extras = [],  # noqa: B006
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Write metrics.md, metrics.csv and grid.png here."),
    weights_dir: O.WeightsDir = None,
    device: O.Device = "auto",
    json_out: O.Json = False,
) -> None:
    """Score predictions against ground truth; every number names its protocol."""
    from facesr.metrics import evaluate as ev
    from facesr.metrics.report import resolution_table, write_report
    from facesr.runtime import resolve_device

    ev.check_names(protocol, extra)  # a bad name fails before any image is read
    device = str(resolve_device(device))
    if pred is not None or gt is not None:
        if pred is None or gt is None or checkpoint is not None or store is not None:
            raise ConfigError("give --pred and --gt together (and neither --checkpoint nor --store)")
        if self_ensemble:
            raise ConfigError("--self-ensemble needs a model: use it with --checkpoint")
        from facesr.metrics.sources import folder_batches

        result = ev.evaluate(None, folder_batches(pred, gt), protocol, extra, grid_n=6, weights_dir=weights_dir,
                             device=device)
        result.settings = {"predictions": str(pred), "ground truth": str(gt), **result.settings}
        results = {"": result}
    elif checkpoint is not None or store is not None:
        if checkpoint is None or store is None:
            raise ConfigError("give --checkpoint and --store together")
        from facesr.train.inference import evaluate_run, load_run

        predictor = load_run(checkpoint, device=device, self_ensemble=self_ensemble)
        chosen, results = evaluate_run(predictor, store, split, protocol, extra, weights_dir=weights_dir)
        how = "as asked" if split else ("default: the store has a test split" if chosen == "test"
                                       else "default: the store has no test split")
        if not json_out:
            R.err_console().print(f"evaluating split {chosen!r} ({how})")
        for r in results.values():
            r.settings = {"checkpoint": str(checkpoint), "store": f"{store} [{chosen}]",
                          "self-ensemble": "8 flip/rot90 transforms" if self_ensemble else "off", **r.settings}
    else:
        raise ConfigError("nothing to evaluate", hint="facesr eval --pred DIR --gt DIR [--protocol dic]")

    if out is not None:
        for spec, r in results.items():
            r.files = write_report(r, out, prefix=f"{spec}_" if len(results) > 1 else "")
        if len(results) > 1:
            table = Path(out) / "resolutions.md"
            table.write_text(resolution_table(results))
            next(iter(results.values())).files["resolutions"] = table
    if json_out:
        rows = [{"input": spec or None, "images": len(r.ids), "means": r.means(),
                 "baselines": {b: r.means(b) for b in r.baselines}, "no_value": r.nan_counts(),
                 "settings": r.settings, "files": {k: str(v) for k, v in r.files.items()}}
                for spec, r in results.items()]
        # one input: its row at the top level; several (multi-resolution): the rows under "results"
        R.emit_json({**rows[0], "split": chosen if checkpoint is not None else None,
                     **({"results": rows} if len(rows) > 1 else {})})
        return
    _render_results(results, protocol)


def register(root: typer.Typer) -> None:
    root.command("eval")(eval_command)
