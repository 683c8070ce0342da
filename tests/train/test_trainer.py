"""The training loop on tiny synthetic stores: run folder, budget, NaN guard, EMA, early stop, schedulers."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from facesr.data.images import read_image
from facesr.errors import CheckpointError, ConfigError, TrainingError
from facesr.train import checkpoint as ckpt
from facesr.train.config import load_config
from facesr.train.logging import CsvLog, read_csv
from facesr.train.objective import Objective
from facesr.train.trainer import Trainer, train
from facesr.train.validate import criterion_seed000
from tests.train._stores import TINY


def _cfg(*extra: str, preset: str = "seed000-bicubic"):
    return load_config(preset, TINY + list(extra))


def test_run_folder_contents(tiny_run):
    for name in ("config.yaml", "run.json", "steps.csv", "metrics.csv"):
        assert (tiny_run / name).is_file(), name
    assert list((tiny_run / "tb").glob("events.out.tfevents.*"))
    for which in ("last", "best"):
        folder = tiny_run / "checkpoints" / which
        assert {p.name for p in folder.iterdir()} == {"model.safetensors", "state.json", "train_state.safetensors",
                                                      "train_state.json"}
        assert set(ckpt.load_state(folder)["files"]) == {"model.safetensors", "train_state.safetensors",
                                                        "train_state.json"}  # each with its SHA-256
    state = ckpt.load_state(ckpt.find(tiny_run, "last"))["train"]
    assert (state["epoch"], state["step"], state["batch"], state["finished"]) == (2, 8, 0, "epochs")
    steps = read_csv(tiny_run / "steps.csv")
    assert [int(r["step"]) for r in steps] == list(range(1, 9))
    assert all(np.isfinite(float(r["loss"])) and float(r["samples_per_s"]) > 0 for r in steps)
    vals = read_csv(tiny_run / "metrics.csv")
    assert [int(r["epoch"]) for r in vals] == [1, 2]
    for r in vals:  # model and bicubic baseline, both named by protocol
        assert 5 < float(r["psnr[dic]"]) < 60 and 15 < float(r["bicubic_psnr[dic]"]) < 60
        assert float(r["criterion"]) == pytest.approx(
            criterion_seed000(float(r["psnr[dic]"]), float(r["ssim[dic]"]), None))
    grid = read_image(tiny_run / "grids" / "epoch-002.png")
    # 8 val images under a 14 px title row, each with a 14 px label: LR up | SR | HR | |error| (2 px gaps)
    assert grid.shape == (14 + 8 * (128 + 14) + 2, 4 * (128 + 2) + 2, 3)
    run = __import__("json").loads((tiny_run / "run.json").read_text())
    assert "store_snapshot" in run and run["store"].endswith("tiny.zarr")


def test_criterion_seed000():
    assert criterion_seed000(25.0, 0.8, 0.2) == pytest.approx(0.3)
    assert criterion_seed000(18.0, 0.01, None) == pytest.approx(0.8 * 0.01 + 0.2 * 2.0)


def test_budget_steps_then_resume_more(tmp_path, tiny_store, one_thread):
    out = tmp_path / "run"
    res = train(_cfg("max_steps=3", "epochs=5"), tiny_store, out)
    assert res.reason == "budget_steps" and res.state["step"] == 3 and res.state["batch"] == 3
    assert read_csv(out / "metrics.csv")[-1]["kind"] == "final"
    with pytest.raises(ConfigError):  # an existing run needs --resume
        train(_cfg("max_steps=3"), tiny_store, out)
    res = Trainer(_cfg("max_steps=6", "epochs=5"), tiny_store, out, resume=True).fit()
    assert res.state["step"] == 6 and res.state["epoch"] == 1 and res.state["batch"] == 2
    assert [int(r["step"]) for r in read_csv(out / "steps.csv")] == list(range(1, 7))


def test_nan_guard_skips_then_aborts(tmp_path, tiny_store, one_thread, monkeypatch):
    calls = {"n": 0}
    real = Objective.forward

    def flaky(self, output, batch, extra=None):
        calls["n"] += 1
        terms = real(self, output, batch, extra)
        if calls["n"] == 2 or calls["n"] >= 4:
            terms = {k: v * float("nan") for k, v in terms.items()}
        return terms

    monkeypatch.setattr(Objective, "forward", flaky)
    snapshots = []
    trainer = Trainer(_cfg("nan_patience=3", "epochs=3"), tiny_store, tmp_path / "run",
                      on_step=lambda batches, res: snapshots.append(
                          {k: v.clone() for k, v in trainer.model.state_dict().items()}))
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    with pytest.raises(TrainingError, match="3 non-finite losses in a row"):
        trainer.fit()
    # step 1 trained, step 2 (NaN) left the weights alone, step 3 trained, 4-6 NaN → abort (6 raises first)
    assert any(not torch.equal(before[k], snapshots[0][k]) for k in before)
    assert all(torch.equal(snapshots[0][k], snapshots[1][k]) for k in before)
    assert trainer.state.skipped == 4
    rows = read_csv(tmp_path / "run" / "steps.csv")
    assert rows[1]["loss"] == "nan" and rows[1]["skipped"] == "1"


def test_ema_weights_saved_and_used(tmp_path, tiny_store, one_thread):
    from facesr.train.inference import load_run

    out = tmp_path / "run"
    train(_cfg("ema.decay=0.5", "epochs=1"), tiny_store, out)
    folder = ckpt.find(out, "last")
    ema, model = ckpt.load_weights(folder, "ema"), ckpt.load_weights(folder, "model")
    assert ema.keys() == model.keys() and any(not torch.equal(ema[k], model[k]) for k in ema)
    assert load_run(out).weights == "ema"


def test_early_stop_and_plateau(tmp_path, tiny_store, one_thread):
    # lr so small nothing changes: PSNR never improves → plateau halves the lr, early stop after 2
    cfg = _cfg("optim.lr=1e-12", "epochs=6", "val.criterion=psnr", "val.early_stop=2", "sched.name=plateau",
               "sched.patience=0", "val.grid_every=100")
    res = train(cfg, tiny_store, tmp_path / "run")
    assert res.reason == "early_stop" and res.state["epoch"] == 3
    lrs = [float(r["lr"]) for r in read_csv(tmp_path / "run" / "metrics.csv")]
    assert lrs[0] == pytest.approx(1e-12) and lrs[-1] == pytest.approx(2.5e-13)


def test_step_scheduler_and_bf16_autocast(tmp_path, tiny_store, one_thread):
    res = train(_cfg("sched.name=step", "sched.step_size=1", "sched.gamma=0.5", "epochs=2", "amp=bf16"),
                tiny_store, tmp_path / "run")
    assert res.reason == "epochs"
    rows = read_csv(tmp_path / "run" / "steps.csv")
    assert float(rows[0]["lr"]) == pytest.approx(1e-4) and float(rows[-1]["lr"]) == pytest.approx(5e-5)
    assert all(np.isfinite(float(r["loss"])) for r in rows)


def test_gan_alternation_updates_both(tmp_path, tiny_store, one_thread):
    cfg = load_config("mrrgan", TINY + [
        "model.name=mrrnet", "model.args={min_ch: 4, max_ch: 8, res_depth: 1}", "data.priors=[]", "loss.perceptual=0", "max_steps=2", "epochs=1",
        "model.discriminator_args={base_channels: 4}"])
    trainer = Trainer(cfg, tiny_store, tmp_path / "run")
    d0 = {k: v.clone() for k, v in trainer.disc.state_dict().items()}
    trainer.fit()
    assert any(not torch.equal(d0[k], v) for k, v in trainer.disc.state_dict().items())
    rows = read_csv(tmp_path / "run" / "steps.csv")
    assert {"gan", "d_loss", "l1"} <= set(rows[0])
    assert (tmp_path / "run" / "checkpoints" / "last" / "disc.safetensors").is_file()


def test_missing_vgg_weights_is_a_weights_error(tmp_path, tiny_store, monkeypatch):
    from facesr.errors import WeightsMissingError

    monkeypatch.setenv("FACESR_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cfg = _cfg("loss.perceptual=0.02", "pretrained=true")
    with pytest.raises(WeightsMissingError) as err:
        Trainer(cfg, tiny_store, tmp_path / "run")
    assert "loss.perceptual=0" in err.value.hint and "loss.lpips=0" in err.value.hint


def test_csv_truncate_drops_rows_after_checkpoint_and_cut_lines(tmp_path):
    log = CsvLog(tmp_path / "steps.csv")
    for s in range(1, 6):
        log.write({"step": s, "loss": s / 10})
    log.close()
    with open(tmp_path / "steps.csv", "a") as fh:
        fh.write("6,0.6")  # a row cut by SIGKILL (no newline)
    assert CsvLog(tmp_path / "steps.csv").truncate(3) == 3
    assert [r["step"] for r in read_csv(tmp_path / "steps.csv")] == ["1", "2", "3"]


def test_checkpoint_swap_is_atomic(tmp_path):
    sd = {"w": torch.arange(4.0)}
    folder = tmp_path / "checkpoints" / "last"
    ckpt.save(folder, weights={"model": sd}, state={"train": {"step": 1}})
    ckpt.save(folder, weights={"model": {"w": sd["w"] + 1}}, state={"train": {"step": 2}})
    assert ckpt.load_state(ckpt.find(tmp_path, "last"))["train"]["step"] == 2
    # a kill between the two renames leaves only last.old (complete) and last.tmp: old is used
    folder.rename(folder.with_name("last.old"))
    (tmp_path / "checkpoints" / "last.tmp").mkdir()
    assert ckpt.find(tmp_path, "last").name == "last.old"
    assert ckpt.find(tmp_path, "best").name == "last.old"  # best falls back to last
    with pytest.raises(CheckpointError):
        ckpt.find(tmp_path / "nothing")


def test_next_save_after_a_cut_swap_keeps_the_only_whole_copy(tmp_path, monkeypatch):
    """Only last.old is whole; the next save is killed before its final rename: last.old must survive."""
    folder = tmp_path / "checkpoints" / "last"
    ckpt.save(folder, weights={"model": {"w": torch.zeros(2)}}, state={"train": {"step": 7}})
    folder.rename(folder.with_name("last.old"))  # a swap cut between its two renames
    real_replace = os.replace

    def killed(src, dst):
        if Path(src).name == "last.tmp":
            raise KeyboardInterrupt  # the kill
        real_replace(src, dst)

    monkeypatch.setattr(ckpt.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        ckpt.save(folder, weights={"model": {"w": torch.ones(2)}}, state={"train": {"step": 8}})
    monkeypatch.undo()
    assert ckpt.load_state(ckpt.find(tmp_path, "last"))["train"]["step"] == 7


def test_objective_terms_for_each_paper():
    """Every preset's loss terms evaluate on a fake batch/output (random VGG trunks)."""
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(2, 3, 128, 128, generator=g)
    parsing = torch.zeros(2, 128, 128, dtype=torch.int64)
    parsing[:, 30:100, 30:100] = 1
    parsing[:, 55:60, 40:55] = 3
    batch = {"hr": hr, "lr": torch.rand(2, 3, 16, 16, generator=g), "heatmap": torch.rand(2, 1, 128, 128, generator=g),
             "parsing": parsing}
    sr = (hr + 0.1 * torch.randn(2, 3, 128, 128, generator=g)).requires_grad_()
    outputs = {
        "seed000-bicubic": sr,
        "wnet": {"sr": sr, "parsing": torch.rand(2, 3, 128, 128, generator=g)},
        "ufvnet-stage2": {"sr": sr, "weight_logits": torch.randn(2, 3, generator=g)},
        "mrrgan": sr,
        "gvtnet": sr,
    }
    scores = {"d_real": torch.randn(2, 1, 8, 8, generator=g), "d_fake": torch.randn(2, 1, 8, 8, generator=g)}
    expect = {"seed000-bicubic": {"mse", "heatmap", "perceptual", "lpips"}, "wnet": {"mse", "parsing", "key_region"},
              "ufvnet-stage2": {"l1", "weight_ce"}, "mrrgan": {"l1", "perceptual", "gan"}, "gvtnet": {"l1"}}
    # VGG-based terms are built once below (random trunks are slow to initialise); here the cheap terms
    no_vgg = ["pretrained=false", "loss.perceptual=0", "loss.lpips=0", "loss.key_region_perceptual=false"]
    expect = {k: v - {"perceptual", "lpips"} for k, v in expect.items()}
    for preset, out in outputs.items():
        obj = Objective(load_config(preset, no_vgg))
        terms = obj(out, batch, scores if preset == "mrrgan" else None)
        assert set(terms) == expect[preset], preset
        total = obj.total(terms, epoch=100)
        assert torch.isfinite(total)
        total.backward()
        assert sr.grad is not None and torch.isfinite(sr.grad).all()
        sr.grad = None
    # seed-000 with its VGG16 perceptual term (LPIPS: tests/train/test_losses.py; its random VGG16 is slow to
    # build): pixel terms on the [-1, 1] scale and the released ramp (epoch 0: no perceptual/LPIPS)
    obj = Objective(load_config("seed000-bicubic", ["pretrained=false", "loss.lpips=0"]))
    terms = obj(sr, batch)
    assert set(terms) == {"mse", "heatmap", "perceptual"}
    at0 = obj.total(terms, epoch=0)
    assert at0.item() == pytest.approx(4 * terms["mse"].item() + 2.0 * 0.6 * 2 * terms["heatmap"].item(), rel=1e-5)
    assert obj.ramp(200) == pytest.approx({"mse": 1.0, "perceptual": 1.0, "heatmap": 0.75, "lpips": 1.0})


