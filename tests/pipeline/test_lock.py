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
