"""``scripts/slurm_build.py``: the SLURM recipe of docs/slurm.md, run as written.

The CPU and GPU job scripts are rendered by dask-jobqueue itself (no SLURM needed); the same script then runs
end to end on a LocalCluster (``--local 2``) in a real process, building a tiny store."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "slurm_build.py"


def _load():
    spec = importlib.util.spec_from_file_location("slurm_build", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


BASE = ["--store", "/shared/stores/celeba.zarr", "--dataset", "celeba", "--root", "/shared/data/celeba",
        "--queue", "cpu", "--account", "myproject", "--venv", "/shared/venvs/facesr"]


def _job_script(mod, argv):
    from dask_jobqueue import SLURMCluster

    cluster = SLURMCluster(**mod.cluster_kwargs(mod.parse_args(argv)))
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def test_cpu_job_script():
    text = _job_script(_load(), [*BASE, "--cores", "8", "--memory", "32GB", "--walltime", "03:00:00"])
    for line in ("#SBATCH -p cpu", "#SBATCH -A myproject", "#SBATCH --cpus-per-task=8", "#SBATCH -t 03:00:00",
                 "source /shared/venvs/facesr/bin/activate", "export OMP_NUM_THREADS=1"):
        assert line in text, line
    assert "--nthreads 1" in text and "--nworkers 8" in text  # one single-threaded worker per core
    assert "--gres" not in text


def test_gpu_job_script():
    text = _job_script(_load(), [*BASE, "--queue", "gpu", "--gpu", "--cores", "6"])
    assert "#SBATCH --gres=gpu:1" in text and "#SBATCH -p gpu" in text
    assert "--nthreads 6" in text and "--nworkers" not in text  # one worker owning the GPU and the cores
    assert "export OMP_NUM_THREADS=6" in text


def test_print_job_script_submits_nothing(capsys):
    assert _load().main([*BASE, "--print-job-script"]) == 0
    assert capsys.readouterr().out.startswith("#!/usr/bin/env bash")


@pytest.mark.parametrize("bad", [["--jobs", "0"], ["--local", "-1"], ["--dataset", "celeba", "--root", ""]])
def test_bad_arguments_are_usage_errors(bad, capsys):
    argv = ["--store", "x.zarr", *bad]
    with pytest.raises(SystemExit) as exc:
        _load().parse_args(argv)
    assert exc.value.code == 2


def test_local_cluster_end_to_end(tmp_path):
    """The script as a user runs it, on a LocalCluster of 2 workers: a verified store, the cluster closed."""
    from facesr.data.store import FaceStore
    from facesr.demo import make_demo_faces

    faces = make_demo_faces(tmp_path / "faces", n=8)
    store = tmp_path / "stores" / "tiny.zarr"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--store", str(store), "--dataset", "folder", "--root", str(faces),
         "--split-file", str(faces / "splits.txt"), "--crop", "landmarks", "--lr", "bicubic-pil:16", "--chunk", "4",
         "--local", "2", "--timeout", "60"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout)
    assert report["n"] == 8 and report["verify"]["ok"] and report["scheduler"].startswith("tcp://")
    assert report["workers"] == 2  # the cluster's real worker count
    assert "LocalCluster" in proc.stderr
    fs = FaceStore.open(store)
    assert fs.n == 8 and fs.valid().all()
