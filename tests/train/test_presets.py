"""Every shipped preset trains two optimizer steps on a tiny store (issue 10, item 8).

The preset is loaded as shipped; only widths are narrowed (dotted ``model.args.*`` overrides, so a preset's
own model options such as seed000-bicubic's ``interp`` stay), the batch is tiny, the trunks random and the
run stopped after two steps. Everything else — loss recipe, schedule, EMA, augmentation, GAN step,
accumulation — is the preset's.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facesr.train.config import list_presets, load_config
from facesr.train.logging import read_csv
from facesr.train.trainer import train

_THIN = {"min_ch": 8, "max_ch": 16, "hourglass_mid": 8}
#: per model: narrow widths (never a different architecture)
NARROW: dict[str, dict] = {
    "unet_light": {"base_channels": 4, "refine_blocks": 1},
    "sparnet_light": _THIN,
    "ufvnet": {**_THIN, "regressor_hidden": 32},
    "mrrnet": {"min_ch": 4, "max_ch": 8, "res_depth": 1},
    "gvtnet": {"embed_dim": 24, "depths": [2, 2], "group_shifts": [0, 4], "num_heads": 2, "num_feat": 16},
    "wnet": {"width": 4, "down_widths": [4, 4, 4], "up_widths": [4, 4, 4], "parsing_res_blocks": 1,
             "hourglass_depth": 2, "encoder_levels": 2, "scab_per_level": 1, "attn_heads": 2, "ca_reduction": 2},
}
COMMON = ["data.batch_size=2", "data.val_batch_size=4", "data.val_limit=4", "max_steps=2", "epochs=1",
          "val.lpips=false", "val.grid_every=100", "pretrained=false", "device=cpu", "amp=off", "log_every=1",
          "optim.accumulate=1"]


@pytest.fixture(scope="module")
def preset_store(tmp_path_factory):
    """The trainer tests' tiny store plus every LR array a shipped preset names (made by its degradation)."""
    from facesr.data.degrade import degrade
    from tests.train._stores import make_store

    path = tmp_path_factory.mktemp("presets") / "tiny.zarr"
    store = make_store(path, n_train=8, n_val=4, n_test=0)
    hr = store.read("hr") if hasattr(store, "read") else store.array("hr")[:]
    from facesr.train.inference import run_lr_specs

    for lr in sorted({s for p in list_presets() for s in run_lr_specs(load_config(p))}):
        if f"lr/{lr}" in store:
            continue
        arr = np.stack([degrade(h, lr) for h in np.asarray(hr)])
        store.require(f"lr/{lr}", arr.shape[1:], "uint8")
        store.write(f"lr/{lr}", 0, arr)
    return path


def tiny_overrides(preset: str) -> list[str]:
    cfg = load_config(preset)
    sets = [f"model.args.{k}={v}" for k, v in NARROW[cfg.model.name].items()]
    if cfg.model.discriminator:
        sets.append("model.discriminator_args={base_channels: 4}")
    return sets + COMMON


def test_every_model_of_a_preset_has_narrow_widths():
    assert {load_config(p).model.name for p in list_presets()} <= set(NARROW)


@pytest.mark.parametrize("preset", list_presets())
def test_preset_trains_two_steps(preset, preset_store, tmp_path, one_thread):
    shipped = load_config(preset)
    cfg = load_config(preset, tiny_overrides(preset))
    # only widths, batch and budget changed: the recipe is the preset's
    assert (cfg.loss, cfg.sched, cfg.ema, cfg.data.augment, cfg.data.lr, cfg.data.priors, cfg.model.name) == (
        shipped.loss, shipped.sched, shipped.ema, shipped.data.augment, shipped.data.lr, shipped.data.priors,
        shipped.model.name)
    result = train(cfg, preset_store, tmp_path / preset)
    rows = read_csv(tmp_path / preset / "steps.csv")
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    assert result.state["step"] == 2 and result.reason == "budget_steps"
    assert (tmp_path / preset / "checkpoints" / "last").exists()


