"""The store lock and the per-chunk commit markers."""

from __future__ import annotations

import pytest

from facesr.errors import StoreError
from facesr.pipeline.lock import Ledger, StoreLock, state_dir


def test_state_dir_is_beside_the_store(tmp_path):
    assert state_dir(tmp_path / "a.zarr") == (tmp_path / "a.zarr.facesr").absolute()


def test_lock_is_exclusive_and_released(tmp_path):
    store = tmp_path / "s.zarr"
    waits = []
    with StoreLock(store):
        with pytest.raises(StoreError, match="locked by pid"):
            StoreLock(store, timeout=0.3, on_wait=waits.append).acquire()
    assert waits and "waiting" in waits[0]
    with StoreLock(store, timeout=0.3):  # free again
        pass


def test_ledger_marks_and_prunes(tmp_path):
    led = Ledger(tmp_path / "s.zarr")
    assert not led.is_done("heatmap", "k1", 0)
    led.mark("heatmap", "k1", 0, {"n": 4})
    led.mark("heatmap", "k1", 3)
    led.mark("heatmap", "k2", 1)
    led.mark("degrade/bicubic-pil_16", "k9", 2)
    assert led.done_chunks("heatmap", "k1") == {0, 3} and led.info("heatmap", "k1", 0) == {"n": 4}
    assert led.prune("heatmap", keep="k1") == ["k2"]
    assert led.keys("heatmap") == ["k1"] and led.done_chunks("degrade/bicubic-pil_16", "k9") == {2}


def test_lock_marks_building_and_commits_on_a_clean_exit(tmp_path):
    import numpy as np

    from facesr.data import schema, snapshots
    from facesr.data.store import FaceStore

    store = tmp_path / "s.zarr"
    with StoreLock(store):
        assert snapshots.building(store)["holder"].startswith("pid ")
        FaceStore.create(store, ids=["a", "b"], splits=["train", "val"], chunk=1).write(
            schema.HR, 0, np.zeros((2, 128, 128, 3), np.uint8))
    assert snapshots.building(store) is None and len(snapshots.list_snapshots(store)) == 1
    with pytest.raises(ValueError):
        with StoreLock(store):
            FaceStore.open(store, mode="r+").write(schema.HR, 0, np.ones((1, 128, 128, 3), np.uint8))
            raise ValueError("stage failed")
    assert snapshots.building(store) is not None  # changed and not committed: readers refuse it


def test_a_url_store_gets_no_local_lock_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with StoreLock("memory://bucket/s.zarr"):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["disk", "memory"])
def test_ledger_on_disk_and_at_a_url(tmp_path, monkeypatch, where):
    import uuid

    monkeypatch.chdir(tmp_path)
    store = tmp_path / "s.zarr" if where == "disk" else f"memory://ledger-{uuid.uuid4().hex}/s.zarr"
    led = Ledger(store)
    led.mark("degrade/bicubic-pil_16", "k1", 4, {"n": 2})
    led.mark("degrade/bicubic-pil_16", "k2", 1)
    assert led.is_done("degrade/bicubic-pil_16", "k1", 4) and not led.is_done("degrade/bicubic-pil_16", "k1", 3)
    assert led.done_chunks("degrade/bicubic-pil_16", "k1") == {4} and led.info("degrade/bicubic-pil_16", "k1", 4)
    assert led.keys("degrade/bicubic-pil_16") == ["k1", "k2"] and led.prune("degrade/bicubic-pil_16", "k1") == ["k2"]
    assert Ledger(store).committed("degrade/bicubic-pil_16", "k1", 9, trusted=True) == {4}
    led.clear()
    assert led.keys("degrade/bicubic-pil_16") == []
    if where == "memory":
        assert list(tmp_path.iterdir()) == []  # never a local folder named after the URL
