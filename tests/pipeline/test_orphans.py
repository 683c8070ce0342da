"""No orphans: a build's forkserver and worker processes end when the build dies, ``kill -9`` included.

A real ``facesr priors build --workers 2`` runs in a subprocess on synthetic faces; once its worker
processes exist it is killed with SIGKILL, and every process that descended from it must be gone within a
few seconds (workers watch the build through a pidfd; the forkserver ends with its last client).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from .conftest import cli, cli_env

psutil = pytest.importorskip("psutil")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from facesr.demo import make_demo_faces

    return make_demo_faces(tmp_path_factory.mktemp("faces"), n=48, seed=3)


def _descendants(pid: int) -> list:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _alive(procs) -> list:
    out = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def test_kill_9_leaves_no_worker_or_forkserver(faces, tmp_path):
    store = tmp_path / "o.zarr"
    args = ["priors", "build", "--dataset", "folder", "--root", str(faces), "--split-file", str(faces / "splits.txt"),
            "--store", str(store), "--crop", "landmarks", "--chunk", "4", "--workers", "2", "-q"]
    proc = subprocess.Popen(cli(*args), env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seen: dict[int, object] = {}
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            for p in _descendants(proc.pid):
                seen.setdefault(p.pid, p)
            workers = [p for p in _alive(seen.values()) if "forkserver" in " ".join(p.cmdline())]
            if len(workers) >= 3:  # the forkserver and its two workers
                break
            time.sleep(0.05)
        assert proc.poll() is None, "the build finished before its workers were seen; make it bigger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len(seen) >= 3, [p.pid for p in seen.values()]
    deadline = time.monotonic() + 10
    while _alive(seen.values()) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _alive(seen.values())
    for p in left:  # never leave them behind, even when the test fails
        p.kill()
    assert not left, [(p.pid, " ".join(p.cmdline())[:80]) for p in left]


def test_finished_build_leaves_no_process(faces, tmp_path):
    """A build that ends normally joins its pool: nothing it started is still running afterwards."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    from facesr.pipeline.build import BuildOptions, RunOptions, SourceSpec, build_store

    build_store(tmp_path / "f.zarr", BuildOptions(crop="landmarks", chunk=8, priors=False),
                source=SourceSpec("folder", faces, {"split_file": str(faces / "splits.txt")}, limit=16),
                run=RunOptions(scheduler="processes", workers=2))
    time.sleep(0.5)
    extra = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    # the forkserver itself may stay for the next build of this process; it ends with this process
    workers = [p for p in _alive(extra) if p.ppid() != os.getpid()]
    assert not workers, [(p.pid, " ".join(p.cmdline())[:80]) for p in workers]
