"""SPARNet / SPARNet-Light-Attn3D: exact counts, released layout, any LR size, range mapping."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facesr.errors import ConfigError
from facesr.models import build
from facesr.models.layers import AttentionUnit, HourglassAttention, count_params
from facesr.models.sparnet import SPARNet, SPARNetConfig

THIN = {"min_ch": 8, "max_ch": 16, "hourglass_mid": 8}


@pytest.mark.parametrize(("name", "count"), [("sparnet", 10_518_867), ("sparnet_light", 5_242_211)])
def test_exact_parameter_counts(name: str, count: int) -> None:
    with torch.device("meta"):
        model = build(name)
    assert count_params(model) == count == model.expected_params


def test_released_layout() -> None:
    with torch.device("meta"):
        full, light = build("sparnet"), build("sparnet_light")
    assert len(full.body) == 10 and len(light.body) == 1
    units = [m for m in light.modules() if isinstance(m, AttentionUnit)]
    # encoder depths 4, 3, 2; body 2; decoder 3, 4, 5 (hourglass bottoms out at 4×4 from 64, 32, 16, …).
    assert [u.attention.depth for u in units] == [4, 3, 2, 2, 3, 4, 5]
    # 2-D attention: one map channel; 3-D: one per feature channel.
    assert {u.attention.out.conv.out_channels for u in full.modules() if isinstance(u, AttentionUnit)} == {1}
    assert [u.attention.out.conv.out_channels for u in units] == [64, 128, 128, 128, 128, 64, 32]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in light.modules()) > 0


def test_any_lr_size_and_range() -> None:
    model = build("sparnet_light", **THIN).eval()
    for size in (8, 23, 128):
        assert model(torch.rand(1, 3, size, size)).shape == (1, 3, 128, 128)
    lr = torch.rand(1, 3, 16, 16)
    x = model.prepare(lr)
    torch.testing.assert_close(x, F.interpolate(lr, size=128, mode="bicubic", align_corners=False) * 2 - 1)
    assert model.prepare(torch.zeros(1, 3, 128, 128)).eq(-1).all()  # 128 input: no resize, [-1, 1]


def test_attention_maps_are_gates() -> None:
    att = HourglassAttention(2, 16, 1, c_mid=8)
    x = torch.randn(2, 16, 16, 16)
    amap = att.attention_map(x)
    assert amap.shape == (2, 1, 16, 16) and (amap > 0).all() and (amap < 1).all()
    torch.testing.assert_close(att(x), x * amap)
    assert HourglassAttention(0, 16, 1)(x) is x


def test_init_and_options() -> None:
    torch.manual_seed(0)
    model = SPARNet(SPARNetConfig(res_depth=2))
    conv_w = torch.cat([m.weight.flatten() for m in model.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(conv_w.std().item() - 0.02) < 0.002
    bn_w = torch.cat([m.weight for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)])
    assert abs(bn_w.mean().item() - 1.0) < 0.01
    with pytest.raises(ConfigError, match="res_dept") as exc:
        build("sparnet", res_dept=3)
    assert "res_depth" in (exc.value.hint or "")
    with pytest.raises(ConfigError):
        build("sparnet", attention="spar4d")
    assert build("sparnet_light", upsample="bilinear").expected_params == 5_242_211
