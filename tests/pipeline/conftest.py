"""Fixtures for the pipeline tests: small stores (≤ 300 faces) and helpers to run the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
N_CELEBA = 96  # faces used by the kill/concurrency tests (8 chunks of 12)
CHUNK = 12


@pytest.fixture(autouse=True, scope="module")
def _no_process_left_behind():
    """After each module: no worker process of a build is still running (this process's forkserver and
    resource tracker may stay: they end with it). A straggler is killed and fails the module."""
    yield
    try:
        import psutil
    except ImportError:  # pragma: no cover
        return
    me = psutil.Process()

    def left():
        out = []
        for p in me.children(recursive=True):
            try:
                if p.ppid() != me.pid and p.status() != psutil.STATUS_ZOMBIE:
                    out.append(p)
            except psutil.NoSuchProcess:
                pass
        return out

    deadline = time.monotonic() + 10
    while left() and time.monotonic() < deadline:
        time.sleep(0.1)
    stray = left()
    for p in stray:
        p.kill()
    assert not stray, [(p.pid, " ".join(p.cmdline())[:80]) for p in stray]


def cli(*args: str) -> list[str]:
    """argv running the real ``facesr`` CLI in a subprocess with this interpreter."""
    return [sys.executable, "-m", "facesr.cli", *args]


def cli_env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["COLUMNS"] = "120"
    return env


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args), env=cli_env(), capture_output=True, text=True, timeout=timeout)


def store_bytes(path) -> dict[str, bytes | list]:
    """Every array of a store, as raw bytes (numeric) or a list (strings): for byte-for-byte comparison."""
    from facesr.data.store import FaceStore

    fs = FaceStore.open(path)
    out = {}
    for name in fs.names():
        a = np.asarray(fs.array(name)[:])
        out[name] = a.tolist() if a.dtype.kind in "TUO" else (str(a.dtype), a.shape, a.tobytes())
    return out


def assert_same_store(a, b) -> None:
    ba, bb = store_bytes(a), store_bytes(b)
    assert sorted(ba) == sorted(bb)
    for name in ba:
        assert ba[name] == bb[name], f"array {name!r} differs"


@pytest.fixture(scope="session")
def celeba_reference(celeba_root, tmp_path_factory):
    """An uninterrupted build (synchronous scheduler, in-process) of the first N_CELEBA CelebA faces."""
    from facesr.pipeline.build import BuildOptions, RunOptions, SourceSpec, build_store

    path = tmp_path_factory.mktemp("ref") / "ref.zarr"
    report = build_store(path, BuildOptions(chunk=CHUNK, lr=("bicubic-pil:16",)),
                         source=SourceSpec("celeba", celeba_root, limit=N_CELEBA),
                         run=RunOptions(scheduler="sync", workers=1))
    assert report.verify["ok"], report.verify
    return path


def celeba_build_args(celeba_root, store, *extra: str) -> list[str]:
    return ["priors", "build", "--dataset", "celeba", "--root", str(celeba_root), "--store", str(store),
            "--limit", str(N_CELEBA), "--chunk", str(CHUNK), "--lr", "bicubic-pil:16", *extra]
