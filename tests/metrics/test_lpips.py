"""LPIPS offline: random-trunk plumbing, trunk weights read from the weights dir, WeightsMissingError when absent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facesr.errors import WeightsMissingError
from facesr.metrics.lpips import LPIPSMetric, build_lpips


@pytest.fixture(autouse=True)
def _no_weights(tmp_path, monkeypatch):
    """No weights dir, no torch hub cache: nothing local, nothing downloaded."""
    monkeypatch.setenv("FACESR_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_random_trunk_plumbing():
    m = LPIPSMetric("alex", pnet_rand=True)
    assert m.column == "lpips[alex-rand]"
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    sr = np.clip(hr.astype(int) + rng.integers(-40, 40, hr.shape), 0, 255).astype(np.uint8)
    same, diff = m(hr, hr), m(sr, hr)
    assert same.shape == (2,) and np.allclose(same, 0, atol=1e-6)
    assert np.all(diff > 1e-4)


def test_missing_trunk_is_a_weights_error():
    with pytest.raises(WeightsMissingError, match="alexnet-owt-7be5be79.pth") as err:
        build_lpips("alex")
    assert "pnet_rand=True" in err.value.hint


def test_trunk_loaded_from_weights_dir(tmp_path):
    import torchvision

    wdir = tmp_path / "weights"
    wdir.mkdir()
    torch.manual_seed(3)
    state = torchvision.models.alexnet(weights=None).state_dict()
    torch.save(state, wdir / "alexnet-owt-7be5be79.pth")
    model = build_lpips("alex", weights_dir=wdir)
    assert torch.equal(model.net.slice1[0].weight, state["features.0.weight"])
    assert torch.equal(model.net.slice5._modules["10"].weight, state["features.10.weight"])
    assert not any(p.requires_grad for p in model.parameters())
