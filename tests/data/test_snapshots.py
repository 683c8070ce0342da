"""Readers see a complete, immutable store: completeness markers, snapshots, and rebuilds by other processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader

from facesr.data import schema, snapshots
from facesr.data.loader import StoreDataset
from facesr.data.store import FaceStore
from facesr.errors import StoreIncompleteError, StoreNotFoundError
from facesr.pipeline.lock import StoreLock

N, CHUNK = 24, 8
ID_FORMAT = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{8}$")

# A "build" in another process: take the store's lock, (re)write the heatmap as a constant, commit on exit.
BUILD = textwrap.dedent("""
    import sys, time, numpy as np
    from facesr.data import schema
    from facesr.data.store import FaceStore
    from facesr.pipeline.lock import StoreLock
    path, value, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    with StoreLock(path):
        if mode == "overwrite":  # --overwrite: the whole store is deleted and made again
            fs = FaceStore.create(path, ids=[f"{i:04d}" for i in range(24)], splits=["train"] * 24, chunk=8,
                                  overwrite=True)
        else:
            fs = FaceStore.open(path, mode="r+")
        fs.require(schema.HEATMAP)
        for sl in fs.chunk_slices():
            fs.write(schema.HEATMAP, sl.start, np.full((sl.stop - sl.start, 128, 128), value, np.float16))
            if mode == "hang":
                print("wrote", flush=True)
                time.sleep(60)
""")


def _run_build(tmp_path, path, value, mode="update", wait=True):
    script = tmp_path / "build.py"
    script.write_text(BUILD)
    proc = subprocess.Popen([sys.executable, str(script), str(path), str(value), mode], stdout=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": os.getcwd()})
    if wait:
        assert proc.wait(timeout=120) == 0
    return proc


def _make(path, value=0.25) -> str:
    with StoreLock(path):
        fs = FaceStore.create(path, ids=[f"{i:04d}" for i in range(N)], splits=["train"] * N, chunk=CHUNK)
        fs.write(schema.HR, 0, np.random.default_rng(0).integers(0, 256, (N, 128, 128, 3), dtype=np.uint8))
        fs.require(schema.HEATMAP)
        fs.write(schema.HEATMAP, 0, np.full((N, 128, 128), value, np.float16))
    return snapshots.list_snapshots(path)[-1]["id"]


def test_commit_makes_a_snapshot_that_readers_pin(tmp_path):
    path = tmp_path / "s.zarr"
    sid = _make(path)
    assert ID_FORMAT.match(sid)
    fs = FaceStore.open(path, snapshot="latest")
    assert fs.snapshot_id == sid and fs.path == path and float(fs.heatmap(0).max()) == 0.25
    assert FaceStore.open(path).snapshot_id is None  # inspection reads the live store
    info = FaceStore.open(path).info()
    assert [s["id"] for s in info.snapshots] == [sid] and info.snapshots[0]["readers"] and info.building is None
    ds = xr.open_zarr(path)  # consolidated metadata written at the commit: plain xarray opens it
    assert ds["hr"].dims == ("sample", "y", "x", "channel") and ds.sizes["sample"] == N
    with pytest.raises(StoreNotFoundError, match="no snapshot 'nope'"):
        FaceStore.open(path, snapshot="nope")


def test_interrupted_and_running_builds_are_refused(tmp_path):
    path = tmp_path / "s.zarr"
    _make(path)
    proc = _run_build(tmp_path, path, 0.5, mode="hang", wait=False)
    try:
        assert proc.stdout.readline().strip() == "wrote"
        with pytest.raises(StoreIncompleteError, match="is being built by pid"):
            FaceStore.open(path, snapshot="latest")
        with pytest.raises(StoreIncompleteError, match="being built"):
            StoreDataset(path, priors=())
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    with pytest.raises(StoreIncompleteError, match="was interrupted") as exc:
        FaceStore.open(path, snapshot="latest")
    assert "rerun" in exc.value.hint
    old = snapshots.list_snapshots(path)[-1]["id"]  # an older complete build can still be pinned
    assert float(FaceStore.open(path, snapshot=old).heatmap(0).max()) == 0.25
    _run_build(tmp_path, path, 0.5)  # the rerun commits
    assert float(FaceStore.open(path, snapshot="latest").heatmap(0).max()) == 0.5


def test_a_build_that_fails_before_writing_leaves_the_store_readable(tmp_path):
    path = tmp_path / "s.zarr"
    sid = _make(path)
    with pytest.raises(RuntimeError):
        with StoreLock(path):
            raise RuntimeError("bad option")
    assert FaceStore.open(path, snapshot="latest").snapshot_id == sid


@pytest.mark.parametrize("mode", ["update", "overwrite"])
def test_rebuild_during_training_changes_nothing_it_reads(tmp_path, mode):
    path = tmp_path / "s.zarr"
    sid = _make(path, 0.25)
    ds = StoreDataset(path, split="train", lr=None, priors=("heatmap",), batch_size=4, buffer_size=0)
    dl = DataLoader(ds, batch_size=None, num_workers=1, persistent_workers=True)
    it = iter(dl)
    first = next(it)  # the worker process is up and reading
    _run_build(tmp_path, path, 0.75, mode=mode)  # another process rebuilds the priors and commits
    seen = [first] + list(it)
    ds.set_epoch(1)
    seen += list(dl)  # a new epoch in the same (persistent) worker
    seen += list(ds.loader())  # and in this process
    values = {float(v) for b in seen for v in b["heatmap"].float().unique()}
    assert values == {0.25} and sum(len(b["index"]) for b in seen) == 3 * N
    assert ds.snapshot_id == sid
    new = FaceStore.open(path, snapshot="latest")
    assert new.snapshot_id != sid and float(new.heatmap(0).max()) == 0.75
    assert sid in [s["id"] for s in snapshots.list_snapshots(path)]


def test_gc_keeps_the_newest_and_those_being_read(tmp_path):
    path = tmp_path / "s.zarr"
    first = _make(path, 0.0)
    pinned = FaceStore.open(path, snapshot="latest")
    for v in (1, 2, 3, 4):
        time.sleep(1.05)  # ids carry the second of the commit
        _run_build(tmp_path, path, v / 8)
    ids = [s["id"] for s in snapshots.list_snapshots(path)]
    assert first in ids and len(ids) == snapshots.KEEP + 1  # the pinned one survives collection
    assert float(pinned.heatmap(0).max()) == 0.0
    del pinned
    torch.cuda.empty_cache() if torch.cuda.is_available() else None
    assert first in snapshots.gc(path)
    assert len(snapshots.list_snapshots(path)) == snapshots.KEEP


def test_latest_is_the_last_commit_even_within_one_second(tmp_path, monkeypatch):
    """Ids made in one second differ only in their hex; the newest commit must still be "latest"."""
    monkeypatch.setattr(snapshots, "_now", lambda: "2026-12-01T00:00:00+0000")
    path = tmp_path / "s.zarr"
    _make(path, 0.25)
    for value in (0.5, 0.75, 1.0):
        with StoreLock(path):
            FaceStore.open(path, "r+").write(schema.HEATMAP, 0, np.full((N, 128, 128), value, np.float16))
        sid = snapshots.list_snapshots(path)[-1]["id"]
        assert FaceStore.open(path, snapshot="latest").snapshot_id == sid
        assert float(FaceStore.open(path, snapshot="latest").heatmap(0).max()) == value
