"""In-process builds on small synthetic stores (astronaut variants): failures, resume, config changes."""

from __future__ import annotations

import numpy as np
import pytest

from facesr.data.store import FaceStore
from facesr.pipeline.build import build_store, pipeline_status, prepare_store
from facesr.pipeline.lock import Ledger
from facesr.pipeline.options import BuildOptions, RunOptions, SourceSpec

from .conftest import assert_same_store, store_bytes


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    from facesr.demo import make_demo_faces

    root = make_demo_faces(tmp_path_factory.mktemp("faces"), n=20, seed=1)
    # one truncated PNG, listed in the split file: it must become a recorded failure, not a crash
    good = (root / "astronaut_000.png").read_bytes()
    (root / "broken.png").write_bytes(good[: len(good) // 3])
    with open(root / "splits.txt", "a") as f:
        f.write("broken.png val\n")
    return root


def _source(faces):
    return SourceSpec("folder", faces, {"split_file": str(faces / "splits.txt")})


def _build(store, faces, scheduler="sync", workers=1, **kw):
    opts = BuildOptions(**{"crop": "landmarks", "lr": ("bicubic-pil:16",), "chunk": 8, **kw})
    return build_store(store, opts, source=_source(faces), run=RunOptions(scheduler=scheduler, workers=workers))


@pytest.fixture(scope="module")
def built(faces, tmp_path_factory):
    store = tmp_path_factory.mktemp("b") / "s.zarr"
    report = _build(store, faces)
    return store, report


def test_build_writes_every_array_with_provenance(built):
    store, report = built
    fs = FaceStore.open(store)
    assert fs.n == 21 and report.verify["ok"], report.verify
    assert {"hr", "lr/bicubic-pil_16", "landmarks", "priors/boxes", "priors/heatmap", "priors/parsing"} <= set(fs.names())
    # the truncated file is a recorded failure with empty priors; everything else is usable
    fail = dict(zip(fs.ids.tolist(), fs.failures().tolist()))
    assert fail["broken"] and all(v == "" for k, v in fail.items() if k != "broken")
    i = fs.ids.tolist().index("broken")
    assert fs.read("hr", i).max() == 0 and np.isnan(fs.read("landmarks", i)).all()
    assert fs.read("priors/heatmap", i).max() == 0 and np.isnan(fs.read("priors/boxes", i)).all()
    heat = fs.array("priors/heatmap")
    assert heat.dtype == np.float16 and heat.attrs["preset"] == "paper" and heat.attrs["complete"]
    assert heat.attrs["stage_key"] == fs.attrs["pipeline"]["heatmap"]["key"]
    assert fs.array("priors/boxes").attrs["provider"] == "landmarks"
    assert fs.array("landmarks").attrs["stage"] == "crop"  # --crop landmarks: dlib on the original photo
    h = fs.read("priors/heatmap").astype(np.float32)
    assert h.min() >= 0 and h.max() <= 1 and not np.isnan(h).any()
    assert report.verify["stats"]["landmarks_coverage"] == 1.0
    assert report.verify["stats"]["heatmap_argmax_on_parts"] >= 0.9


def test_rerun_skips_everything_and_is_identical(built, faces):
    store, _ = built
    before = store_bytes(store)
    report = _build(store, faces)
    assert all(s["rows"] == 0 for k, s in report.stages.items() if not k.startswith("_"))
    assert store_bytes(store) == before


def test_config_change_recomputes_only_that_stage(built, faces, tmp_path):
    store, _ = built
    before = store_bytes(store)
    rep = _build(store, faces, heatmap="released")
    computed = {k for k, s in rep.stages.items() if not k.startswith("_") and s["rows"]}
    assert computed == {"heatmap"} and rep.invalidated == ["heatmap", "verify"]
    assert FaceStore.open(store).array("priors/heatmap").attrs["preset"] == "released"
    assert store_bytes(store)["priors/heatmap"] != before["priors/heatmap"]
    rep = _build(store, faces)  # back to paper: recomputed (the released markers were dropped), identical
    assert {k for k, s in rep.stages.items() if not k.startswith("_") and s["rows"]} == {"heatmap"}
    assert store_bytes(store) == before
    st = pipeline_status(store)
    assert all(s["complete"] for s in st["stages"].values())


def test_priors_on_an_existing_store_and_threads_match(built, faces, tmp_path):
    """`data prepare` then `priors build --store` (no dataset), on the threaded scheduler: same bytes."""
    store, _ = built
    other = tmp_path / "p.zarr"
    prepare_store(other, BuildOptions(crop="landmarks", lr=("bicubic-pil:16",), chunk=8), source=_source(faces),
                  run=RunOptions(scheduler="threads", workers=2))
    assert "priors/heatmap" not in FaceStore.open(other)
    rep = build_store(other, run=RunOptions(scheduler="threads", workers=2))
    assert rep.verify["ok"]
    assert_same_store(store, other)


def test_lost_markers_recompute_nothing_wrong(built, faces, tmp_path):
    """A chunk whose marker is missing is recomputed and overwritten with the same bytes."""
    store, _ = built
    before = store_bytes(store)
    led = Ledger(store)
    key = FaceStore.open(store).attrs["pipeline"]["heatmap"]["key"]
    (led.root / "heatmap" / key / "00001").unlink()
    rep = _build(store, faces)
    assert rep.stages["heatmap"]["rows"] == 8 and rep.stages["heatmap"]["chunks"] == 1
    assert store_bytes(store) == before


def test_distributed_scheduler_address(built, faces):
    """``--scheduler tcp://...``: the same tasks on a dask.distributed cluster give the same bytes."""
    distributed = pytest.importorskip("distributed")
    store, _ = built
    before = store_bytes(store)
    key = FaceStore.open(store).attrs["pipeline"]["parse"]["key"]
    for p in (Ledger(store).root / "parse" / key).iterdir():
        p.unlink()
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as lc:
        rep = _build(store, faces, scheduler=lc.scheduler_address, workers=7)
    assert rep.stages["parse"]["rows"] == 21 and "://" in rep.scheduler
    assert rep.workers == 2  # the cluster's real worker count, not --workers
    assert store_bytes(store) == before


def test_cluster_without_workers_says_so_and_times_out(built, faces):
    from facesr.errors import PipelineError

    distributed = pytest.importorskip("distributed")
    store, _ = built
    key = FaceStore.open(store).attrs["pipeline"]["parse"]["key"]
    (Ledger(store).root / "parse" / key / "00000").unlink()  # one task to run
    said = []

    class Rep:
        def begin(self, stages):
            pass

        def advance(self, res):
            pass

        def message(self, text):
            said.append(text)

    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=None) as lc:
        with pytest.raises(PipelineError, match="no workers after 1 s"):
            build_store(store, source=_source(faces),
                        options=BuildOptions(crop="landmarks", lr=("bicubic-pil:16",), chunk=8),
                        run=RunOptions(scheduler=lc.scheduler_address, cluster_timeout=1), reporter=Rep())
    assert any("has no workers yet; waiting for up to 1 s" in m for m in said), said


def test_cli_status_verify_show_on_a_copied_store(built, tmp_path):
    """A store copied without its state folder is still complete (array attrs); verify fails on bad values."""
    import shutil

    from typer.testing import CliRunner

    from facesr.cli import app

    store, _ = built
    copy = tmp_path / "copy.zarr"
    shutil.copytree(store, copy)
    runner = CliRunner()
    res = runner.invoke(app, ["priors", "status", str(copy), "--json"])
    assert res.exit_code == 0 and '"complete": false' not in res.output, res.output
    res = runner.invoke(app, ["priors", "verify", str(copy)])
    assert res.exit_code == 0 and "PASS" in res.output, res.output
    res = runner.invoke(app, ["priors", "show", str(copy), "-n", "4", "-o", str(tmp_path / "g.png")])
    assert res.exit_code == 0 and (tmp_path / "g.png").stat().st_size > 1000
    fs = FaceStore.open(copy, mode="r+")
    bad = fs.read("priors/heatmap", slice(0, 8))
    bad[2, 5, 5] = np.nan
    fs.write("priors/heatmap", 0, bad)
    res = runner.invoke(app, ["priors", "verify", str(copy)])
    assert res.exit_code == 1 and "NaN" in res.output
