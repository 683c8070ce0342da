"""Inference: load a run, predict a store split and tiny LR crops (photos: tests/train/test_photo.py,
`facesr sr`: tests/commands/test_sr.py)."""

from __future__ import annotations

import numpy as np
from typer.testing import CliRunner

from facesr.cli import app
from facesr.data.images import read_image
from facesr.train.inference import load_run, predict_store


def test_load_run_and_predict_store(tiny_run, tiny_store):
    pred = load_run(tiny_run)
    assert pred.lr_size == 16 and pred.weights == "model"
    batches = list(predict_store(pred, tiny_store, "test", batch_size=3))
    idx = np.concatenate([b[0] for b in batches])
    assert idx.tolist() == sorted(idx.tolist()) and len(idx) == 4
    lr, sr, hr = batches[0][1:]
    assert lr.shape[1:] == (16, 16, 3) and sr.shape[1:] == hr.shape[1:] == (128, 128, 3) and sr.dtype == np.uint8


def test_tiny_crop_is_taken_as_lr_face(tiny_run):
    pred = load_run(tiny_run)
    rng = np.random.default_rng(0)
    assert pred.tiny(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).shape == (128, 128, 3)
    assert pred.tiny(rng.integers(0, 255, (24, 20, 3), dtype=np.uint8)).shape == (128, 128, 3)  # resized to 16


def test_eval_cli_from_checkpoint(tmp_path, tiny_run, tiny_store):
    from facesr.metrics.protocols import psnr_ssim
    from facesr.train.inference import predict_arrays

    out = tmp_path / "eval"
    res = CliRunner().invoke(app, ["eval", "--checkpoint", str(tiny_run), "--store", str(tiny_store), "--split", "test",
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert {p.name for p in out.iterdir()} >= {"metrics.md", "metrics.csv", "grid.png"}
    ids, lr, sr, hr = predict_arrays(load_run(tiny_run), tiny_store, "test")
    from facesr.data.degrade import upscale_back

    expect = psnr_ssim(sr, hr, "dic").means()["psnr[dic]"]
    bicubic = psnr_ssim(np.stack([upscale_back(x, 128) for x in lr]), hr, "dic").means()["psnr[dic]"]
    md = (out / "metrics.md").read_text()
    assert "| metric | mean | bicubic | images | no value |" in md
    assert f"| psnr[dic] | {expect:.3f} | {bicubic:.3f} | 4 | 0 |" in md
    assert ids == ["000024", "000025", "000026", "000027"]
    # -e regions takes the store's parsing maps of exactly these faces
    from facesr.data.store import FaceStore
    from facesr.metrics.regions import region_psnr

    res = CliRunner().invoke(app, ["eval", "--checkpoint", str(tiny_run), "--store", str(tiny_store), "--split", "test",
                                   "-e", "regions", "-o", str(out)])
    assert res.exit_code == 0, res.output
    fs = FaceStore.open(tiny_store)
    rows = [list(fs.ids).index(i) for i in ids]
    eyes = region_psnr(sr, hr, fs.read("priors/parsing")[rows])["psnr[dic,eyes]"].mean()
    assert f"| psnr[dic,eyes] | {eyes:.3f} |" in (out / "metrics.md").read_text()


def test_demo_train_and_evaluate_steps(tmp_path, tiny_store, monkeypatch, one_thread):
    """The demo's appended steps (short training, evaluation) on a tiny store with a tiny net."""
    from facesr import demo
    from tests.train._stores import TINY

    monkeypatch.setattr(demo, "DEMO_TRAIN", tuple(TINY + ["max_steps=4", "val.every=1"]))
    ctx = demo.DemoContext(out=tmp_path)
    ctx.made["store"] = tiny_store
    summary = demo._step_train(ctx)
    assert "4 steps" in summary and "bicubic" in summary
    summary = demo._step_evaluate(ctx)
    assert "dic protocol" in summary  # the grid: LR | bicubic | SR | HR tiles, 2-px gaps
    assert read_image(tmp_path / "eval_grid.png").shape[1] == 4 * (128 + 2) + 2
    assert any(s.startswith("facesr eval --checkpoint") for s in ctx.next_steps)
    ctx.summaries = {"train": "trained", "evaluate": summary}
    report = (tmp_path / "report.md")
    assert demo._step_report(ctx) == str(report)
    text = report.read_text()
    assert "![Training curves](run/curves.png)" in text and "![Validation: LR, bicubic, SR, HR](eval_grid.png)" in text
    assert "| bicubic | " in text and "psnr[dic]" in text
    step_rows = [ln for ln in text.splitlines() if ln.startswith("| evaluate |")]
    assert len(step_rows) == 1 and step_rows[0].count("|") == 4  # the summary's own | are escaped
    assert "grid.png)" not in text.replace("eval_grid.png)", "")  # no priors grid was made: no dangling link


def test_demo_builds_the_heatmaps_its_training_preset_needs():
    """The demo's store must pass the seed-000 heatmap-preset guard its own training step applies."""
    from facesr import demo
    from facesr.train.config import load_config

    cfg = load_config("seed000-bicubic", demo.DEMO_TRAIN)
    assert demo.demo_heatmap_preset() == cfg.data.heatmap_preset == "released"
