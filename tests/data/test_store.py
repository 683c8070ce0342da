"""The store's contract, run against both backends (in-memory and on-disk zarr), as zarr tests its stores."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from facesr.data.store import SCHEMA_VERSION, FaceStore
from facesr.errors import SchemaError, StoreError

IDS = [f"{i:06d}" for i in range(10)]
SPLITS = ["train"] * 6 + ["val"] * 3 + ["test"]


@pytest.fixture(params=["memory", "disk"])
def store(request, tmp_path) -> FaceStore:
    path = None if request.param == "memory" else tmp_path / "s.zarr"
    return FaceStore.create(path, ids=IDS, splits=SPLITS, chunk=4, attrs={"source": {"name": "unit"}})


def test_layout_and_roundtrip(store: FaceStore) -> None:
    assert store.n == 10 and store.chunk == 4
    assert list(store.ids) == IDS and list(store.splits) == SPLITS
    assert {"ids", "split", "failure", "hr"} <= set(store.names())
    hr = np.random.default_rng(0).integers(0, 256, (10, 128, 128, 3), dtype=np.uint8)
    for sl in store.chunk_slices():
        store.write("hr", sl.start, hr[sl])
    np.testing.assert_array_equal(store.read("hr"), hr)
    assert store.array("hr").chunks == (4, 128, 128, 3)
    assert [(s.start, s.stop) for s in store.chunk_slices()] == [(0, 4), (4, 8), (8, 10)]


def test_nested_arrays_and_attrs(store: FaceStore) -> None:
    lm = store.require("landmarks", (68, 2), "float32", attrs={"provider": "dlib"})
    assert np.isnan(lm[:]).all()  # absent until written
    store.require("lr/bicubic-pil_16", (16, 16, 3), "uint8")
    store.require("priors/heatmap", (128, 128), "float16", attrs={"preset": "paper"})
    assert "lr/bicubic-pil_16" in store.names() and "priors/heatmap" in store
    assert store.array("priors/heatmap").attrs["preset"] == "paper"
    # require is idempotent and merges attributes
    store.require("priors/heatmap", (128, 128), "float16", attrs={"weights": "none"})
    assert dict(store.array("priors/heatmap").attrs) == {"preset": "paper", "weights": "none"}
    with pytest.raises(StoreError, match="not"):
        store.require("priors/heatmap", (64, 64), "float16")
    store.delete("priors/heatmap")
    assert "priors/heatmap" not in store


def test_codec_follows_the_array_kind(store: FaceStore) -> None:
    def codec(name: str) -> str:
        return type(store.array(name).compressors[0]).__name__

    store.require("priors/heatmap", (128, 128), "float16")
    store.require("priors/parsing", (128, 128), "uint8")
    assert codec("hr") == "BloscCodec" and store.array("hr").compressors[0].cname.value == "lz4"
    assert codec("priors/heatmap") == "BloscCodec"  # float: shuffle + LZ4 (bench/results/codecs_store.json)
    assert codec("priors/parsing") == "ZstdCodec"  # class maps: 46x with Zstd


def test_splits_failures_and_indices(store: FaceStore) -> None:
    store.write("failure", 4, np.array(["unreadable: truncated JPEG", ""], dtype=str))
    assert store.valid().sum() == 9
    np.testing.assert_array_equal(store.indices("train"), [0, 1, 2, 3, 5])
    np.testing.assert_array_equal(store.indices("train", valid_only=False), np.arange(6))
    with pytest.raises(StoreError, match="unknown split"):
        store.indices("tset")
    info = store.info()
    assert info.splits == {"train": 6, "val": 3, "test": 1} and info.failures == 1


def test_missing_array_names_what_exists(store: FaceStore) -> None:
    with pytest.raises(StoreError, match="priors/parsing") as exc:
        store.array("priors/parsing")
    assert "hr" in str(exc.value) and "priors build" in exc.value.hint


def test_create_validates_input(tmp_path) -> None:
    with pytest.raises(StoreError, match="twice"):
        FaceStore.create(None, ids=["a", "a"], splits=["train", "train"])
    with pytest.raises(StoreError, match="split"):
        FaceStore.create(None, ids=["a"], splits=["training"])
    with pytest.raises(StoreError, match="at least one"):
        FaceStore.create(None, ids=[], splits=[])
    FaceStore.create(tmp_path / "s.zarr", ids=["a"], splits=["train"])
    with pytest.raises(StoreError, match="exists"):
        FaceStore.create(tmp_path / "s.zarr", ids=["a"], splits=["train"])


def test_reopen_and_schema_guard(tmp_path) -> None:
    path = tmp_path / "s.zarr"
    FaceStore.create(path, ids=IDS, splits=SPLITS, chunk=4, attrs={"source": {"name": "unit"}})
    store = FaceStore.open(path)
    assert store.attrs["schema_version"] == SCHEMA_VERSION and store.attrs["source"] == {"name": "unit"}
    zarr.open_group(str(path), mode="r+").attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaError, match="schema version"):
        FaceStore.open(path)
    with pytest.raises(StoreError, match="no store"):
        FaceStore.open(tmp_path / "nope.zarr")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreError, match="not a facesr store"):
        FaceStore.open(tmp_path / "plain.zarr")
