"""The ``facesr`` command: mounts one sub-app per stage and owns the error table.

Each command lives in ``facesr/commands/<name>.py`` and only parses, calls the library, and renders.
Every :class:`~facesr.errors.FacesrError` becomes one line on stderr plus a hint, exit code 1; a
traceback is shown only with ``FACESR_DEBUG=1``.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console

from facesr import __version__
from facesr.commands import data, demo, evaluate, models, priors, sr, train
from facesr.errors import FacesrError

try:  # typer >= 0.2x vendors its own click; its exceptions are not click's
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - older typer on real click
    from click import exceptions as _click_exc

app = typer.Typer(
    name="facesr",
    help="Facial priors for face super-resolution: build stores, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"facesr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """facesr: priors once, offline; training that streams them."""


for _module in (data, priors, models, train, evaluate, sr, demo):
    _module.register(app)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    from facesr.runtime import offline_env

    offline_env()
    err = Console(stderr=True, highlight=False)
    debug = os.environ.get("FACESR_DEBUG") == "1"
    try:
        code = app(args=argv, prog_name="facesr", standalone_mode=False)
    except FacesrError as exc:
        if debug:
            raise
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        if exc.hint:
            err.print(f"  hint: {exc.hint}", soft_wrap=True)
        sys.exit(1)
    except _click_exc.ClickException as exc:  # usage errors: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted; finished work is kept, rerun the same command to resume")
        sys.exit(130)
    except OSError as exc:
        # Disk full, permission denied, missing file named by the user: no traceback for those.
        if debug:
            raise
        err.print(f"[bold red]error:[/] {exc}", soft_wrap=True)
        sys.exit(1)
    if isinstance(code, int) and code:  # `raise typer.Exit(n)` comes back as a return value here
        sys.exit(code)


if __name__ == "__main__":
    main()
