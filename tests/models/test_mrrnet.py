"""MRRNet generator and MRRGAN discriminator: exact counts, MRF attention, spectral norm, score map."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facesr.models import build
from facesr.models.layers import AttentionUnit, MRFAttention, count_params
from facesr.models.mrrnet import MRRDiscriminator


@pytest.mark.parametrize(("name", "count"), [("mrrnet", 9_130_771), ("mrrgan_d", 390_720)])
def test_exact_parameter_counts(name: str, count: int) -> None:
    with torch.device("meta"):
        model = build(name)
    assert count_params(model) == count == model.expected_params


def test_generator_layout() -> None:
    with torch.device("meta"):
        g = build("mrrnet")
    units = [m for m in g.modules() if isinstance(m, AttentionUnit)]
    assert len(units) == 3 + 10 + 3
    assert all(isinstance(u.attention, MRFAttention) for u in units)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in g.modules())
    norms = [m for m in g.modules() if isinstance(m, torch.nn.InstanceNorm2d)]
    assert any(n.affine for n in norms) and any(not n.affine for n in norms)  # unit norms / MRF norm
    kernels = [b.conv.kernel_size[0] for b in units[0].attention.branches]
    assert kernels == [1, 3, 5, 7] and units[0].attention.out.conv.out_channels == 1


def test_mrf_attention_formula() -> None:
    att = MRFAttention(16)
    x = torch.randn(2, 16, 12, 12)
    fused = torch.cat([b(x) for b in att.branches], 1)
    expected = torch.sigmoid(att.out(F.instance_norm(F.relu(fused))))
    torch.testing.assert_close(att(x), x * expected)


def test_generator_any_lr_size() -> None:
    g = build("mrrnet", res_depth=1, min_ch=8, max_ch=16).eval()
    for size in (16, 32):
        with torch.no_grad():
            y = g(torch.rand(1, 3, size, size))
        assert y.shape == (1, 3, 128, 128) and torch.isfinite(y).all()


def test_discriminator_scores() -> None:
    torch.manual_seed(0)
    d = MRRDiscriminator()
    assert sum(1 for n, _ in d.named_parameters() if n.endswith("weight_orig")) == 4  # spectral norm ×4
    assert d.score[1].bias is None
    s = d(torch.rand(3, 3, 128, 128))
    assert s.shape == (3, 1, 8, 8) and (s.abs() < 1).all()
    assert d.kind == "discriminator" and d.input_range == "minus1_1"
