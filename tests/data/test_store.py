"""The store's contract, run against both backends (in-memory and on-disk zarr), as zarr tests its stores."""

from __future__ import annotations

import numpy as np
import pytest
import zarr

from facesr.data import schema
from facesr.data.store import SCHEMA_VERSION, FaceStore
from facesr.errors import SchemaVersionError, StoreCorruptError, StoreError, StoreNotFoundError

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
    def codecs(name: str) -> list[str]:
        return [type(c).__name__ for c in store.array(name).compressors]

    store.require(schema.HEATMAP)
    store.require(schema.PARSING)
    assert codecs("hr") == ["BloscCodec", "Crc32cCodec"] and store.array("hr").compressors[0].cname.value == "lz4"
    assert codecs("priors/heatmap") == ["BloscCodec", "Crc32cCodec"]  # float: shuffle + LZ4 (codecs_store.json)
    assert codecs("priors/parsing") == ["ZstdCodec", "Crc32cCodec"]  # class maps: 46x with Zstd
    assert codecs("ids") == ["Crc32cCodec"]  # every chunk has a checksum, strings too


def test_require_from_specs(store: FaceStore) -> None:
    boxes = store.require(schema.BOXES, boxes=16)
    assert boxes.shape == (10, 16, 6) and boxes.metadata.dimension_names == ("sample", "box", "field")
    lr = store.require(schema.lr("bicubic-pil:16"))
    assert lr.shape == (10, 16, 16, 3) and lr.dtype == np.uint8 and lr.chunks == (4, 16, 16, 3)
    assert lr.metadata.dimension_names == ("sample", "y_bicubic-pil_16", "x_bicubic-pil_16", "channel")
    hm = store.require(schema.HEATMAP)
    assert hm.shape == (10, 128, 128) and hm.dtype == np.float16
    assert store.require("priors/heatmap") is not None and schema.HEATMAP in store  # names and specs agree
    with pytest.raises(KeyError, match="boxes"):
        store.require(schema.BOXES.__class__(**{**schema.BOXES.__dict__, "name": "priors/boxes2"}))
    with pytest.raises(StoreError, match="not an array of the store schema"):
        store.require("priors/mystery")


def test_heatmap_is_float32_in_unit_range(store: FaceStore) -> None:
    store.require(schema.HEATMAP)
    store.write(schema.HEATMAP, 0, np.full((10, 128, 128), 0.25, np.float16))
    hm = store.heatmap(slice(2, 5))
    assert hm.dtype == np.float32 and hm.shape == (3, 128, 128) and float(hm.max()) == 0.25


def test_scrub_finds_a_flipped_byte(tmp_path) -> None:
    path = tmp_path / "s.zarr"
    fs = FaceStore.create(path, ids=IDS, splits=SPLITS, chunk=4)
    fs.write(schema.HR, 0, np.random.default_rng(1).integers(0, 256, (10, 128, 128, 3), dtype=np.uint8))
    assert fs.scrub() == []
    f = path / "hr" / "c" / "1" / "0" / "0" / "0"
    data = bytearray(f.read_bytes())
    data[100] ^= 0x40
    f.write_bytes(bytes(data))
    bad = FaceStore.open(path).scrub()
    assert len(bad) == 1 and bad[0].context == {"name": "hr", "chunk": [1], "path": str(path)}
    assert "hr chunk 1 (rows 4–7)" in str(bad[0])
    with pytest.raises(StoreCorruptError, match="hr chunk 1"):
        FaceStore.open(path).read(schema.HR, slice(0, 8))
    np.testing.assert_array_equal(FaceStore.open(path).read(schema.HR, slice(0, 4)).shape, (4, 128, 128, 3))


def test_splits_failures_and_indices(store: FaceStore) -> None:
    store.write("failure", 4, np.array(["unreadable: truncated JPEG", ""], dtype=str))
    assert store.valid().sum() == 9
    np.testing.assert_array_equal(store.indices("train"), [0, 1, 2, 3, 5])
    np.testing.assert_array_equal(store.indices("train", valid_only=False), np.arange(6))
    with pytest.raises(StoreError, match="unknown split"):
        store.indices("tset")
    info = store.info()
    assert info.splits == {"train": {"samples": 6, "usable": 5}, "val": {"samples": 3, "usable": 3},
                           "test": {"samples": 1, "usable": 1}}
    assert info.failures == 1 and info.failure_reasons == [
        {"reason": "unreadable: truncated JPEG", "count": 1, "first_id": "000004"}]
    assert info.arrays["hr"]["dims"] == ("sample", "y", "x", "channel") and info.as_dict()["chunks"] == 3


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
    FaceStore.create(tmp_path / "s.zarr", ids=["b"], splits=["val"], overwrite=True)
    assert list(FaceStore.open(tmp_path / "s.zarr").ids) == ["b"]
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "1.jpg").write_bytes(b"x")
    with pytest.raises(StoreError, match="deletes only a store"):  # never a dataset folder
        FaceStore.create(tmp_path / "photos", ids=["a"], splits=["train"], overwrite=True)
    assert (tmp_path / "photos" / "1.jpg").exists()


def test_reopen_and_schema_guard(tmp_path) -> None:
    path = tmp_path / "s.zarr"
    FaceStore.create(path, ids=IDS, splits=SPLITS, chunk=4, attrs={"source": {"name": "unit"}})
    store = FaceStore.open(path)
    assert store.attrs["schema_version"] == SCHEMA_VERSION and store.attrs["source"] == {"name": "unit"}
    zarr.open_group(str(path), mode="r+").attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(SchemaVersionError, match="schema version"):
        FaceStore.open(path)
    with pytest.raises(StoreNotFoundError, match="no store"):
        FaceStore.open(tmp_path / "nope.zarr")
    zarr.open_group(str(tmp_path / "plain.zarr"), mode="w")
    with pytest.raises(StoreError, match="not a facesr store"):
        FaceStore.open(tmp_path / "plain.zarr")
