"""The CLI's error table: user mistakes are one line and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from facesr import __version__
from facesr.cli import main
from facesr.errors import StoreError


def _run(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["data", "info", "/no/such/store.zarr"], "no store at /no/such/store.zarr"),
        (["data", "prepare", "--dataset", "celebz", "--root", ".", "--out", "x.zarr"], "did you mean 'celeba'"),
        (["train", "--preset", "no-such-preset", "--out", "run"], "unknown preset 'no-such-preset'"),
        (["eval", "--pred", "/no/pred", "--gt", "/no/gt"], "/no/pred"),
    ],
)
def test_user_mistakes_are_one_line(argv, expect, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = _run(argv, capsys)
    assert code == 1
    assert expect in err
    assert "Traceback" not in err
    assert len([ln for ln in err.splitlines() if ln.strip()]) <= 2  # the error and its hint


def test_bad_option_is_a_usage_error(capsys):
    code, _, err = _run(["data", "prepare", "--no-such-flag"], capsys)
    assert code == 2
    assert "no-such-flag" in err and "Traceback" not in err


def test_version(capsys):
    main(["--version"])  # returns: exit status 0
    assert capsys.readouterr().out.strip() == f"facesr {__version__}"


def test_debug_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("FACESR_DEBUG", "1")
    with pytest.raises(StoreError):
        main(["data", "info", "/no/such/store.zarr"])


def test_console_script_in_a_real_process(tmp_path):
    """The installed entry point, as a user runs it: clean error, exit 1, nothing on stdout."""
    env = {**os.environ, "FACESR_DEBUG": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "facesr.cli", "data", "info", str(tmp_path / "missing.zarr")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: no store at")
    assert "Traceback" not in proc.stderr
