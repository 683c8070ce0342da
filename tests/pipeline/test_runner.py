"""The runner (schedulers, progress, worker life) and the task graph (data along its edges) on toy graphs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from facesr.errors import PipelineError
from facesr.pipeline.runner import run_graph
from facesr.pipeline.stages import StageResult


def produce(i: int) -> dict:
    return {"x": np.full(3, i)}


def consume(i: int, up: dict) -> StageResult:
    return StageResult("sum", i, int(up["x"].sum()), 0.0, checks={"pid": os.getpid()})


def explode(i: int) -> StageResult:
    raise PipelineError(f"chunk {i} exploded")


def _graph(n=4):
    from dask._task_spec import Task, TaskRef

    dsk = {}
    for i in range(n):
        dsk[("p", i)] = Task(("p", i), produce, i)
        dsk[("c", i)] = Task(("c", i), consume, i, TaskRef(("p", i)))
    return dsk, [("c", i) for i in range(n)]


@pytest.mark.parametrize("scheduler", ["sync", "threads", "processes"])
def test_every_scheduler_passes_data_along_edges_and_reports_each_key(scheduler):
    dsk, keys = _graph()
    seen = []
    run = run_graph(dsk, keys, scheduler=scheduler, workers=2, on_result=seen.append)
    assert sorted((r.chunk, r.n) for r in run.results) == [(i, 3 * i) for i in range(4)]
    assert len(seen) == 4 and run.workers == (1 if scheduler == "sync" else 2)
    pids = {r.checks["pid"] for r in run.results}
    assert (os.getpid() in pids) == (scheduler != "processes")  # processes really run elsewhere


def test_only_the_wanted_keys_are_reported():
    dsk, keys = _graph(2)
    run = run_graph(dsk, keys[:1], scheduler="sync")
    assert [r.chunk for r in run.results] == [0]


def test_a_failing_task_surfaces_its_error():
    from dask._task_spec import Task

    with pytest.raises(PipelineError, match="chunk 1 exploded"):
        run_graph({("e", 1): Task(("e", 1), explode, 1)}, [("e", 1)], scheduler="threads", workers=2)


def test_empty_graph_is_fine():
    assert run_graph({}, [], scheduler="processes", workers=2).results == []


def test_unreachable_cluster_is_one_line():
    with pytest.raises(PipelineError, match="cannot reach the dask scheduler"):
        run_graph({}, [], scheduler="tcp://127.0.0.1:9")


def _running(pid: int) -> bool:
    psutil = pytest.importorskip("psutil")
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_worker_exits_when_the_build_is_killed(tmp_path):
    """``_watch_parent``: a grandchild watching its grandparent (as pool workers watch the build through the
    forkserver) exits once that process is SIGKILLed."""
    pidfile = tmp_path / "child.pid"
    child = ("import os, sys, time\nfrom facesr.pipeline.runner import _watch_parent\n"
             "_watch_parent(int(sys.argv[1]))\nopen(sys.argv[2], 'w').write(str(os.getpid()))\ntime.sleep(60)\n")
    parent = ("import subprocess, sys, os, time\n"
              f"subprocess.Popen([sys.executable, '-c', {child!r}, str(os.getpid()), sys.argv[1]])\n"
              "time.sleep(60)\n")
    env = {**os.environ, "PYTHONPATH": str(os.getcwd())}
    p = subprocess.Popen([sys.executable, "-c", parent, str(pidfile)], env=env)
    try:
        deadline = time.monotonic() + 30
        while not (pidfile.exists() and pidfile.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = int(pidfile.read_text())
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _running(pid):
            os.kill(pid, signal.SIGKILL)
            pytest.fail("the watching process outlived its parent")
    finally:
        if p.poll() is None:
            p.kill()
