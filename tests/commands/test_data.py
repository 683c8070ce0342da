"""``facesr data prepare | info | show``: --store everywhere, --json is nothing but JSON, -q drops the extras."""

from __future__ import annotations

import json

import pytest

from facesr.data.images import read_image
from tests.commands.conftest import assert_one_line, run_main


def test_prepare_with_store_then_info_and_show(faces_dir, tmp_path, capsys):
    store = tmp_path / "p.zarr"
    r = run_main(["data", "prepare", "--dataset", "folder", "--root", faces_dir, "--store", store, "--crop",
                  "landmarks", "--lr", "bicubic-pil:16", "--split-file", faces_dir / "splits.txt", "--scheduler", "sync",
                  "--json"], capsys)
    assert r.code == 0, r.err
    report = json.loads(r.out)  # the whole stdout is one JSON document
    assert report["n"] == 8 and report["verify"] is None and "crop" in report["stages"]

    by_pos = run_main(["data", "info", store, "--json"], capsys)
    by_opt = run_main(["data", "info", "--store", store, "--json"], capsys)
    assert by_pos.code == by_opt.code == 0
    assert json.loads(by_pos.out) == json.loads(by_opt.out)
    assert json.loads(by_pos.out)["n"] == 8

    text = run_main(["data", "info", store], capsys)
    assert "8 samples" in text.out and "next: facesr data show" in text.out
    assert "next:" not in run_main(["data", "info", store, "-q"], capsys).out

    grid = tmp_path / "g.png"
    r = run_main(["data", "show", "--store", store, "-n", "2", "-o", grid, "--json"], capsys)
    assert r.code == 0, r.err
    meta = json.loads(r.out)
    assert read_image(grid).shape[:2] == (meta["height"], meta["width"])


def test_prepare_text_output_and_quiet(faces_dir, tmp_path, capsys):
    store = tmp_path / "q.zarr"
    argv = ["data", "prepare", "--dataset", "folder", "--root", faces_dir, "--store", store, "--crop", "resize",
            "--scheduler", "sync"]
    r = run_main(argv, capsys)
    assert r.code == 0, r.err
    assert "next: facesr priors build --store" in r.out and "crop" in r.out
    r = run_main([*argv, "-q"], capsys)  # a resumed, finished store: nothing to say
    assert r.code == 0 and r.out == ""


def test_prepare_needs_dataset_root_and_store(capsys):
    r = run_main(["data", "prepare", "--dataset", "folder"], capsys)
    assert r.code == 2 and "--root" in r.err and "--store" in r.err


# ------------------------------------------------------------------ moved from tests/data/test_visualize.py
@pytest.fixture(scope="module")
def loader_store(tmp_path_factory):
    """tests/data's 45-sample store (4 failures, two codecs, heatmap and parsing)."""
    from tests.data.test_loader import make_store

    path = tmp_path_factory.mktemp("vis") / "s.zarr"
    make_store(path)
    return path


def test_info_text_and_show(loader_store, tmp_path, capsys, monkeypatch):
    from facesr.data.visualize import sample_grid

    monkeypatch.setenv("COLUMNS", "200")
    r = run_main(["data", "info", loader_store], capsys)
    assert r.code == 0, r.err
    for text in ("45 samples", "train 30 (27 usable)", "failures: 4", "no face found", "lr/bicubic-pil_16",
                 "priors/heatmap", "float16", "blosc-lz4+shuf", "zstd-3", "source", "unit"):
        assert text in r.out, text
    s = json.loads(run_main(["data", "info", loader_store, "--json"], capsys).out)
    assert s["n"] == 45 and s["failures"] == 4 and s["arrays"]["hr"]["ratio"] > 0.5
    out = tmp_path / "g.png"
    r = run_main(["data", "show", loader_store, "-n", "3", "-o", out, "--split", "val"], capsys)
    assert r.code == 0, r.err
    assert read_image(out).shape == sample_grid(loader_store, n=3, split="val").shape


def test_bad_path_is_one_line(tmp_path, capsys):
    for cmd in (["data", "info", tmp_path / "nope.zarr"], ["data", "show", tmp_path / "nope.zarr"]):
        assert_one_line(run_main(cmd, capsys), 1, contains="nope.zarr")
