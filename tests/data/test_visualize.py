"""Sample grids and the `facesr data info` / `facesr data show` commands, against small synthetic stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from facesr.cli import app
from facesr.data.images import read_image
from facesr.data.store import FaceStore
from facesr.data.visualize import pick, sample_grid
from facesr.errors import StoreError
from tests.data.test_loader import make_store

runner = CliRunner()


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


def test_cli_info_and_show(disk_store, tmp_path):
    r = runner.invoke(app, ["data", "info", str(disk_store)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    for text in ("45 samples", "train 30 (27 usable)", "failures: 4", "no face found", "lr/bicubic-pil_16",
                 "priors/heatmap", "float16", "blosc-lz4+shuf", "zstd-3", "source", "unit"):
        assert text in r.output, text
    r = runner.invoke(app, ["data", "info", str(disk_store), "--json"])
    s = json.loads(r.output)
    assert s["n"] == 45 and s["failures"] == 4 and s["arrays"]["hr"]["ratio"] > 0.5
    out = tmp_path / "g.png"
    r = runner.invoke(app, ["data", "show", str(disk_store), "-n", "3", "-o", str(out), "--split", "val"])
    assert r.exit_code == 0, r.output
    assert read_image(out).shape == sample_grid(disk_store, n=3, split="val").shape


def test_cli_bad_path_is_one_line(tmp_path):
    from facesr.cli import main

    for cmd in (["data", "info", str(tmp_path / "nope.zarr")], ["data", "show", str(tmp_path / "nope.zarr")]):
        with pytest.raises(SystemExit) as exc:
            main(cmd)
        assert exc.value.code == 1


def test_make_store_has_expected_arrays(disk_store):
    assert {"hr", "lr/bicubic-pil_16", "priors/heatmap", "priors/parsing", "landmarks"} <= set(
        FaceStore.open(disk_store).names())
