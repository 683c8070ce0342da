"""Exact resume after SIGKILL: a run killed mid-epoch and resumed logs the same per-step losses as an
uninterrupted run (same process count, threads and device)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from facesr.train import checkpoint as ckpt
from facesr.train.config import load_config
from facesr.train.logging import read_csv
from facesr.train.trainer import train
from tests.train._stores import TINY, make_store

ROOT = Path(__file__).resolve().parents[2]
# 32 train images, batch 4 → 8 steps per epoch; a checkpoint every 3 steps lands mid-epoch.
ARGS = TINY + ["epochs=3", "checkpoint.every_steps=3", "val.grid_every=1"]
LOSS_COLUMNS = ("loss", "mse", "heatmap")


def _cli(out: Path, store: Path, *extra: str) -> list[str]:
    cmd = [sys.executable, "-m", "facesr.cli", "train", "--store", str(store), "--out", str(out)]
    if "--resume" not in extra:
        cmd += ["--preset", "seed000-bicubic"]
        for a in ARGS:
            cmd += ["--set", a]
    return cmd + list(extra)


def _rows(path: Path) -> dict[int, dict[str, str]]:
    return {int(r["step"]): r for r in read_csv(path)}


def _reference(tmp_path: Path) -> tuple[Path, dict, Path]:
    """A tiny store, the subprocess environment, and the uninterrupted reference run (in this process,
    one thread like the subprocesses)."""
    store = tmp_path / "tiny.zarr"
    make_store(store, n_train=32, n_val=8)
    env = {**os.environ, "FACESR_THREADS": "1", "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    ref = tmp_path / "ref"
    train(load_config("seed000-bicubic", ARGS), store, ref)
    return store, env, ref


def _start_until(run: Path, store: Path, env: dict, logged: int) -> subprocess.Popen:
    """The same run in a slowed-down subprocess (``tests/train/_slow_train.py``: 0.2 s after each step, through
    the trainer's ``on_step``), returned once more than ``logged`` steps are in steps.csv."""
    cmd = [sys.executable, "-m", "tests.train._slow_train", str(store), str(run), "0.2", "seed000-bicubic", *ARGS]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    steps = run / "steps.csv"
    deadline = time.monotonic() + 120
    while not (steps.exists() and len(steps.read_text().splitlines()) > logged):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"training ended early or stalled: {proc.communicate()[1][-2000:]}")
        time.sleep(0.02)
    return proc


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted(tmp_path, one_thread):
    store, env, ref = _reference(tmp_path)  # 1. the uninterrupted reference

    # 2. the same run in a subprocess, SIGKILLed after step 10 is logged
    run = tmp_path / "run"
    steps = run / "steps.csv"
    proc = _start_until(run, store, env, logged=10)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    killed_at = ckpt.load_state(ckpt.find(run, "last"))["train"]
    assert 0 < killed_at["step"] < 24 and killed_at["batch"] > 0, killed_at  # mid-epoch checkpoint
    logged = max(_rows(steps))
    assert logged >= killed_at["step"]

    # 3. resume to the end
    res = subprocess.run(_cli(run, store, "--resume"), env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]

    a, b = _rows(ref / "steps.csv"), _rows(steps)
    assert sorted(a) == sorted(b) == list(range(1, 25))
    for step in a:
        for col in LOSS_COLUMNS:
            if col in a[step]:
                assert float(b[step][col]) == pytest.approx(float(a[step][col]), rel=1e-6, abs=1e-9), (step, col)
    # the validations after the resume agree too, and the final weights are identical
    va, vb = read_csv(ref / "metrics.csv"), read_csv(run / "metrics.csv")
    assert [r["step"] for r in va] == [r["step"] for r in vb]
    for ra, rb in zip(va, vb):
        assert float(rb["psnr[dic]"]) == pytest.approx(float(ra["psnr[dic]"]), abs=1e-6)
    wa = ckpt.load_weights(ckpt.find(ref, "last"))
    wb = ckpt.load_weights(ckpt.find(run, "last"))
    assert all(torch.allclose(wa[k], wb[k], rtol=1e-6, atol=1e-8) for k in wa)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_saves_at_the_step_and_resumes_exactly(tmp_path, one_thread, sig):
    """Ctrl-C / SLURM's SIGTERM: the run stops at the next step boundary with a checkpoint of that step
    (not the last periodic one), exits 130, and a resume continues the uninterrupted loss curve."""
    store, env, ref = _reference(tmp_path)
    run = tmp_path / "run"
    steps = run / "steps.csv"
    proc = _start_until(run, store, env, logged=4)  # after step 4: not a periodic (every 3) save
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "stopped: interrupted" in out + err and "--resume" in out + err
    saved = ckpt.load_state(ckpt.find(run, "last"))["train"]
    assert saved["step"] == max(_rows(steps)) and saved["step"] % 3 != 0, saved  # the signalled step itself

    res = subprocess.run(_cli(run, store, "--resume"), env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    a, b = _rows(ref / "steps.csv"), _rows(steps)
    assert sorted(b) == list(range(1, 25))
    for step in a:
        assert float(b[step]["loss"]) == pytest.approx(float(a[step]["loss"]), rel=1e-6, abs=1e-9), step
