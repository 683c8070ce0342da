"""`data.augment` in every preset (issue 10, item 1 wiring): each paper's/code's defaults, shown by
`--show-config`, applied by the training step through facesr.data.augment, deterministic per (seed, epoch,
sample) so that exact resume holds (the resume itself: tests/train/test_runs.py
::test_augmented_run_resumes_exactly, and the preset-level check below)."""

from __future__ import annotations

import pytest
import torch
import yaml
from typer.testing import CliRunner

from facesr.cli import app
from facesr.train.build import make_augment
from facesr.train.config import list_presets, load_config
from facesr.train.logging import read_csv
from facesr.train.recipe import card
from facesr.train.trainer import Trainer, train
from tests.train.test_presets import tiny_overrides

#: (hflip, rot90, rescale) each preset trains with, from its paper or released code
EXPECTED = {
    "mrrnet": (0.5, False, (1.0, 1.3)),  # §4.2 + data/celeba_dataset.py
    "mrrgan": (0.5, False, (1.0, 1.3)),
    "gvtnet": (0.5, True, ()),  # yml use_hflip + use_rot
    "gvtnet-paper": (0.5, True, ()),
    "seed000-bicubic": (0.0, False, ()),  # none stated (paper), none in the notebook
    "seed000-bilinear": (0.0, False, ()),
    "wnet": (0.0, False, ()),  # none stated, no public code
    "ufvnet-stage1": (0.0, False, ()),
    "ufvnet-stage2": (0.0, False, ()),
    "ufvnet-regressor": (0.0, False, ()),
}


def _show(preset: str) -> dict:
    res = CliRunner().invoke(app, ["train", "--preset", preset, "--show-config"])
    assert res.exit_code == 0, res.output
    return yaml.safe_load(res.stdout)["data"]["augment"]


def test_every_preset_has_its_papers_augmentation():
    assert set(EXPECTED) == set(list_presets())
    for preset, (hflip, rot90, rescale) in EXPECTED.items():
        a = load_config(preset).data.augment
        assert (a.hflip, a.rot90, a.rescale) == (hflip, rot90, rescale), preset
        rows = [r for r in card(preset).rows if any(k.startswith("data.augment") for k in r.keys)]
        assert rows, preset  # the card has the row, stated or "none stated"
        if not (hflip or rot90 or rescale):
            assert all("none" in (r.paper + r.code).lower() for r in rows), preset


def test_show_config_shows_the_transforms():
    gvt = _show("gvtnet")
    assert gvt["hflip"] == 0.5 and gvt["rot90"] is True
    mrr = _show("mrrnet")
    assert mrr["rescale"] == [1.0, 1.3] and mrr["hflip"] == 0.5
    assert _show("wnet") == {"hflip": 0.0, "rot90": False, "rescale": [], "rescale_mode": "mrrnet"}


def test_step_gets_the_presets_augmentation():
    assert make_augment(load_config("wnet")) is None
    f = make_augment(load_config("mrrnet"))
    assert f.config.rescale == (1.0, 1.3) and f.config.degradation == "bicubic-pil"
    g = make_augment(load_config("seed000-bilinear", ["data.augment.hflip=1.0"]))
    assert g.config.degradation == "bilinear-progressive"  # a rescaled LR is remade with the preset's own method
    hr = torch.rand(2, 3, 128, 128)
    batch = {"hr": hr, "lr": torch.rand(2, 3, 16, 16), "heatmap": torch.rand(2, 1, 128, 128),
             "index": torch.tensor([3, 5])}
    out = g(batch, 0)  # p = 1: every sample flipped, HR and heatmap alike
    assert torch.equal(out["hr"], hr.flip(-1)) and torch.equal(out["heatmap"], batch["heatmap"].flip(-1))
    h = make_augment(load_config("gvtnet"))
    a, b = h(batch, 4), h(batch, 4)
    assert torch.equal(a["hr"], b["hr"])  # deterministic per (seed, epoch, sample)
    assert any(not torch.equal(h(batch, e)["hr"], a["hr"]) for e in range(5, 12))  # and it changes with the epoch


@pytest.mark.parametrize("preset", ["mrrnet", "gvtnet"])
def test_preset_augmentation_resumes_exactly(preset, tiny_store, tmp_path, one_thread):
    """Stop after one step and resume: the second step's loss equals the uninterrupted run's."""
    sets = [s for s in tiny_overrides(preset) if not s.startswith("max_steps")]
    sets += ["data.priors=[]", "max_steps=3"]
    train(load_config(preset, sets), tiny_store, tmp_path / "ref")
    train(load_config(preset, [*sets[:-1], "max_steps=1"]), tiny_store, tmp_path / "run")
    Trainer(load_config(preset, sets), tiny_store, tmp_path / "run", resume=True).fit()
    a, b = read_csv(tmp_path / "ref" / "steps.csv"), read_csv(tmp_path / "run" / "steps.csv")
    assert [r["step"] for r in a] == [r["step"] for r in b] == ["1", "2", "3"]
    assert [float(r["loss"]) for r in b] == pytest.approx([float(r["loss"]) for r in a], rel=1e-6)


def test_wnet_parsing_target_is_the_bicubic_downsampled_hr_map():
    """W-Net §4.2: the Parsing Block's target is the HR binary map (skin) bicubic-downsampled to the LR size,
    made after augmentation, on the prediction's grid; `hr` keeps the 128×128 map."""
    from facesr.models.layers import resize_to
    from facesr.priors.parsing import lr_parsing
    from facesr.train.build import _batch_hook
    from facesr.train.objective import PROVIDERS

    g = torch.Generator().manual_seed(0)
    parsing = torch.randint(0, 4, (2, 128, 128), generator=g)
    parsing[:, 20:90, 30:100] = 1
    batch = {"hr": torch.rand(2, 3, 128, 128, generator=g), "lr": torch.rand(2, 3, 16, 16, generator=g),
             "parsing": parsing, "index": torch.tensor([0, 1])}
    hook = _batch_hook(load_config("wnet"))
    out = hook(batch, 0)
    want = lr_parsing((parsing == 1).numpy().astype("float32"), 16)  # the bicubic-downsampled HR map
    assert out["lr_parsing"].shape == (2, 1, 16, 16)
    assert torch.equal(out["lr_parsing"][:, 0], torch.from_numpy(want))
    pred = {"parsing": torch.zeros(2, 3, 128, 128)}
    target = PROVIDERS["parsing_hr"](pred, out)
    assert torch.allclose(target[:, :1], resize_to(torch.from_numpy(want)[:, None], 128).clamp(0, 1))
    hr_target = PROVIDERS["parsing_hr"](pred, batch)  # without the hook: the 128×128 binary map
    assert torch.equal(hr_target[:, 0], (parsing == 1).float()) and not torch.allclose(target, hr_target)
    assert _batch_hook(load_config("wnet", ["loss.parsing_target=hr"])) is None  # no augmentation, no target
    flipped = _batch_hook(load_config("wnet", ["data.augment.hflip=1.0"]))(batch, 0)
    assert torch.equal(flipped["lr_parsing"], out["lr_parsing"].flip(-1)) or torch.allclose(
        flipped["lr_parsing"], out["lr_parsing"].flip(-1), atol=1e-6)  # made after the flip
