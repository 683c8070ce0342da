"""``facesr export RUN --format onnx|torchscript|safetensors -o PATH``: a trained model that leaves facesr."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from facesr.commands import _options as O
from facesr.commands import _render as R


def register(root: typer.Typer) -> None:
    root.command("export")(export_cmd)


Format = Annotated[str, typer.Option("--format", "-f", help="onnx | torchscript | safetensors.")]


def export_cmd(
    run: Annotated[Path, typer.Argument(help="Run folder (or a checkpoint folder).", show_default=False)],
    fmt: Format = "onnx",
    out: O.OutFile = None,
    which: O.Which = "best",
    no_check: Annotated[bool, typer.Option("--no-check", help="Skip running the export against torch.")] = False,
    json_out: O.Json = False,
    quiet: O.Quiet = False,
) -> None:
    """Export a run's model (EMA weights when it has them) with a MODEL_CARD.md beside it.

    The graph takes lr (B, 3, h, w) in [0, 1] and returns sr (B, 3, 128, 128) in [0, 1], unclamped. ONNX has a
    dynamic batch axis and is checked with onnxruntime against torch (max |diff| ≤ 1e-4). Default -o:
    RUN/export/model.onnx (.pt, .safetensors).
    """
    from facesr.export import FORMATS, TOLERANCE, export_run

    if fmt not in FORMATS:
        raise typer.BadParameter(f"{fmt!r} is not one of {', '.join(FORMATS)}", param_hint="--format")
    res = export_run(run, fmt, out, which=which, check=not no_check)
    if json_out:
        R.emit_json({"path": str(res.path), "format": res.format, "card": str(res.card) if res.card else None,
                     "max_abs_diff": res.max_abs_diff, "check": res.check, "notes": res.notes})
    else:
        con = R.out_console()
        con.print(f"wrote {res.path} ({res.format})", soft_wrap=True)
        if res.max_abs_diff is not None:
            con.print(f"  check: max |diff| {res.max_abs_diff:.2e} ({res.check})", soft_wrap=True)
        if res.card:
            con.print(f"  card:  {res.card}", soft_wrap=True)
        for note in res.notes:
            R.err_console().print(f"warning: {note}", soft_wrap=True)
        if fmt == "safetensors":
            R.hint_next(con, f"python -c \"import facesr; print(facesr.load('{res.path}'))\"", quiet=quiet)
    if res.max_abs_diff is not None and res.max_abs_diff > TOLERANCE:
        raise typer.Exit(1)


__all__ = ["export_cmd", "register"]
