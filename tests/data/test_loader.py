"""StoreDataset: determinism, exact coverage across ranks × workers, skipping failures, the raw batch contract,
checksums and snapshots."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from facesr.data import schema
from facesr.data.loader import LoaderOptions, StoreDataset, StoreEvalDataset, to_float
from facesr.data.store import FaceStore
from facesr.errors import ConfigError, SchemaVersionError, StoreCorruptError, StoreError

N = 45
CHUNK = 8
SPLITS = (["train"] * 30 + ["val"] * 10 + ["test"] * 5)
BAD = {3, 17, 21, 32}  # failed samples: three in train, one in val


def make_store(path, heatmap_dtype="float16", n=N, chunk=CHUNK, splits=SPLITS, bad=BAD) -> FaceStore:
    rng = np.random.default_rng(0)
    st = FaceStore.create(path, ids=[f"{i:06d}" for i in range(n)], splits=list(splits)[:n], chunk=chunk,
                          attrs={"source": {"name": "unit"}, "crop": {"method": "aligned"}, "lr": ["bicubic-pil:16"]})
    hr = rng.integers(0, 256, (n, 128, 128, 3), dtype=np.uint8)
    hr[:, 0, 0, 0] = np.arange(n) % 256  # row marker
    st.write("hr", 0, hr)
    st.require("lr/bicubic-pil_16", (16, 16, 3), "uint8")
    st.write("lr/bicubic-pil_16", 0, hr[:, ::8, ::8])
    hm = np.linspace(0, 1, n * 128 * 128).reshape(n, 128, 128)
    if heatmap_dtype == "float16":
        st.require("priors/heatmap", (128, 128), "float16")
        st.write("priors/heatmap", 0, hm.astype(np.float16))
    else:
        st.require("priors/heatmap", (128, 128), heatmap_dtype, attrs={"scale": 1000})
        st.write("priors/heatmap", 0, np.round(hm * 1000).astype(heatmap_dtype))
    st.require("priors/parsing", (128, 128), "uint8")
    st.write("priors/parsing", 0, rng.integers(0, 6, (n, 128, 128), dtype=np.uint8))
    st.require("landmarks", (68, 2), "float32")
    st.write("landmarks", 0, rng.uniform(0, 127, (n, 68, 2)).astype(np.float32))
    fail = np.array(["" if i not in bad else "no face found" for i in range(n)], dtype=str)
    st.write("failure", 0, fail)
    return st


@pytest.fixture(scope="module")
def disk_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("loader") / "s.zarr"
    make_store(path)
    return path


@pytest.fixture(scope="module")
def mem_store():
    return make_store(None)


def _order(ds, epoch=0, workers=1):
    ds.set_epoch(epoch)
    out = []
    for w in range(workers):
        for _, rows in ds.plan(epoch, w, workers):
            out.extend(rows.tolist())
    return out


def _iter_indices(ds, epoch=0):
    ds.set_epoch(epoch)
    return [int(i) for b in ds for i in b["index"]]


TRAIN = [i for i in range(30) if i not in BAD]
VAL = [i for i in range(30, 40) if i not in BAD]


def test_options_object_and_keywords_agree(mem_store):
    opts = LoaderOptions(split="train", lr="bicubic-pil_16", priors=(), seed=3, batch_size=5)
    a = StoreDataset(mem_store, opts)
    b = StoreDataset(mem_store, "train", lr="bicubic-pil:16", priors=(), seed=3, batch_size=5, raw=True)
    assert a.options == replace(b.options, lr="bicubic-pil_16")
    assert _iter_indices(a, 2) == _iter_indices(b, 2)
    assert StoreDataset(mem_store, opts, seed=4).seed == 4  # keywords override the object
    with pytest.raises(ConfigError, match="raw batches only"):
        StoreDataset(mem_store, priors=(), raw=False)
    with pytest.raises(ConfigError, match="unknown loader option"):
        StoreDataset(mem_store, priors=(), bathc_size=4)
    with pytest.raises(ConfigError, match="batch_size"):
        LoaderOptions(batch_size=0)


def test_determinism_and_epochs(mem_store):
    a = StoreDataset(mem_store, seed=3, priors=())
    b = StoreDataset(mem_store, seed=3, priors=())
    assert _iter_indices(a, 0) == _iter_indices(b, 0)
    assert _iter_indices(a, 1) == _iter_indices(b, 1)
    assert _iter_indices(a, 0) != _iter_indices(a, 1)
    assert _iter_indices(a, 0) != _iter_indices(StoreDataset(mem_store, seed=4, priors=()), 0)
    assert sorted(_iter_indices(a, 5)) == TRAIN  # one rank: every valid train row exactly once


def test_invalid_samples_skipped_or_kept(mem_store):
    assert sorted(_iter_indices(StoreEvalDataset(mem_store, split="train", priors=()))) == TRAIN
    kept = StoreEvalDataset(mem_store, split="train", priors=(), drop_invalid=False)
    assert _iter_indices(kept) == list(range(30))
    assert len(StoreDataset(mem_store, split=None, priors=())) == N - len(BAD)


@pytest.mark.parametrize("remainder", ["drop", "pad"])
def test_plan_ranks_by_workers_cover_split(mem_store, remainder):
    for epoch in (0, 1, 2):
        seen = []
        per_rank = []
        for rank in range(2):
            ds = StoreDataset(mem_store, split="train", priors=(), rank=rank, world_size=2, remainder=remainder)
            rows = _order(ds, epoch, workers=2)
            assert len(rows) == len(ds)
            per_rank.append(len(rows))
            seen += rows
        assert per_rank[0] == per_rank[1]
        c = Counter(seen)
        assert set(c) <= set(TRAIN)
        if remainder == "drop":  # 27 rows, 2 ranks: 13 each, one row dropped, none twice
            assert len(c) == len(TRAIN) - 1 and max(c.values()) == 1
        else:  # padded: every row, exactly one twice
            assert set(c) == set(TRAIN) and sum(c.values()) == len(TRAIN) + 1


def test_dataloader_two_ranks_two_workers_every_sample_once(disk_store):
    seen = []
    for rank in range(2):
        ds = StoreEvalDataset(disk_store, split="val", priors=(), rank=rank, world_size=2, batch_size=4)
        dl = DataLoader(ds, batch_size=None, num_workers=2)
        got = torch.cat([b["index"] for b in dl]).tolist()
        assert len(got) == len(ds)
        seen += got
    assert sorted(seen) == VAL and len(seen) == len(set(seen))
    # shuffled, drop remainder: equal counts per rank, disjoint, each row at most once
    counts, seen = [], []
    for rank in range(2):
        ds = StoreDataset(disk_store, split="train", priors=(), rank=rank, world_size=2, buffer_size=6, batch_size=5)
        ds.set_epoch(1)
        got = [int(i) for b in DataLoader(ds, batch_size=None, num_workers=2) for i in b["index"]]
        counts.append(len(got))
        seen += got
        assert sorted(got) == sorted(_order(ds, 1, workers=2))  # the workers read exactly the plan
    assert counts == [13, 13] and len(set(seen)) == 26 and set(seen) <= set(TRAIN)


def test_set_epoch_reaches_persistent_workers(disk_store):
    ds = StoreDataset(disk_store, split="train", priors=(), buffer_size=4, batch_size=64)
    dl = DataLoader(ds, batch_size=None, num_workers=1, persistent_workers=True)
    orders = []
    for epoch in (0, 1, 0):
        ds.set_epoch(epoch)
        orders.append(torch.cat([b["index"] for b in dl]).tolist())
    assert orders[0] == orders[2] != orders[1]
    assert sorted(orders[1]) == TRAIN


def test_raw_batch_contract_and_to_float(mem_store):
    ds = StoreEvalDataset(mem_store, split="val", priors=("heatmap", "parsing", "landmarks"), batch_size=4)
    b = next(iter(ds))
    assert set(b) == {"lr", "hr", "heatmap", "parsing", "landmarks", "index"}
    assert b["lr"].shape == (4, 16, 16, 3) and b["lr"].dtype == torch.uint8
    assert b["hr"].shape == (4, 128, 128, 3) and b["hr"].dtype == torch.uint8
    assert b["heatmap"].shape == (4, 128, 128) and b["heatmap"].dtype == torch.float16
    assert b["parsing"].dtype == torch.uint8 and b["landmarks"].shape == (4, 68, 2)
    rows = b["index"].numpy()
    np.testing.assert_array_equal(rows, VAL[:4])
    np.testing.assert_array_equal(b["hr"].numpy(), mem_store.read("hr", rows))  # the stored bytes, unchanged
    f = to_float(b)
    assert f["hr"].shape == (4, 3, 128, 128) and f["hr"].dtype == torch.float32 and f["hr"].is_contiguous()
    assert f["lr"].shape == (4, 3, 16, 16) and f["heatmap"].shape == (4, 1, 128, 128)
    assert f["parsing"].dtype == torch.int64 and f["index"].dtype == torch.int64
    np.testing.assert_allclose(f["hr"].permute(0, 2, 3, 1).numpy() * 255, mem_store.read("hr", rows), atol=1e-3)
    np.testing.assert_array_equal(f["heatmap"][:, 0].numpy(), mem_store.heatmap(rows))
    for k in ("lr", "hr", "heatmap"):
        assert 0.0 <= float(f[k].min()) and float(f[k].max()) <= 1.0
    assert to_float(f)["hr"] is f["hr"] or torch.equal(to_float(f)["hr"], f["hr"])  # converted passes through


def test_batches_keep_the_order_and_short_last_batch(mem_store):
    kw = dict(split="train", priors=("heatmap", "parsing"), seed=1)
    flat = _iter_indices(StoreDataset(mem_store, batch_size=1, **kw))
    batches = list(StoreDataset(mem_store, batch_size=8, **kw))
    assert [len(b["index"]) for b in batches] == [8, 8, 8, 3]
    assert torch.cat([b["index"] for b in batches]).tolist() == flat  # batching keeps the order
    assert [len(b["index"]) for b in StoreDataset(mem_store, batch_size=8, drop_last=True, **kw)] == [8, 8, 8]


def test_integer_heatmaps_are_refused():
    st = make_store(None, heatmap_dtype="uint16", n=10, splits=["train"] * 10, bad=set())
    with pytest.raises(SchemaVersionError, match="float heatmaps"):
        StoreEvalDataset(st, split="train", lr=None, hr=False)


def test_corrupt_chunk_is_one_error_naming_array_and_chunk(tmp_path):
    path = tmp_path / "c.zarr"
    make_store(path)
    chunk = next((path / "hr" / "c").glob("2/*/*/*"))  # hr chunk 2: rows 16–23
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    ds = StoreEvalDataset(path, split=None, priors=(), batch_size=4)
    with pytest.raises(StoreCorruptError, match=r"hr chunk 2 \(rows 16–23\)") as exc:
        list(ds.loader())  # through the thread, re-raised in the consumer
    assert exc.value.context["name"] == "hr" and exc.value.context["chunk"] == [2]
    with pytest.raises(StoreCorruptError, match="hr chunk 2"):
        list(DataLoader(StoreEvalDataset(path, split=None, priors=(), batch_size=4), batch_size=None, num_workers=1))
    bad = FaceStore.open(path).scrub()
    assert [(e.context["name"], e.context["chunk"]) for e in bad] == [("hr", [2])]


def test_missing_arrays_and_bad_options(mem_store, tmp_path):
    with pytest.raises(StoreError, match="no array 'priors/edges'") as exc:
        StoreDataset(mem_store, priors=("edges",))
    assert "priors/heatmap" in str(exc.value)
    st = FaceStore.create(None, ids=["a", "b"], splits=["train", "train"])
    with pytest.raises(StoreError, match="priors/heatmap"):
        StoreDataset(st, lr=None)
    assert schema.HEATMAP.name == "priors/heatmap"
    with pytest.raises(StoreError, match="lr/bicubic-pil_16"):
        StoreDataset(st, priors=())
    with pytest.raises(StoreError, match="no store"):
        StoreDataset(tmp_path / "nope.zarr")
    with pytest.raises(ConfigError, match="remainder"):
        StoreDataset(mem_store, priors=(), remainder="keep")
    with pytest.raises(StoreError, match="no usable samples"):
        StoreDataset(make_store(None, n=4, splits=["train"] * 4, bad={0, 1, 2, 3}), priors=())


def test_thread_loader_matches_direct_iteration(disk_store):
    ds = StoreDataset(disk_store, split="train", priors=("parsing",), batch_size=4, seed=2)
    ds.set_epoch(3)
    direct = torch.cat([b["index"] for b in ds]).tolist()
    tl = ds.loader()
    assert type(tl).__name__ == "ThreadLoader" and len(tl) == 7
    assert torch.cat([b["index"] for b in tl]).tolist() == direct
    for b in tl:  # leaving early stops the thread
        break


def test_thread_loader_reraises(mem_store, monkeypatch):
    ds = StoreDataset(mem_store, priors=(), batch_size=4)

    def boom(*a, **k):
        raise OSError("disk gone")

    monkeypatch.setattr(ds, "_read_run", boom)
    with pytest.raises(OSError, match="disk gone"):
        list(ds.loader())


def test_ddp_ranks_make_equal_batch_counts(disk_store):
    counts = []
    for rank in range(2):
        ds = StoreDataset(disk_store, split="train", priors=(), rank=rank, world_size=2, batch_size=4)
        assert ds.worker_counts(2) == [7, 6]
        n = sum(1 for _ in DataLoader(ds, batch_size=None, num_workers=2))
        assert n == ds.num_batches(2) == 4
        counts.append(n)
    assert counts[0] == counts[1]
