"""``facesr/commands/_render.py``: the small formatting helpers."""

from __future__ import annotations

import json

from facesr.commands import _render as R


def test_size_and_short():
    assert R.size(None) == "?" and R.size(512) == "512 B" and R.size(1536) == "1.5 KiB"
    assert R.size(3 * 2**30) == "3.0 GiB"
    assert R.short("x" * 10, 5) == "xxxx…" and R.short({"a": 1}) == '{"a": 1}'


def test_emit_json_is_plain(capsys):
    R.emit_json({"path": "[bold]x[/]", "n": 1})  # no rich markup interpretation, no colour codes
    out = capsys.readouterr().out
    assert json.loads(out) == {"path": "[bold]x[/]", "n": 1} and "\x1b" not in out


def test_quiet_reporter_keeps_messages(capsys):
    with R.reporter(True) as rep:
        rep.begin([("crop", 4, 0)])
        rep.message("waiting for the lock")
    assert "waiting for the lock" in capsys.readouterr().err
