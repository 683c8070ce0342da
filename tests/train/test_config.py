"""Config: presets resolve, overrides are typed and YAML-parsed, unknown keys get a close-match hint."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from facesr.errors import ConfigError
from facesr.train import config as C

PAPER_PRESETS = ["gvtnet", "gvtnet-paper", "mrrgan", "mrrnet", "seed000-bicubic", "seed000-bilinear", "ufvnet-regressor",
                 "ufvnet-stage1", "ufvnet-stage2", "wnet"]


def test_presets_listed_and_resolve():
    assert C.list_presets() == PAPER_PRESETS
    for name in PAPER_PRESETS:
        cfg = C.load_config(name)
        assert cfg.preset == name
        assert C.from_dict(C.to_dict(cfg)) == cfg  # exact round trip (config.yaml of a run)


def _weights(cfg) -> dict:
    from facesr.train.objective import recipe_for

    return {k: t.weight for k, t in recipe_for(cfg.loss).terms.items()}


def test_preset_recipes():
    s = C.load_config("seed000-bicubic")
    assert (s.optim.lr, s.optim.betas, s.sched.name, s.sched.patience, s.sched.factor) == (1e-4, (0.9, 0.999),
                                                                                          "plateau", 6, 0.5)
    assert _weights(s) == {"mse": 1, "perceptual": 0.02, "heatmap": 2.0, "lpips": 0.15}
    assert (s.val.criterion, s.val.early_stop, s.seed, s.loss.recipe) == ("seed000", 15, 42, "seed000")
    from facesr.train.objective import recipe_for

    assert (recipe_for(s.loss).ramp, recipe_for(s.loss).pixel_range) == ("seed000", "-1_1")
    assert C.load_config("seed000-bilinear").data.lr == "bilinear-progressive_16"
    g = C.load_config("gvtnet")  # continueyang/GVTNet tsisv9SRx8_scratch.yml
    assert (g.ema.decay, g.optim.lr, g.optim.betas, _weights(g)) == (0.999, 2e-4, (0.9, 0.99), {"l1": 1.0})
    assert (g.sched.name, g.sched.interval, g.sched.milestones, g.sched.gamma, g.max_steps) == (
        "multistep", "step", (700000,), 0.5, 800000)
    assert g.data.batch_size * g.optim.accumulate == 128
    m = C.load_config("mrrgan")  # SYLan2019/MRRNet as released
    assert (m.model.discriminator, m.optim.lr, m.optim.d_lr, m.loss.recipe, m.epochs) == (
        "mrrgan_d", 1e-4, 4e-4, "mrrgan", 20)
    assert (m.sched.name, m.sched.step_size, m.sched.gamma, m.sched.discriminator) == ("step", 4, 0.7, False)
    assert (m.loss.d_input, m.val.criterion, m.val.protocol) == ("updated", "psnr", "dic")
    assert _weights(m) == {"l1": 1.0, "gan": 0.01, "perceptual": 0.01}
    w = C.load_config("wnet")
    assert _weights(w) == {"mse": 1.0, "parsing": 1.0, "key_region": 0.5}
    assert _weights(C.load_config("ufvnet-stage2")) == {"l1": 1.0, "weight_ce": 0.1}
    # overrides: a weight replaces the recipe's, 0 removes a term, a new term is added
    o = C.load_config("wnet", ["loss.key_region=0", "loss.l1=0.5", "loss.mse=2"])
    assert _weights(o) == {"mse": 2.0, "parsing": 1.0, "l1": 0.5}


def test_overrides_are_typed():
    cfg = C.load_config("wnet", ["optim.lr=2e-4", "epochs=3", "optim.betas=[0.5, 0.9]", "data.priors=[]",
                                 "model.args.base_channels=8", "amp=off", "val.lpips=no", "sched.milestones=[2, 4]"])
    assert cfg.optim.lr == 2e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.epochs == 3 and cfg.optim.betas == (0.5, 0.9) and cfg.data.priors == ()
    assert cfg.model.args == {"base_channels": 8} and cfg.amp == "off" and cfg.val.lpips is False
    assert cfg.sched.milestones == (2, 4)
    assert C.load_config("wnet", {"optim.lr": 1e-3}).optim.lr == 1e-3
    # yaml.safe_load only: a Python expression stays a string and then fails the type check
    with pytest.raises(ConfigError):
        C.load_config("wnet", ["epochs=__import__('os').getpid()"])


@pytest.mark.parametrize(
    "override, hint",
    [("optim.lrr=1", "optim.lr"), ("optm.lr=1", "optim.lr"), ("epoch=3", "epochs"), ("loss.perceptul=0", "loss.perceptual"),
     ("amp=fp23", "fp16"), ("sched.name=platau", "plateau")],
)
def test_unknown_keys_and_values_get_close_match(override, hint):
    with pytest.raises(ConfigError) as err:
        C.load_config("seed000-bicubic", [override])
    assert hint in (err.value.hint or "")


def test_bad_values():
    for bad in ["epochs=abc", "optim.betas=[1]", "val.lpips=maybe", "optim.lr", "epochs.x=1"]:
        with pytest.raises(ConfigError):
            C.load_config("wnet", [bad])
    with pytest.raises(ConfigError) as err:
        C.load_config("seed000-bicubc")
    assert "seed000-bicubic" in err.value.hint


def test_frozen_and_replace():
    cfg = C.load_config("wnet")
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 1  # type: ignore[misc]
    new = C.replace(cfg, **{"optim.lr": 5e-4})
    assert new.optim.lr == 5e-4 and cfg.optim.lr == 1e-4


def test_defaults_file_documents_every_key():
    from importlib import resources

    text = (resources.files("facesr.train.presets") / "defaults.yaml").read_text()
    data = yaml.safe_load(text)
    flat = []

    def walk(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict) and k not in ("args", "discriminator_args", "init_parts"):  # free-form mappings
                walk(v, f"{prefix}{k}.")
            else:
                flat.append(prefix + k)

    walk(data)
    assert sorted(flat) == sorted(C.keys())
    assert C.from_dict(data) == C.TrainConfig()  # the file states the dataclass defaults
