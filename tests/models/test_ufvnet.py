"""UFVNet: eq. 4 targets, anchors, weighted fusion, deployed model, exact counts."""

from __future__ import annotations

import pytest
import torch

from facesr.models import build
from facesr.models.layers import count_params
from facesr.models.sparnet import SPARNet
from facesr.models.ufvnet import DEPLOY_PARAMS, REGRESSOR_PARAMS, UFVNet, anchor_target_weights

THIN = {"min_ch": 8, "max_ch": 16, "hourglass_mid": 8, "regressor_hidden": 32}


def test_eq4_targets() -> None:
    w = anchor_target_weights([16, 32, 64, 8, 56])
    torch.testing.assert_close(w.sum(1), torch.ones(5))
    torch.testing.assert_close(w[0], torch.tensor([0.5, 0.375, 0.125]))  # d = (0, 16, 48), Σd = 64
    torch.testing.assert_close(w[1], torch.tensor([1 / 3, 0.5, 1 / 6]))  # d = (16, 0, 32)
    torch.testing.assert_close(w[2], torch.tensor([0.2, 0.3, 0.5]))  # d = (48, 32, 0)
    assert w[3].argmax() == 0 and w[4].argmax() == 2
    # rates and sizes give the same targets (the ratio cancels)
    torch.testing.assert_close(anchor_target_weights([3 / 16], [1 / 8, 1 / 4, 1 / 2]), anchor_target_weights([24]))
    with pytest.raises(ValueError):
        anchor_target_weights([16], [16, 32])


def test_exact_parameter_counts() -> None:
    with torch.device("meta"):
        model = build("ufvnet")
        assert count_params(model) == model.expected_params == 79_973_423
        assert [count_params(a) for a in model.anchors] == [5_242_211] * 3
        assert count_params(model.regressor) == REGRESSOR_PARAMS
        model.discard_anchor_heads()
        assert count_params(model) == DEPLOY_PARAMS
        assert model.unused_in_forward == ()
        stage2 = build("ufvnet", anchor_heads=False)  # the ufvnet-stage2 preset's model.args
        assert count_params(stage2) == stage2.expected_params == DEPLOY_PARAMS and stage2.unused_in_forward == ()


def test_regressor_reaches_alexnet_6x6() -> None:
    with torch.device("meta"):
        model = build("ufvnet")
        assert model.regressor.features(torch.empty(1, 3, 128, 128)).shape == (1, 256, 6, 6)


@pytest.fixture(scope="module")
def thin() -> UFVNet:
    torch.manual_seed(0)
    return build("ufvnet", **THIN)


def test_forward_any_size(thin: UFVNet) -> None:
    thin.eval()
    for size in (8, 20):
        with torch.no_grad():
            out = thin(torch.rand(2, 3, size, size))
        assert out["sr"].shape == (2, 3, 128, 128)
        assert out["weights"].shape == (2, 3) and (out["weights"] >= 0).all()
        torch.testing.assert_close(out["weights"].sum(1), torch.ones(2))
        torch.testing.assert_close(out["weights"], out["weight_logits"].softmax(1))


def test_anchors_are_standalone_sr_models(thin: UFVNet) -> None:
    assert len(thin.anchors) == 3 and all(isinstance(a, SPARNet) for a in thin.anchors)
    with torch.no_grad():
        y = thin.anchors[1](torch.rand(1, 3, 32, 32))
    assert y.shape == (1, 3, 128, 128)
    assert thin.predict_weights(torch.rand(2, 3, 16, 16)).shape == (2, 3)


def test_weights_scale_anchor_features(thin: UFVNet) -> None:
    """A zero weight removes an anchor's contribution (eqs. 6-9)."""
    thin.eval()
    lr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        x = thin.prepare(lr)
        feats = [a.encode(x) for a in thin.anchors]
        w = torch.tensor([[1.0, 0.0, 0.0]])
        fused = torch.cat([f * w[:, i, None, None, None] for i, f in enumerate(feats)], 1)
        assert fused[:, 16:].abs().sum() == 0 and fused[:, :16].abs().sum() > 0


def test_discarded_heads_keep_forward() -> None:
    torch.manual_seed(0)
    model = build("ufvnet", **THIN).eval()
    lr = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        before = model(lr)["sr"]
        after = model.discard_anchor_heads()(lr)["sr"]
    torch.testing.assert_close(before, after)
