"""The entry point's error table (``facesr.cli.main``): every FacesrError is one line + hint, exit 1; usage
errors exit 2; tracebacks only with ``--debug`` / ``FACESR_DEBUG=1``. Plus one real subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import facesr.errors as E
from facesr import __version__
from facesr.cli import main
from tests.commands.conftest import assert_one_line, run_main


def _subclasses(cls) -> list[type]:
    out = []
    for sub in cls.__subclasses__():
        out += [sub, *_subclasses(sub)]
    return out


ALL_ERRORS = sorted(set([E.FacesrError, *_subclasses(E.FacesrError)]), key=lambda c: c.__name__)


def test_every_error_class_is_covered():
    names = {c.__name__ for c in ALL_ERRORS}
    assert {"StoreNotFoundError", "StoreIncompleteError", "StoreLockedError", "StoreCorruptError",
            "SchemaVersionError", "WeightsMissingError", "WeightsInvalidError", "CheckpointError", "TrainingError",
            "DatasetError", "PipelineError", "ConfigError"} <= names


@pytest.mark.parametrize("cls", ALL_ERRORS, ids=lambda c: c.__name__)
def test_every_facesr_error_is_one_line_and_a_hint(cls, capsys, monkeypatch):
    def boom(store):
        raise cls(f"{cls.__name__} at [x]", hint="run `facesr data info` next", path=store)

    monkeypatch.setattr("facesr.commands.data.store_summary", boom)
    r = run_main(["data", "info", "s.zarr"], capsys)
    assert_one_line(r, 1)
    assert r.lines == [f"error: {cls.__name__} at [x]", "  hint: run `facesr data info` next"]  # markup escaped
    assert r.out == ""


def test_error_without_hint_is_exactly_one_line(capsys, monkeypatch):
    monkeypatch.setattr("facesr.commands.data.store_summary", lambda s: (_ for _ in ()).throw(E.StoreError("gone")))
    r = run_main(["data", "info", "s.zarr"], capsys)
    assert r.code == 1 and r.lines == ["error: gone"]


def test_oserror_is_one_line(capsys, monkeypatch):
    def boom(store):
        raise PermissionError(13, "Permission denied", "/srv/x.zarr")

    monkeypatch.setattr("facesr.commands.data.store_summary", boom)
    r = run_main(["data", "info", "s.zarr"], capsys)
    assert r.code == 1 and r.lines == ["error: [Errno 13] Permission denied: '/srv/x.zarr'"]


def test_ctrl_c_is_130(capsys, monkeypatch):
    def boom(store):
        raise KeyboardInterrupt

    monkeypatch.setattr("facesr.commands.data.store_summary", boom)
    r = run_main(["data", "info", "s.zarr"], capsys)
    assert r.code == 130 and "finished work is kept" in r.err


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["data", "info", "/no/such/store.zarr"], "/no/such/store.zarr"),
        (["data", "prepare", "--dataset", "celebz", "--root", "data", "--store", "x.zarr"], "did you mean 'celeba'"),
        (["train", "--preset", "no-such-preset", "--out", "run"], "unknown preset 'no-such-preset'"),
        (["eval", "--pred", "/no/pred", "--gt", "/no/gt"], "/no/pred"),
    ],
)
def test_user_mistakes_are_one_line(argv, expect, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    r = run_main(argv, capsys)
    assert_one_line(r, (1, 2), contains=expect)


def test_bad_option_is_a_usage_error(capsys):
    r = run_main(["data", "prepare", "--no-such-flag"], capsys)
    assert r.code == 2 and "no-such-flag" in r.err and "Traceback" not in r.err


def test_version_help_and_completion(capsys):
    assert run_main(["--version"], capsys).out.strip() == f"facesr {__version__}"
    r = run_main(["-h"], capsys)
    assert r.code == 0 and "--install-completion" in r.out and "-h" in r.out
    r = run_main(["priors", "build", "-h"], capsys)  # -h beside --help in every sub-command
    assert r.code == 0 and "--store" in r.out


@pytest.mark.parametrize("how", ["env", "root", "command"])
def test_debug_shows_the_traceback(how, monkeypatch, tmp_path):
    argv = ["data", "info", str(tmp_path / "no.zarr")]
    if how == "env":
        monkeypatch.setenv("FACESR_DEBUG", "1")
    elif how == "root":
        argv = ["--debug", *argv]
    else:  # build/prepare accept it too; the error comes from the library, raised to the caller
        argv = ["data", "prepare", "--dataset", "celebz", "--root", str(tmp_path), "--store", str(tmp_path / "x"),
                "--debug"]
    with pytest.raises(E.FacesrError):
        main(argv)


def test_without_debug_env_zero_is_off(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("FACESR_DEBUG", "0")
    assert run_main(["data", "info", str(tmp_path / "no.zarr")], capsys).code == 1


def test_console_script_in_a_real_process(tmp_path):
    """The installed entry point, as a user runs it: clean error, exit 1, nothing on stdout."""
    env = {**os.environ, "FACESR_DEBUG": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "facesr.cli", "data", "info", str(tmp_path / "missing.zarr")],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith("error: ")
    assert "missing.zarr" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) <= 2
