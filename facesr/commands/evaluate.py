"""`facesr eval`: score predictions against ground truth under named protocols.

Two sources of predictions:

- ``--pred DIR --gt DIR``: image files paired by file stem (implemented here).
- ``--checkpoint RUN --store STORE --split test``: run a trained model over a store split
  (:func:`_predict_from_checkpoint`: ``(ids, sr, hr, bicubic)`` uint8 RGB stacks), then score it exactly
  like the folder mode, with PIL bicubic of the same LR faces as a baseline column.
"""

from __future__ import annotations

from pathlib import Path

import typer

from facesr.errors import ConfigError


def _predict_from_checkpoint(checkpoint: Path, store: Path, split: str, *, device: str):
    """``(ids, sr, hr, bicubic)`` for a store split super-resolved by a run's checkpoint (best → last, EMA
    weights when the run has them; the run's own LR spec), and PIL-bicubic of the same LR as the baseline."""
    import numpy as np

    from facesr.data.degrade import upscale_back
    from facesr.train.inference import load_run, predict_arrays

    ids, lr, sr, hr = predict_arrays(load_run(checkpoint, device=device), store, split)
    return ids, sr, hr, np.stack([upscale_back(x, hr.shape[1]) for x in lr])


def _store_parsing(store: Path, ids: list[str]):
    """The store's ``priors/parsing`` maps of ``ids`` (for ``--extra regions``), or None without them."""
    import numpy as np

    from facesr.data.store import FaceStore

    fs = FaceStore.open(store)
    if "priors/parsing" not in fs:
        return None
    row = {id_: i for i, id_ in enumerate(fs.ids)}
    return fs.array("priors/parsing").get_orthogonal_selection(np.array([row[i] for i in ids]))


def eval_command(
    pred: Path | None = typer.Option(None, "--pred", help="Folder of predicted images (file stems match --gt).",
                                     file_okay=False),
    gt: Path | None = typer.Option(None, "--gt", help="Folder of ground-truth images.", file_okay=False),
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help="Run folder or checkpoint to evaluate."),
    store: Path | None = typer.Option(None, "--store", help="Store holding the evaluation split."),
    split: str = typer.Option("test", "--split", help="Store split to evaluate with --checkpoint."),
    protocol: list[str] = typer.Option(["dic"], "--protocol", "-p",
                                       help="Evaluation protocol; repeat for several (dic, basicsr, sparnet, sfmnet, rgb)."),
    extra: list[str] = typer.Option([], "--extra", "-e",
                                    help="Extra metric; repeat (msssim, lpips, lpips-vgg, aed, identity, regions: PSNR of eyes/nose/mouth)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write metrics.md, metrics.csv and grid.png here."),
    weights_dir: Path | None = typer.Option(None, "--weights-dir", help="Weights directory (LPIPS trunks)."),
    device: str = typer.Option("cpu", "--device", help="Torch device for LPIPS / models."),
) -> None:
    """Score predictions against ground truth; every number names its protocol."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from facesr.metrics import evaluate as ev
    from facesr.metrics.protocols import get_protocol

    for p in protocol:
        get_protocol(p)
    if pred is not None or gt is not None:
        if pred is None or gt is None or checkpoint is not None or store is not None:
            raise ConfigError("give --pred and --gt together (and neither --checkpoint nor --store)")
        result = ev.evaluate_folders(pred, gt, protocol, extra, out_dir=out, weights_dir=weights_dir, device=device)
    elif checkpoint is not None or store is not None:
        if checkpoint is None or store is None:
            raise ConfigError("give --checkpoint and --store together")
        ids, sr, hr, bicubic = _predict_from_checkpoint(checkpoint, store, split, device=device)
        classes = _store_parsing(store, ids) if "regions" in extra else None
        result = ev.evaluate_arrays(sr, hr, ids, protocols=protocol, extra=extra, weights_dir=weights_dir,
                                    device=device, classes=classes)
        result.baselines["bicubic"] = ev.evaluate_arrays(bicubic, hr, ids, protocols=protocol, extra=extra,
                                                         weights_dir=weights_dir, device=device,
                                                         classes=classes).means()
        result.settings = {"checkpoint": str(checkpoint), "store": f"{store} [{split}]", **result.settings}
        if out is not None:
            result.files = ev.write_report(result, out, sr, hr)
    else:
        raise ConfigError("nothing to evaluate", hint="facesr eval --pred DIR --gt DIR [--protocol dic]")

    console = Console()
    table = Table(title=f"facesr eval — {len(result.ids)} images")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for base in result.baselines:
        table.add_column(base, justify="right")
    table.add_column("no value", justify="right")
    nans = result.nan_counts()
    for name, value in result.means().items():
        cells = [ev.format_value(name, b.get(name, float("nan"))) for b in result.baselines.values()]
        table.add_row(escape(name), ev.format_value(name, value), *cells, str(nans[name]))
    console.print(table)
    for name in result.settings:
        if name in protocol:
            console.print(f"[dim]{escape(name)}: {escape(result.settings[name])}[/]")
    for kind, path in result.files.items():
        console.print(f"wrote {kind}: {escape(str(path))}")


def register(root: typer.Typer) -> None:
    root.command("eval")(eval_command)
