"""Real processes: ``kill -9`` mid-build then resume, and two builds at once on one store.

Both end byte-for-byte equal to an uninterrupted, in-process build (``celeba_reference``) of the same
96 CelebA faces -- which also shows that the scheduler (sync in-process vs processes in the CLI) does not
change a byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from facesr.pipeline.lock import Ledger

from .conftest import CHUNK, N_CELEBA, assert_same_store, celeba_build_args, cli, cli_env, run_cli

pytestmark = [pytest.mark.shared, pytest.mark.slow]
NCHUNKS = N_CELEBA // CHUNK


def _done(store) -> dict[str, int]:
    led = Ledger(store)
    out = {}
    if led.root.is_dir():
        for d in led.root.iterdir():
            out[d.name] = sum(len(list(k.iterdir())) for k in d.iterdir() if k.is_dir())
    return out


def test_kill_9_mid_build_then_resume_is_identical(celeba_root, celeba_reference, tmp_path):
    store = tmp_path / "k.zarr"
    proc = subprocess.Popen(cli(*celeba_build_args(celeba_root, store, "--workers", "2")), env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            done = _done(store)
            if done.get("landmarks", 0) >= 2 or proc.poll() is not None:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the build finished before it could be killed; make it bigger"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    at_kill = _done(store)
    assert at_kill.get("landmarks", 0) >= 2
    assert sum(at_kill.get(s, 0) for s in ("landmarks", "detect", "heatmap", "parse")) < 4 * NCHUNKS  # mid-build
    time.sleep(0.5)  # orphaned workers (PR_SET_PDEATHSIG) are gone
    res = run_cli(*celeba_build_args(celeba_root, store, "--workers", "2"), timeout=150)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "PASS" in res.stdout
    assert_same_store(celeba_reference, store)
    st = run_cli("priors", "status", str(store), "--json")
    assert st.returncode == 0 and '"complete": false' not in st.stdout


def test_two_builds_at_once_on_one_store(celeba_root, celeba_reference, tmp_path):
    store = tmp_path / "c.zarr"
    args = celeba_build_args(celeba_root, store, "--workers", "1")
    procs = [subprocess.Popen(cli(*args), env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outs = [p.communicate(timeout=170) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, out + err
    assert any("waiting" in err for _, err in outs)  # one waited for the other
    assert_same_store(celeba_reference, store)
