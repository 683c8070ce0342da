"""VGG feature losses: layer presets, the three trunks and their input conventions (random trunk files)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facesr.errors import ConfigError, WeightsMissingError
from facesr.metrics.backbones import IMAGENET_MEAN, IMAGENET_STD, TRUNK_FILES
from facesr.train.perceptual import FEATURES_MEAN, VGGPerceptual


def _vgg16_file(wdir, key, seed):
    """A random VGG16 trunk saved under ``TRUNK_FILES[key]`` as torchvision would (``features.*`` keys)."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(seed)
    state = {f"features.{k}": v for k, v in make_layers(cfgs["D"]).state_dict().items()}
    wdir.mkdir(parents=True, exist_ok=True)
    torch.save(state, wdir / TRUNK_FILES[key])
    return state


def _manual(loss, sr, hr, prep, cuts, crit):
    full = torch.nn.Sequential(*[m for s in loss.slices for m in s])
    return sum(crit(full[:k](prep(sr)), full[:k](prep(hr))) for k in cuts)


@pytest.fixture(scope="module")
def wdir(tmp_path_factory):
    d = tmp_path_factory.mktemp("w")
    return d, _vgg16_file(d, "vgg16", 1), _vgg16_file(d, "vgg16_features", 2)


def _pair():
    torch.manual_seed(0)
    return torch.rand(2, 3, 32, 32) * 1.2 - 0.1, torch.rand(2, 3, 32, 32)  # sr leaves [0, 1] a little


def test_seed000_defaults_to_the_notebook_trunk(wdir):
    """The notebook: IMAGENET1K_FEATURES weights, input clamped then ImageNet mean/std (its ``_prep``)."""
    d, _, feats = wdir
    loss = VGGPerceptual("seed000", weights_dir=d)
    assert loss.trunk == "notebook" and [len(s) for s in loss.slices] == [4, 5, 7]
    assert torch.equal(loss.slices[2][1].weight, feats["features.10.weight"])  # read from the FEATURES file
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    sr, hr = _pair()
    sr.requires_grad_(True)
    got = loss(sr, hr)
    want = _manual(loss, sr, hr, lambda x: (x.clamp(0, 1) - mean) / std, (4, 9, 16), F.mse_loss)
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    got.backward()
    assert sr.grad.abs().sum() > 0 and all(not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.training


def test_features_and_standard_trunks(wdir):
    d, v1, feats = wdir
    sr, hr = _pair()
    own = VGGPerceptual("seed000", trunk="features", weights_dir=d)  # the file's own 0-255 convention
    assert torch.equal(own.slices[0][0].weight, feats["features.0.weight"])
    mean = torch.tensor(FEATURES_MEAN).view(1, 3, 1, 1)
    want = _manual(own, sr, hr, lambda x: (x - mean) * 255.0, (4, 9, 16), F.mse_loss)
    assert own(sr, hr).item() == pytest.approx(want.item(), rel=1e-5)
    std = VGGPerceptual("seed000", trunk="standard", weights_dir=d)  # IMAGENET1K_V1, no clamp
    assert torch.equal(std.slices[0][0].weight, v1["features.0.weight"])
    m, s = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    want = _manual(std, sr, hr, lambda x: (x - m) / s, (4, 9, 16), F.mse_loss)
    assert std(sr, hr).item() == pytest.approx(want.item(), rel=1e-5)
    # the same weights fed the notebook's way give ~58x smaller features than the file's own convention
    x = torch.rand(1, 3, 32, 32)
    nb = VGGPerceptual("seed000", weights_dir=d)
    ratio = own.prepare(x).std() / nb.prepare(x).std()
    assert 40 < ratio < 80


def test_vgg19_presets_layers():
    mrr = VGGPerceptual("mrrnet", pretrained=False)
    assert mrr.trunk == "standard" and not mrr.clamp
    ends = [type(s[-1]).__name__ for s in mrr.slices]
    assert ends == ["ReLU", "ReLU", "ReLU", "ReLU", "Conv2d"]  # relu1_2, relu2_2, relu3_4, relu4_4, conv5_4
    assert sum(len(s) for s in mrr.slices) == 35 and mrr.resize == 224 and mrr.criterion is F.l1_loss
    mrr.resize = 32  # the 224 resize is fixed by the preset; keep the CPU test small
    sr = torch.rand(1, 3, 16, 16, requires_grad=True)
    val = mrr(sr, torch.rand(1, 3, 16, 16))
    val.backward()
    assert torch.isfinite(val) and sr.grad.abs().sum() > 0


def test_bad_trunk_and_missing_files(tmp_path):
    with pytest.raises(ConfigError, match="VGG16 file"):
        VGGPerceptual("mrrnet", trunk="notebook", pretrained=False)
    with pytest.raises(ConfigError, match="unknown VGG trunk"):
        VGGPerceptual("seed000", trunk="caffe", pretrained=False)
    with pytest.raises(WeightsMissingError, match="vgg16_features-amdegroot-88682ab5.pth") as err:
        VGGPerceptual("seed000", weights_dir=tmp_path)
    assert "pretrained=False" in err.value.hint
    with pytest.raises(WeightsMissingError, match="vgg19-dcbb9e9d.pth"):
        VGGPerceptual("mrrnet", weights_dir=tmp_path)


def test_objective_takes_the_trunk_override():
    from facesr.train.config import load_config
    from facesr.train.objective import Objective

    obj = Objective(load_config("seed000-bicubic", ["pretrained=false", "loss.lpips=0"]))
    assert obj.loss.terms["perceptual"].trunk == "notebook"
    obj = Objective(load_config("seed000-bicubic", ["pretrained=false", "loss.lpips=0",
                                                    "loss.perceptual_trunk=standard"]))
    assert obj.loss.terms["perceptual"].trunk == "standard"
