"""`facesr data ...` commands."""

from __future__ import annotations

import typer

app = typer.Typer(help="Build and inspect stores: ingest, crop and degrade a dataset; info; picture grids.", no_args_is_help=True)

# `facesr data prepare` (pipeline owner): ingest → crop → degrade into a store; see facesr/commands/_prepare.py
from facesr.commands._prepare import prepare as _prepare  # noqa: E402

app.command("prepare")(_prepare)

# `facesr data info` / `facesr data show` (loader owner): look inside a store; see facesr/commands/_inspect.py
from facesr.commands._inspect import info as _info, show as _show  # noqa: E402

app.command("info")(_info)
app.command("show")(_show)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="data")
