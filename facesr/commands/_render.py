"""Rendering shared by the commands: consoles, JSON output, build progress bars, the build table and the verify
report, byte sizes. Only rendering lives here; nothing in this module computes a result.

Rules: results go to stdout, progress and notes to stderr; with ``--json`` stdout holds one JSON document and
nothing else (:func:`emit_json`); with ``-q`` progress bars, notes and "next:" hints are dropped.
"""

from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table


def out_console() -> Console:
    """stdout, created per call so that ``COLUMNS`` and CliRunner's capture are honoured."""
    return Console(highlight=False)


def err_console() -> Console:
    return Console(stderr=True, highlight=False)


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=str, ensure_ascii=False)


def emit_json(obj: Any) -> None:
    """The whole stdout of a ``--json`` command: one JSON document (plain text, no colour, no wrapping)."""
    typer.echo(to_json(obj))


def console_unless_json(obj: Any, json_out: bool) -> Console | None:
    """With ``--json``: print ``obj`` as the whole stdout and return None (the command is done); else the stdout
    console to render on."""
    if json_out:
        emit_json(obj)
        return None
    return out_console()


def grid_json(path, img, **meta: Any) -> dict[str, Any]:
    """The ``--json`` result of a ``show`` command: the PNG written, its size (``img`` is ``(H, W, 3)``), ``meta``."""
    return {"path": str(path), "width": img.shape[1], "height": img.shape[0], **meta}


def hint_next(console: Console, text: str, *, quiet: bool) -> None:
    if not quiet:
        console.print(f"next: {text}", soft_wrap=True)


def size(n: int | float | None) -> str:
    """``1.5 MiB``; ``?`` when unknown."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover - the loop always returns


def short(v: Any, width: int = 90) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
    return s if len(s) <= width else s[: width - 1] + "…"


class RichReporter:
    """A :class:`facesr.pipeline.build.Reporter` drawing one progress bar per stage (rows done / N) on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or err_console()
        self.progress = Progress(
            TextColumn("[bold]{task.description:<26}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.tasks: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.rows: dict[str, int] = {}

    def __enter__(self) -> RichReporter:
        return self  # the bars start with the first stage: a build that fails before leaves no blank line

    def __exit__(self, *exc) -> None:
        if self.tasks:
            self.progress.stop()

    def begin(self, stages) -> None:
        if not self.tasks:
            self.progress.start()
        for name, total, done in stages:
            self.tasks[name] = self.progress.add_task(name, total=total, completed=done,
                                                      rate="done" if done == total else "")
            self.seconds[name] = 0.0
            self.rows[name] = 0

    def advance(self, result) -> None:
        t = self.tasks.get(result.stage)
        if t is None:
            return
        if not result.skipped:
            self.seconds[result.stage] += result.seconds
            self.rows[result.stage] += result.n
        s = self.seconds[result.stage]
        rate = f"{self.rows[result.stage] / s:,.0f} img/s/worker" if s > 0.01 else ""
        self.progress.update(t, advance=result.n, rate=rate)

    def message(self, text: str) -> None:
        self.progress.console.print(f"[yellow]{text}[/]")


class QuietReporter:
    """The same protocol, drawing nothing; messages (waiting for a lock, invalidated stages) still go to stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or err_console()

    def __enter__(self) -> QuietReporter:
        return self

    def __exit__(self, *exc) -> None:
        pass

    def begin(self, stages) -> None:
        pass

    def advance(self, result) -> None:
        pass

    def message(self, text: str) -> None:
        self.console.print(text)


def reporter(quiet: bool):
    """Progress bars on stderr, or none with ``-q``/``--json``."""
    return QuietReporter() if quiet else RichReporter()


def print_build(console: Console, report) -> None:
    table = Table(title=f"{report.store}: {report.n} samples, chunk {report.chunk}, "
                        f"{report.scheduler} x{report.workers}, {report.seconds:.1f} s")
    for col in ("stage", "key", "computed", "skipped", "s (worker)", "img/s/worker"):
        table.add_column(col, justify="right" if col not in ("stage", "key") else "left")
    for name, s in report.stages.items():
        if name.startswith("_"):
            continue
        table.add_row(name, s["key"], str(s["rows"]), str(s["skipped_rows"]), f"{s['seconds']:.1f}",
                      "-" if s.get("images_per_s") is None else f"{s['images_per_s']:,.0f}")
    console.print(table)
    run = report.stages.get("_run", {})
    if run.get("images_per_s"):
        console.print(f"end to end: {run['seconds']:.1f} s of tasks, {run['images_per_s']:,.1f} images/s "
                      f"({report.scheduler}, {report.workers} workers)")
    if report.failures:
        console.print(f"[yellow]{report.failures} samples failed to crop (see `failure` in the store)[/]")
    differ = (getattr(report, "checks", None) or {}).get("lr_files_differ")
    if differ:
        console.print(f"[yellow]{differ} of the dataset's LR files differ from degrading their HR by the LR spec "
                      f"they are stored under (kept as given; see the LR array's `lr_files` attribute)[/]")


def report_build(report, *, next_step: str, json_out: bool, quiet: bool) -> None:
    """The result of ``data prepare`` / ``priors build``: JSON, or the build table, the verify report (when the
    build verified) and ``next_step``; exit code 1 when the verify failed."""
    failed = report.verify is not None and not report.verify["ok"]
    if json_out:
        emit_json(report.to_dict())
    else:
        out = out_console()
        if not quiet:
            print_build(out, report)
        if report.verify is not None:
            print_verify(out, report.verify)
        if not failed:
            hint_next(out, next_step, quiet=quiet)
    if failed:
        raise typer.Exit(1)


def print_verify(console: Console, v: dict[str, Any]) -> None:
    status = "[bold green]PASS[/]" if v["ok"] else "[bold red]FAIL[/]"
    console.print(f"verify: {status}")
    for e in v["errors"]:
        console.print(f"  [red]error[/]: {e}")
    for w in v["warnings"]:
        console.print(f"  [yellow]warning[/]: {w}")
    st = v["stats"]
    keys = ["n", "usable", "failed", "landmarks_coverage", "boxes_coverage", "heatmap_coverage",
            "parsing_coverage", "heatmap_argmax_on_parts"]
    console.print("  " + ", ".join(f"{k}={st.get(k)}" for k in keys if st.get(k) is not None))
    if st.get("heatmap_argmax_on_parts") is not None:
        a, b = st["heatmap_argmax_on_parts_count"]
        console.print(f"  heatmap maximum inside an eye/eyebrow/nose/mouth box: {a}/{b} faces")