def test_missing_prior_names_the_fix(tmp_path, tiny_store):
    obj = Objective(load_config("seed000-bicubic", TINY))
    with pytest.raises(ConfigError) as err:
        obj(torch.rand(1, 3, 128, 128), {"hr": torch.rand(1, 3, 128, 128)})
    assert "data.priors" in err.value.hint


def test_init_parts_loads_stage1_anchors_into_ufvnet(tmp_path):
    """UFVNet stage 2: each stage-1 SPARNet-Light run fills one anchor; the rest keeps its init."""
    from safetensors.torch import save_file

    from facesr import models
    from facesr.train.state import load_init as _load_init

    thin = {"min_ch": 8, "max_ch": 16, "hourglass_mid": 8, "regressor_hidden": 32}
    anchor_args = {k: v for k, v in thin.items() if k != "regressor_hidden"}
    files = {}
    for i in range(3):
        torch.manual_seed(100 + i)
        sd = models.build("sparnet_light", **anchor_args).state_dict()
        files[f"anchors.{i}"] = str(tmp_path / f"anchor{i}.safetensors")
        save_file({k: v.contiguous() for k, v in sd.items()}, files[f"anchors.{i}"])
    torch.manual_seed(0)
    net = models.build("ufvnet", **thin)
    regressor_before = {k: v.clone() for k, v in net.regressor.state_dict().items()}
    missing, unexpected = _load_init(net, "", files)
    assert unexpected == 0 and missing > 0  # regressor, fusion and decoder are not in any stage-1 run
    torch.manual_seed(101)
    want = models.build("sparnet_light", **anchor_args).state_dict()
    got = net.anchors[1].state_dict()
    assert all(torch.equal(got[k], want[k]) for k in want)
    assert all(torch.equal(net.regressor.state_dict()[k], v) for k, v in regressor_before.items())
    with pytest.raises(ConfigError, match="do not fit"):  # a wider anchor from another config
        wide = models.build("sparnet_light", min_ch=16, max_ch=32, hourglass_mid=8).state_dict()
        save_file({k: v.contiguous() for k, v in wide.items()}, tmp_path / "wide.safetensors")
        _load_init(net, "", {"anchors.0": str(tmp_path / "wide.safetensors")})
    with pytest.raises(ConfigError, match="neither a run folder"):
        _load_init(net, str(tmp_path / "missing.pt"), {})
