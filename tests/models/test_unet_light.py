"""Light U-Net (seed 000): exact parameter counts, MACs, scales, the global skip, range handling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from facesr.errors import ConfigError
from facesr.models import build
from facesr.models.layers import count_params
from facesr.models.unet_light import PARAM_COUNTS, UNetLight


@pytest.mark.parametrize(("name", "count"), [("unet_light", 7_306_371), ("unet_light_1rh", 7_140_099),
                                             ("unet_light_x4", 7_285_587)])
def test_exact_parameter_counts(name: str, count: int) -> None:
    with torch.device("meta"):
        model = build(name)
    assert count_params(model) == count == PARAM_COUNTS[name] == model.expected_params


def test_layer_layout_matches_released_notebook() -> None:
    with torch.device("meta"):
        m = build("unet_light")
    assert [blk[0].out_channels for blk in m.enc] == [48, 96, 192, 384]
    assert [blk[0].stride for blk in m.enc] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert [blk.conv[0].in_channels for blk in m.dec] == [384 + 192, 192 + 96, 96 + 48]
    assert len(m.upsample) == 3 and len(m.head) == 5 + 2
    assert m.head[0].kernel_size == (1, 1) and m.head[-1].kernel_size == (1, 1) and m.head[-1].out_channels == 3
    assert not any(isinstance(x, (torch.nn.BatchNorm2d, torch.nn.InstanceNorm2d)) for x in m.modules())
    assert all(x.negative_slope == 0.2 for x in m.modules() if isinstance(x, torch.nn.LeakyReLU))


def test_macs_match_paper() -> None:
    from facesr.metrics.complexity import count_macs

    for name, size, lo, hi in (("unet_light", 16, 3.95, 4.05), ("unet_light_1rh", 16, 1.2, 1.35)):
        macs = count_macs(build(name, base_channels=48), (1, 3, size, size))["macs"]
        assert lo <= macs / 1e9 <= hi, (name, macs)


def test_global_skip_is_bilinear_upsample_of_input() -> None:
    """With the refinement head's last conv zeroed, SR equals the bilinear ×8 of the LR (range-mapped exactly)."""
    model = build("unet_light", base_channels=8).eval()
    torch.nn.init.zeros_(model.head[-1].weight)
    torch.nn.init.zeros_(model.head[-1].bias)
    lr = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        sr = model(lr)
    torch.testing.assert_close(sr, F.interpolate(lr, scale_factor=8, mode="bilinear", align_corners=False),
                               atol=1e-6, rtol=0)


@pytest.mark.parametrize(("name", "size"), [("unet_light_x4", 32), ("unet_light_1rh", 16)])
def test_scales_reach_128(name: str, size: int) -> None:
    model = build(name, base_channels=8)
    assert model(torch.rand(1, 3, size, size)).shape == (1, 3, 128, 128)
    assert model.input_range == "minus1_1"


def test_bad_inputs_and_options() -> None:
    model = UNetLight(base_channels=8)
    with pytest.raises(ConfigError, match="divisible by 8"):
        model(torch.rand(1, 3, 12, 12))
    with pytest.raises(ConfigError):
        UNetLight(scale=3)
    with pytest.raises(ConfigError):
        build("unet_light", interp="nearest")
    with pytest.raises(ConfigError, match="bad option"):
        build("unet_light", refine_heads=2)
    assert build("unet_light", refine_blocks=2, base_channels=8).expected_params is None
    assert build("unet_light", interp="bicubic", base_channels=8).expected_params is None