def test_ufvnet_named_lr_sets_expand_to_the_papers_sizes():
    """`facesr data prepare --lr mr3|mr7|mr8` (§IV-A): the named sets of sizes, bicubic, balanced per image."""
    from facesr.commands._options import _lr_callback
    from facesr.data.degrade import expand_lr
    from facesr.pipeline.options import parse_lr

    assert [s.size for s in expand_lr("mr8")] == [8, 16, 24, 32, 40, 48, 56, 64]
    assert [s.size for s in expand_lr("MR7")] == [16, 24, 32, 40, 48, 56, 64]
    assert [str(s) for s in expand_lr("mr3")] == ["bicubic-pil:16", "bicubic-pil:32", "bicubic-pil:64"]
    assert {s.method for s in expand_lr("mr3:bicubic-matlab")} == {"bicubic-matlab"}
    assert parse_lr("mr3,bicubic-pil:16") == ("bicubic-pil:16", "bicubic-pil:32", "bicubic-pil:64")
    assert _lr_callback("mr8") == "mr8"


def test_size_schedule_is_balanced_and_keyed_by_seed_and_epoch():
    from facesr.train.multires import size_schedule

    s = size_schedule(8, 83, seed=42, epoch=3)
    counts = np.bincount(s, minlength=8)
    assert counts.min() == 10 and counts.max() == 11  # ⌊83/8⌋ or ⌈83/8⌉ of every size
    assert s == size_schedule(8, 83, seed=42, epoch=3)  # resume: the same sizes at the same positions
    assert s != size_schedule(8, 83, seed=42, epoch=4) and s != size_schedule(8, 83, seed=7, epoch=3)
    assert size_schedule(8, 40, 42, 3) == s[:40]  # a prefix does not depend on the epoch's length


def test_mr8_batches_cover_every_size_and_eq4_targets_follow(preset_store, one_thread):
    """UFVNet as the paper trains it: over an epoch every MR8 size gets its share of batches, each batch's
    LR is the store's row at that size, and the eq. 4 targets change with the size."""
    import itertools

    from facesr.data.store import FaceStore
    from facesr.train import distributed as dist
    from facesr.train.build import make_data
    from facesr.train.objective import PROVIDERS

    cfg = load_config("ufvnet-regressor", ["data.batch_size=1", "device=cpu"])
    store = FaceStore.open(preset_store)
    info = dist.env_info()
    ds, loader, _, steps = make_data(cfg, store, info)
    assert steps == 8
    ds.set_epoch(0)
    batches = list(loader)
    sides = [int(b["lr"].shape[1]) for b in batches]  # raw layout (B, s, s, 3)
    assert sorted(sides) == [8, 16, 24, 32, 40, 48, 56, 64]  # 8 batches, each size once
    for b in batches:
        rows = b["index"].numpy()
        assert np.array_equal(b["lr"].numpy(), store.read(f"lr/bicubic-pil_{b['lr'].shape[1]}", rows))
    targets = {tuple(PROVIDERS["target"]({"weight_logits": torch.zeros(1, 3)}, {"lr": ds.to_float(b)["lr"]})[0].tolist())
               for b in batches}
    assert len(targets) == 8  # eq. 4: one target per resolution
    ds.set_epoch(0)
    resumed = [int(b["lr"].shape[1]) for b in itertools.islice(iter(loader), 3, None)]
    assert resumed == sides[3:]  # a mid-epoch resume trains the same sizes
    orders = set()
    for epoch in (1, 2, 3):
        ds.set_epoch(epoch)
        orders.add(tuple(int(b["lr"].shape[1]) for b in loader))
    assert orders - {tuple(sides)}  # other epochs, other orders


