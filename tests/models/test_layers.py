"""Shared blocks and the range helper."""

from __future__ import annotations

import pytest
import torch

from facesr.errors import ConfigError
from facesr.models.layers import (ChannelAttention, ConvLayer, DoubleConv, SpatialAttention, make_act, make_norm,
                                  resize_to)
from facesr.models.ranges import from_model_range, to_model_range


@pytest.mark.parametrize("name", ["zero_one", "minus1_1", "mean_sub"])
def test_ranges_round_trip(name: str) -> None:
    x = torch.rand(2, 3, 4, 4)
    mean = (0.5430, 0.4217, 0.3605)
    y = to_model_range(x, name, mean=mean)
    torch.testing.assert_close(from_model_range(y, name, mean=mean), x)
    if name == "minus1_1":
        assert to_model_range(torch.zeros(1), name).item() == -1 and to_model_range(torch.ones(1), name).item() == 1


def test_range_errors() -> None:
    with pytest.raises(ConfigError, match="unknown model range") as exc:
        to_model_range(torch.zeros(1), "minus_1_1")
    assert "minus1_1" in (exc.value.hint or "")
    with pytest.raises(ConfigError, match="mean"):
        to_model_range(torch.zeros(1, 3, 1, 1), "mean_sub")


def test_conv_layer_shapes_and_bias() -> None:
    x = torch.rand(1, 4, 9, 9)
    assert ConvLayer(4, 6, scale="down")(x).shape == (1, 6, 5, 5)
    assert ConvLayer(4, 6, scale="up")(x).shape == (1, 6, 18, 18)
    assert ConvLayer(4, 6, 5, pad="zeros")(x).shape == (1, 6, 9, 9)
    assert ConvLayer(4, 6, norm="bn").conv.bias is None and ConvLayer(4, 6).conv.bias is not None
    assert DoubleConv(4, 8, 2)(x).shape == (1, 8, 5, 5)


def test_attention_blocks_keep_shape() -> None:
    x = torch.randn(2, 32, 8, 8)
    assert ChannelAttention(32)(x).shape == x.shape
    assert SpatialAttention()(x).shape == x.shape


def test_factories_and_resize() -> None:
    with pytest.raises(ConfigError):
        make_act("swishy")
    with pytest.raises(ConfigError):
        make_norm("batch", 4)
    x = torch.rand(1, 3, 16, 16)
    assert resize_to(x, 16) is x
    assert resize_to(x, 128).shape == (1, 3, 128, 128)
    assert resize_to(torch.rand(1, 3, 256, 256), 128).shape == (1, 3, 128, 128)
