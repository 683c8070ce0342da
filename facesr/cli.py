"""The ``facesr`` command: mounts one sub-app per stage and owns the error table.

Each command lives in ``facesr/commands/<name>.py`` and only parses, calls the library, and renders; its
options come from :mod:`facesr.commands._options`. The error table (:func:`main`):

* every :class:`~facesr.errors.FacesrError` (any subclass) → ``error: <message>`` and ``  hint: <hint>`` on
  stderr, exit code 1;
* a usage error (unknown flag, a value outside its range) → click's message, exit code 2;
* an ``OSError`` (disk full, permission denied, a file named by the user) → one line, exit code 1;
* Ctrl-C → one line saying finished work is kept, exit code 130.

Tracebacks only with ``facesr --debug ...`` (a root option, also accepted by the commands it changes) or
``FACESR_DEBUG=1``, read once here.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.console import Console
from rich.markup import escape

from facesr import __version__
from facesr.commands import _options as O
from facesr.commands import data, demo, evaluate, export, models, priors, sr, train
from facesr.errors import FacesrError

try:  # typer >= 0.2x vendors its own click; its exceptions are not click's
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - older typer on real click
    from click import exceptions as _click_exc

app = typer.Typer(
    name="facesr",
    help="Facial priors for face super-resolution: build stores, train, evaluate.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"facesr {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
    debug: O.Debug = False,
) -> None:
    """facesr: priors once, offline; training that streams them."""
    O.state(ctx)  # make sure there is one (CliRunner invokes the app without main())


for _module in (data, priors, models, train, evaluate, sr, export, demo):
    _module.register(app)


def _print_error(err: Console, exc: BaseException, hint: str | None = None) -> None:
    message = str(exc) or type(exc).__name__
    err.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    if hint:
        err.print(f"  hint: {escape(hint)}", soft_wrap=True)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the app, render the error table (see the module docstring)."""
    from facesr.runtime import offline_env

    offline_env()
    err = Console(stderr=True, highlight=False)
    state = O.State(debug=os.environ.get("FACESR_DEBUG") == "1")
    try:
        code = app(args=argv, prog_name="facesr", standalone_mode=False, obj=state)
    except FacesrError as exc:
        if state.debug:
            raise
        _print_error(err, exc, exc.hint)
        sys.exit(1)
    except _click_exc.ClickException as exc:  # usage errors: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err.print("interrupted; finished work is kept, rerun the same command to resume")
        sys.exit(130)
    except OSError as exc:
        # Disk full, permission denied, missing file named by the user: no traceback for those.
        if state.debug:
            raise
        _print_error(err, exc)
        sys.exit(1)
    if isinstance(code, int) and code:  # `raise typer.Exit(n)` comes back as a return value here
        if code == 130:  # typer turns Ctrl-C into Exit(130) itself
            err.print("interrupted; finished work is kept, rerun the same command to resume")
        sys.exit(code)


if __name__ == "__main__":
    main()
