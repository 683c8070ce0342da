"""Fixtures for the command tests: tiny stores, a tiny trained run, and :func:`run_main`, which runs the real
entry point (``facesr.cli.main``, the error table included) in-process and returns what a user would see."""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.train._stores import TINY, make_store


@dataclass
class Ran:
    code: int | str  # exit status, or "traceback" when an exception escaped the error table
    out: str
    err: str

    @property
    def lines(self) -> list[str]:
        return [ln for ln in self.err.splitlines() if ln.strip()]


def run_main(argv: list[str], capsys) -> Ran:
    """``facesr ARGV`` through :func:`facesr.cli.main`; an escaping exception is reported as a traceback."""
    from facesr.cli import main

    capsys.readouterr()
    code: int | str = 0
    tb = ""
    try:
        main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - what a user would see as a traceback
        code, tb = "traceback", traceback.format_exc()
    out, err = capsys.readouterr()
    return Ran(code, out, err + tb)


def assert_one_line(r: Ran, code: int | tuple[int, ...] = 1, *, contains: str | None = None) -> None:
    """A user mistake: the given exit code(s), no traceback, an ``error:`` line and at most a hint (exit 1), or
    click's usage block (exit 2)."""
    codes = (code,) if isinstance(code, int) else code
    assert r.code in codes, f"exit {r.code!r}, stderr:\n{r.err}\nstdout:\n{r.out}"
    assert "Traceback" not in r.err, r.err
    if r.code == 1:  # progress bars may come first (stderr); the error is the last line but a hint
        first = next((i for i, ln in enumerate(r.lines) if ln.startswith("error: ")), None)
        assert first is not None, r.err
        assert len(r.lines) - first <= 2, r.err
        assert len(r.lines) - first == 1 or r.lines[-1].startswith("  hint: "), r.err
    if contains is not None:
        assert contains in r.err, r.err


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory) -> Path:
    """28 synthetic faces (train 16 / val 8 / test 4), hr + one LR set + heatmap + parsing."""
    path = tmp_path_factory.mktemp("cmd_store") / "tiny.zarr"
    make_store(path, n_train=16, n_val=8, n_test=4)
    return path


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_store) -> Path:
    """One epoch of the tiny U-Net (best + last checkpoints)."""
    import torch

    from facesr.train.config import load_config
    from facesr.train.trainer import train

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("cmd_runs") / "tiny"
    try:
        train(load_config("seed000-bicubic", TINY + ["epochs=1"]), tiny_store, out)
    finally:
        torch.set_num_threads(before)
    return out


@pytest.fixture(scope="session")
def faces_dir(tmp_path_factory) -> Path:
    """8 demo faces (astronaut variants) and their splits.txt."""
    from facesr.demo import make_demo_faces

    return make_demo_faces(tmp_path_factory.mktemp("cmd_faces") / "faces", n=8)


@pytest.fixture(scope="session")
def built_store(tmp_path_factory, faces_dir) -> Path:
    """The faces folder through the whole offline pipeline, by the CLI (synchronous scheduler, in-process)."""
    from facesr.cli import main

    path = tmp_path_factory.mktemp("cmd_built") / "built.zarr"
    with pytest.raises(SystemExit) as exc:
        main(["priors", "build", "--dataset", "folder", "--root", str(faces_dir), "--store", str(path),
              "--split-file", str(faces_dir / "splits.txt"), "--crop", "landmarks", "--lr", "bicubic-pil:16",
              "--scheduler", "sync", "--workers", "1", "-q"])
        raise SystemExit(0)
    assert exc.value.code == 0
    return path


__all__ = ["TINY", "Ran", "assert_one_line", "run_main"]
