"""Stores at URLs: file://, memory://, and s3:// against a local S3 server (moto) started and stopped here."""

from __future__ import annotations

import importlib.util
import os
import time
import uuid

import numpy as np
import pytest

from facesr.data import schema
from facesr.data.loader import StoreDataset, StoreEvalDataset
from facesr.data.storage import locate
from facesr.data.store import FaceStore
from facesr.errors import StoreError, StoreNotFoundError
from tests.data._s3 import free_port, s3_endpoint  # noqa: F401 - the fixture

N, CHUNK = 12, 4


def _fill(url, **kw) -> FaceStore:
    fs = FaceStore.create(url, ids=[f"{i:03d}" for i in range(N)], splits=["train"] * 8 + ["val"] * 4, chunk=CHUNK,
                          **kw)
    hr = np.random.default_rng(0).integers(0, 256, (N, 128, 128, 3), dtype=np.uint8)
    fs.write(schema.HR, 0, hr)
    fs.require(schema.lr("bicubic-pil:16"))
    fs.write(schema.lr("bicubic-pil:16"), 0, hr[:, ::8, ::8])
    fs.require(schema.HEATMAP)
    fs.write(schema.HEATMAP, 0, np.full((N, 128, 128), 0.5, np.float16))
    fs.commit()
    return fs


def _check_roundtrip(url, **kw) -> None:
    _fill(url, **kw)
    fs = FaceStore.open(url, snapshot="latest", **kw)
    assert fs.n == N and str(fs.path) == str(locate(url)) and float(fs.heatmap(3).max()) == 0.5
    assert fs.info().splits["val"] == {"samples": 4, "usable": 4}
    batches = list(StoreEvalDataset(fs, split="train", batch_size=4))
    assert [b["index"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert batches[0]["lr"].shape == (4, 16, 16, 3) and batches[0]["heatmap"].shape == (4, 128, 128)
    tree = fs.to_xarray()
    assert tree["priors/heatmap"].dims == ("sample", "y", "x") and list(tree["sample"].values[:2]) == ["000", "001"]


def test_memory_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _check_roundtrip(f"memory://facesr-{uuid.uuid4().hex}/tiny.zarr")
    assert list(tmp_path.iterdir()) == []  # never a local folder named after the URL


def test_file_url_is_the_local_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    url = f"file://{tmp_path}/tiny.zarr"
    _check_roundtrip(url)
    assert (tmp_path / "tiny.zarr" / "zarr.json").is_file() and not (tmp_path / "file:").exists()
    assert FaceStore.open(url, snapshot="latest").snapshot_id is not None  # local: snapshots work
    assert FaceStore.open(tmp_path / "tiny.zarr").n == N


def test_bad_urls_are_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if importlib.util.find_spec("gcsfs") is None:
        with pytest.raises(StoreError, match="gs:// needs the gcsfs package") as exc:
            FaceStore.open("gs://bucket/x.zarr")
        assert exc.value.hint == "pip install gcsfs"
    with pytest.raises(StoreError, match="URL whose '//' was lost"):
        FaceStore.create("s3:/bucket/x.zarr", ids=["a"], splits=["train"])
    with pytest.raises(StoreNotFoundError, match="no store at memory://"):
        FaceStore.open(f"memory://nothing-{uuid.uuid4().hex}/x.zarr")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------------- S3

def test_s3_store_against_a_local_server(s3_endpoint, monkeypatch, tmp_path):
    import s3fs

    monkeypatch.chdir(tmp_path)
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(k, v)
    opts = {"endpoint_url": s3_endpoint}
    s3fs.S3FileSystem(**opts, skip_instance_cache=True).mkdir("bucket")
    _check_roundtrip("s3://bucket/tiny.zarr", storage_options=opts)
    fs = FaceStore.open("s3://bucket/tiny.zarr", storage_options=opts)
    ds = StoreDataset(fs, split="train", priors=("heatmap",), batch_size=4, seed=1)
    from torch.utils.data import DataLoader

    got = sorted(i for b in DataLoader(ds, batch_size=None, num_workers=1) for i in b["index"].tolist())
    assert got == list(range(8))  # a worker process reopens the URL
    assert list(tmp_path.iterdir()) == []
    closed = f"http://127.0.0.1:{free_port()}"
    t0 = time.monotonic()
    with pytest.raises(StoreError, match="cannot reach s3://bucket/tiny.zarr"):
        FaceStore.open("s3://bucket/tiny.zarr", storage_options={"endpoint_url": closed})
    assert time.monotonic() - t0 < 30
    assert locate("s3://bucket/tiny.zarr").scheme == "s3" and not os.path.exists("s3:")


def test_s3_build_then_stream(s3_endpoint, monkeypatch, tmp_path):
    """The real build pipeline (sync scheduler) into s3://, its ledger there too, then the loader reads it."""
    import s3fs

    from facesr.demo import make_demo_faces
    from facesr.pipeline.build import BuildOptions, RunOptions, SourceSpec, build_store
    from facesr.pipeline.lock import Ledger

    monkeypatch.chdir(tmp_path)
    for k, v in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
                 "AWS_ENDPOINT_URL": s3_endpoint}.items():
        monkeypatch.setenv(k, v)
    s3fs.S3FileSystem(skip_instance_cache=True).mkdir("built")
    faces = make_demo_faces(tmp_path / "faces", n=8, seed=2)
    url = "s3://built/tiny.zarr"
    report = build_store(url, BuildOptions(crop="resize", lr=("bicubic-pil:16",), chunk=4),
                         source=SourceSpec("folder", faces, {}), run=RunOptions(scheduler="sync", workers=1))
    assert report.verify["ok"], report.verify
    fs = FaceStore.open(url, snapshot="latest")
    assert {schema.HEATMAP.name, schema.PARSING.name, schema.lr("bicubic-pil:16").name} <= set(fs.names())
    assert Ledger(url).keys("heatmap")  # per-chunk resume markers live beside the store on S3
    got = [i for b in StoreDataset(fs, split=None, priors=("heatmap", "parsing"), batch_size=4).loader()
           for i in b["index"].tolist()]
    assert sorted(got) == list(range(8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces"]  # no local folder named after the URL
