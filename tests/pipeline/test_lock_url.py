"""Locking, the building marker and resume for stores at URLs (issue 12, item 2): the lease object
``<url>.facesr/lock`` against a local S3 server (moto), and its read-back fallback on memory://."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from facesr.data import schema, snapshots
from facesr.data.storage import locate
from facesr.data.store import FaceStore
from facesr.errors import StoreError, StoreIncompleteError, StoreLockedError
from facesr.pipeline.lease import Lease, lease_held
from facesr.pipeline.lock import Ledger, StoreLock
from tests.data._s3 import make_bucket, s3_endpoint  # noqa: F401 - the fixture

ROOT = Path(__file__).resolve().parents[2]


def _url(bucket: str = "locks") -> str:
    return f"s3://{bucket}/{uuid.uuid4().hex[:8]}.zarr"


def _lease_key(url: str) -> str:
    fs, base = snapshots.state_url(locate(url))
    return f"{base}/lock"


def _small_store(url: str) -> FaceStore:
    fs = FaceStore.create(url, ids=["a", "b"], splits=["train", "val"], chunk=1)
    fs.write(schema.HR, 0, np.zeros((2, 128, 128, 3), np.uint8))
    return fs


# ------------------------------------------------------------------------------------------- memory://
def test_memory_lease_is_exclusive_and_released():
    url = f"memory://lease-{uuid.uuid4().hex}/s.zarr"
    waits: list[str] = []
    a = Lease(locate(url), ttl=30).acquire()
    assert not a.objects.conditional and "read-back" in a.guarantee
    with pytest.raises(StoreLockedError, match="locked by pid"):
        Lease(locate(url), ttl=30).acquire(timeout=0.3, on_wait=waits.append)
    assert waits and "waiting for it to finish" in waits[0] and lease_held(locate(url))
    a.release()
    assert not lease_held(locate(url))
    Lease(locate(url), ttl=30).acquire(timeout=0.3).release()


# ------------------------------------------------------------------------------------------------ s3://
@pytest.fixture
def bucket(s3_endpoint, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    make_bucket(monkeypatch, s3_endpoint, "locks")
    yield "locks"
    assert list(tmp_path.iterdir()) == [] or all(p.name == "faces" for p in tmp_path.iterdir())


def test_the_server_honours_conditional_writes(bucket):
    """What the lease's guarantee rests on: If-None-Match: * and If-Match are decided by the server."""
    url = _url()
    lease = Lease(locate(url))
    objs, key = lease.objects, _lease_key(url)
    assert objs.conditional
    v1 = objs.create(key, b"one")
    assert v1 is not None and objs.create(key, b"two") is None  # exists: refused
    v2 = objs.replace(key, b"three", v1)
    assert v2 is not None and v2 != v1
    assert objs.replace(key, b"four", v1) is None  # a stale ETag: refused
    objs.delete(key, v1)  # not ours any more: kept
    assert objs.read(key)[1] == v2
    objs.delete(key, v2)
    assert objs.read(key) is None


def test_s3_lock_is_exclusive_renewed_and_released(bucket):
    url = _url()
    waits: list[str] = []
    first = StoreLock(url, lease_ttl=0.8, commit=False)
    first.acquire()
    assert first._lease.objects.conditional and "If-None-Match" in first._lease.guarantee
    v0 = first._lease.objects.read(_lease_key(url))[1]
    # longer than the ttl: only the heartbeat keeps the waiter from taking the lease over
    with pytest.raises(StoreLockedError, match=f"locked by pid {os.getpid()}"):
        StoreLock(url, timeout=2.0, on_wait=waits.append, lease_ttl=0.8, commit=False).acquire()
    assert waits and url in waits[0]
    data, v1 = first._lease.objects.read(_lease_key(url))
    assert v1 != v0 and data["beat"] >= 4  # renewed every ttl / 4
    first.release()
    assert first._lease.objects.read(_lease_key(url)) is None
    with StoreLock(url, timeout=1, commit=False):
        pass