def test_seed000_early_stopping_needs_the_notebooks_min_delta():
    from facesr.train.state import TrainState

    assert load_config("seed000-bicubic").val.min_delta == 1e-4 and load_config("seed000-bicubic").data.val_limit == 0
    assert load_config("mrrnet").val.min_delta == 0.0
    st = TrainState()
    assert st.track(1.0, 1e-4) and not st.track(0.99995, 1e-4) and st.bad == 1 and st.best == 1.0
    assert st.track(0.9998, 1e-4) and st.bad == 0
    assert TrainState().track(1.0) and not TrainState(best=1.0).track(1.0)


def test_loss_ramp_counts_epochs_from_one():
    """The step hands the objective the 1-based epoch (the notebook's loop), augmentation the 0-based one."""
    import contextlib

    from facesr.train.step import SRStep

    seen: list = []

    class Obj:
        needs_disc = False

        def __call__(self, out, batch, extra):
            return {"mse": ((out - batch["hr"]) ** 2).mean()}

        def total(self, terms, epoch):
            seen.append(epoch)
            return terms["mse"]

    net = torch.nn.Conv2d(3, 3, 1)
    step = SRStep(net=net, model=net, objective=Obj(), opt=torch.optim.SGD(net.parameters(), 0.1),
                  scaler=torch.amp.GradScaler("cpu", enabled=False), to_float=lambda raw, device: raw,
                  device=torch.device("cpu"), autocast=contextlib.nullcontext,
                  augment=lambda b, e: (seen.append(("aug", e)), b)[1])
    batch = {"lr": torch.rand(2, 3, 8, 8), "hr": torch.rand(2, 3, 8, 8)}
    step([batch], 0)
    step([batch], 4)
    assert seen == [("aug", 0), 1, ("aug", 4), 5]


def test_seed000_bicubic_upsamples_bicubic():
    from facesr import models

    assert load_config("seed000-bicubic").model.args == {"interp": "bicubic"}
    net = models.build("unet_light", **load_config("seed000-bicubic").model.args)
    assert net.interp == "bicubic" and net.expected_params == 7_306_371  # same architecture, §II-A upsampling
    assert models.build("unet_light", **load_config("seed000-bilinear").model.args).interp == "bilinear"


def test_seed000_trains_on_the_heatmap_preset_its_weights_were_tuned_on(tmp_path, one_thread):
    from facesr.data import schema
    from facesr.errors import ConfigError
    from facesr.train.recipe import check_heatmap_preset
    from tests.train._stores import make_store

    store = make_store(tmp_path / "s.zarr", n_train=4, n_val=2, n_test=0)
    cfg = load_config("seed000-bicubic")
    assert cfg.data.heatmap_preset == "released"
    assert check_heatmap_preset(cfg, store) is None  # a heatmap without a recorded preset is not checked
    store.array(schema.HEATMAP).attrs.update({"preset": "paper"})
    with pytest.raises(ConfigError) as info:
        check_heatmap_preset(cfg, store)
    assert "'paper'" in str(info.value) and "tuned on 'released'" in str(info.value)
    assert "data.heatmap_preset=paper" in info.value.hint
    said: list[str] = []
    over = load_config("seed000-bicubic", ["data.heatmap_preset=paper"])
    assert check_heatmap_preset(over, store, said.append) == "paper"
    assert said and "not 'released'" in said[0]  # an explicit override trains, and says so
    assert check_heatmap_preset(load_config("mrrnet"), store) is None  # no requirement elsewhere
    store.array(schema.HEATMAP).attrs.update({"preset": "released"})
    assert check_heatmap_preset(cfg, store, said.append) == "released" and len(said) == 1
    with pytest.raises(ConfigError, match="tuned on 'released'"):  # the trainer refuses before training
        store.array(schema.HEATMAP).attrs.update({"preset": "paper"})
        train(load_config("seed000-bicubic", ["device=cpu", "max_steps=1", "pretrained=false"]), tmp_path / "s.zarr",
              tmp_path / "run")
