"""Sample grids against small synthetic stores (the `facesr data info` / `show` commands: tests/commands/test_data.py)."""

from __future__ import annotations

import numpy as np
import pytest

from facesr.data.store import FaceStore
from facesr.data.visualize import pick, sample_grid
from facesr.errors import StoreError
from tests.data.test_loader import make_store


@pytest.fixture(scope="module")
def disk_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("vis") / "s.zarr"
    make_store(path)
    return path


def test_grid_shape_and_columns(disk_store):
    img = sample_grid(disk_store, n=6, per_row=3)
    # 2 rows of 3 blocks; a block is a 16-px label strip over 4 tiles (HR, LR, heatmap, parsing)
    bw, bh = 4 * 128 + 3 * 2, 16 + 128
    assert img.dtype == np.uint8 and img.shape == (2 * (bh + 4) + 4, 3 * (bw + 4) + 4, 3)
    hr_only = sample_grid(FaceStore.create(None, ids=["a", "b"], splits=["val", "val"]), n=16)
    assert hr_only.shape == (16 + 128 + 8, 2 * (128 + 4) + 4, 3)  # n clipped to the 2 samples, HR column only


def test_grid_picks_usable_samples_of_split(disk_store):
    st = FaceStore.open(disk_store)
    idx = pick(st, 100, "val")
    assert idx.tolist() == [i for i in range(30, 40) if i != 32]
    assert pick(st, 4, "train", seed=1).tolist() != pick(st, 4, "train", seed=2).tolist()
    img = sample_grid(st, n=2, split="val", priors=(), per_row=1)
    assert img.shape[1] == 2 * 128 + 2 + 8  # HR | LR


def test_grid_missing_prior_is_store_error():
    st = FaceStore.create(None, ids=["a"], splits=["train"])
    with pytest.raises(StoreError, match="priors/heatmap"):
        sample_grid(st, priors=("heatmap",))
    with pytest.raises(StoreError, match="no usable samples"):
        sample_grid(st, split="val")


def test_make_store_has_expected_arrays(disk_store):
    assert {"hr", "lr/bicubic-pil_16", "priors/heatmap", "priors/parsing", "landmarks"} <= set(
        FaceStore.open(disk_store).names())


def test_priors_grid_draws_every_prior_and_no_lr(disk_store):
    from facesr.data.visualize import priors_grid

    img = priors_grid(disk_store, n=3, columns=3)
    bw, bh = 4 * 128 + 3 * 2, 16 + 128  # HR | heatmap | parsing | landmark dots (no boxes in this store)
    assert img.shape == (bh + 8, 3 * (bw + 4) + 4, 3)
    st = FaceStore.open(disk_store)
    idx = pick(st, 3)
    landmark_tile = img[4 + 16 : 4 + 16 + 128, 4 + 3 * 130 : 4 + 3 * 130 + 128]
    assert not np.array_equal(landmark_tile, st.read("hr", int(idx[0])))  # dots drawn on the HR face


def test_comparison_grid_columns_follow_the_samples():
    from facesr.data.visualize import comparison_grid

    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    full = {"lr": hr[:, ::8, ::8], "bicubic": hr, "sr": hr, "hr": hr}
    assert comparison_grid(full).shape == (14 + 3 * 142 + 2, 5 * 130 + 2, 3)  # LR | bicubic | SR | HR | error
    assert comparison_grid({"sr": hr, "hr": hr}, n=2).shape == (14 + 2 * 142 + 2, 3 * 130 + 2, 3)
    assert comparison_grid(full, error=False).shape[1] == 4 * 130 + 2
    err = comparison_grid({"sr": hr, "hr": 255 - hr}, n=1)[14 + 12 : 14 + 12 + 128, 2 * 130 + 2 : 2 * 130 + 2 + 128]
    assert err.mean() > 200  # |error| x4 of an inverted image saturates