def test_s3_lease_of_a_dead_holder_is_taken_over(bucket):
    """A holder killed with -9 stops renewing; a waiter takes the lease over after the ttl."""
    url = _url()
    code = ("import sys, time; from facesr.pipeline.lock import StoreLock; "
            "StoreLock(sys.argv[1], lease_ttl=1.0, commit=False).acquire(); print('held', flush=True); "
            "time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, url], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "held"
        with pytest.raises(StoreLockedError, match=f"pid {proc.pid}"):  # alive: renewed, not taken
            Lease(locate(url), ttl=1.0).acquire(timeout=2.5)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    t0 = time.monotonic()
    lease = Lease(locate(url), ttl=1.0).acquire(timeout=30)
    assert f"pid {proc.pid}" in (lease.took_over or "") and time.monotonic() - t0 < 10
    lease.release()


def test_a_lost_lease_refuses_to_commit(bucket):
    url = _url()
    _small_store(url)
    lock = StoreLock(url, lease_ttl=0.6)
    lock.acquire()
    lock._lease._stop.set()  # a paused holder: it stops renewing ...
    lock._lease._thread.join()
    other = Lease(locate(url), ttl=0.6).acquire(timeout=10)  # ... and its lease is taken over
    lock._lease._stop.clear()
    lock._lease._heartbeat()  # it wakes up: its next renewal is refused
    assert lock._lease.lost and "took the lease over" in lock._lease.lost
    with pytest.raises(StoreLockedError, match="lost the store's lock"):
        lock.__exit__(None, None, None)  # the build's clean exit would commit: refused
    assert snapshots.building(url) is not None  # not committed
    other.release()


def test_building_marker_guards_readers_and_clears_on_commit(bucket):
    url = _url()
    with StoreLock(url):
        assert snapshots.building(url)["holder"].startswith("pid ")
        _small_store(url)
        with pytest.raises(StoreIncompleteError, match="is being built by pid"):
            FaceStore.open(url, snapshot="latest")
        assert FaceStore.open(url).info().building is not None  # inspection still reads the live store
    assert snapshots.building(url) is None and not lease_held(locate(url))
    assert FaceStore.open(url, snapshot="latest").n == 2
    # a build that fails before changing anything clears its marker; one that changed the store keeps it
    with pytest.raises(ValueError):
        with StoreLock(url):
            raise ValueError("refused before writing")
    assert snapshots.building(url) is None
    with pytest.raises(ValueError):
        with StoreLock(url):
            FaceStore.open(url, mode="r+").write(schema.HR, 0, np.ones((1, 128, 128, 3), np.uint8))
            raise ValueError("stage failed")
    with pytest.raises(StoreIncompleteError, match="was interrupted or failed"):
        FaceStore.open(url, snapshot="latest")


def test_snapshots_at_urls_are_refused_in_one_line(bucket):
    url = _url()
    with StoreLock(url):
        _small_store(url)
    with pytest.raises(StoreError, match="keeps no snapshots") as exc:
        FaceStore.open(url, snapshot="20261201T000000Z-00000000")
    assert "local folder" in exc.value.hint
    assert FaceStore.open(url, snapshot="latest").snapshot_id is None and snapshots.list_snapshots(url) == []


def test_interrupted_s3_build_resumes(bucket, tmp_path, monkeypatch):
    """A stage raising on chunk 1 interrupts the build; readers refuse the store; the rerun skips every
    chunk already committed (their markers are on S3) and commits."""
    from facesr.demo import make_demo_faces
    from facesr.errors import PipelineError
    from facesr.pipeline import tasks
    from facesr.pipeline.build import BuildOptions, RunOptions, SourceSpec, build_store

    faces = make_demo_faces(tmp_path / "faces", n=8, seed=3)
    url = _url()
    opts = BuildOptions(crop="resize", lr=("bicubic-pil:16",), chunk=4, priors=False)
    run = RunOptions(scheduler="sync", workers=1, verify=False)
    real = tasks.run_chunk
    calls: list[str] = []

    def flaky(stage, inputs, records):
        calls.append(stage.name)
        if stage.name.startswith("degrade") and calls.count(stage.name) == 2:
            raise RuntimeError("interrupted")
        return real(stage, inputs, records)

    monkeypatch.setattr(tasks, "run_chunk", flaky)
    with pytest.raises(PipelineError, match="interrupted"):
        build_store(url, opts, source=SourceSpec("folder", faces, {}), run=run)
    with pytest.raises(StoreIncompleteError, match="interrupted or failed"):
        FaceStore.open(url, snapshot="latest")
    assert not lease_held(locate(url))  # the lease went with the failed build
    stage = next(k for k in _stages(url) if k.startswith("degrade"))
    (key,) = Ledger(url).keys(stage)
    assert len(Ledger(url).done_chunks(stage, key)) == 1  # one of the two chunks was committed (any order)
    monkeypatch.setattr(tasks, "run_chunk", real)
    report = build_store(url, opts, source=SourceSpec("folder", faces, {}), run=run)
    degrade = next(s for n, s in report.stages.items() if n.startswith("degrade"))
    assert degrade["skipped_rows"] == 4 and degrade["rows"] == 4
    assert report.stages["crop"]["skipped_rows"] == 8 and report.stages["crop"]["rows"] == 0
    fs = FaceStore.open(url, snapshot="latest")
    assert snapshots.building(url) is None and fs.read(schema.lr("bicubic-pil:16"), slice(None)).shape == (8, 16, 16, 3)
    committed = json.loads(snapshots.state_url(locate(url))[0].cat_file(
        f"{snapshots.state_url(locate(url))[1]}/committed.json"))
    assert committed["digest"]


def _stages(url: str) -> list[str]:
    led = Ledger(url)
    return [p.rsplit("/", 1)[-1].replace("__", "/") for p in led._fs.ls(led.root, detail=False)]
