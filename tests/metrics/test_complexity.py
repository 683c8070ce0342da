"""The complexity profiler: hand-computed MACs, attention counted, dict outputs, memory, timing, CLI."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facesr.errors import ConfigError
from facesr.metrics.complexity import count_macs, default_lr_size, format_count, peak_memory_mb, profile


class _Attention(nn.Module):
    """x (1, 160) → q = k = v (1, 2 heads, 10 tokens, 8 dims); explicit matmuls plus SDPA."""

    def forward(self, x):
        q = x.view(1, 2, 10, 8)
        a = (q @ q.transpose(-2, -1) * 8**-0.5).softmax(-1)
        return a @ q, F.scaled_dot_product_attention(q, q, q)


class _Fn(nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, x):
        return self.fn(x)


class _DictOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)

    def forward(self, x):
        return {"sr": self.conv(x), "parsing": self.conv(x)[:, :1]}


class _BigTemp(nn.Module):
    """Allocates a 64 MiB temporary inside forward."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, x):
        big = torch.ones(16 * 2**20) * self.w  # 64 MiB fp32
        return x + big.sum()


def test_conv_and_linear_macs_are_hand_computed():
    conv = nn.Conv2d(3, 8, 3, padding=1)  # 8 out × 3 in × 9 taps × 16·16 pixels, bias not counted
    assert count_macs(conv, (1, 3, 16, 16))["macs"] == 8 * 3 * 9 * 16 * 16
    lin = nn.Linear(16, 32)
    assert count_macs(lin, (1, 10, 16))["macs"] == 10 * 16 * 32
    grouped = nn.Conv2d(8, 8, 3, padding=1, groups=8)  # depthwise: 8 × 1 × 9 × 64
    assert count_macs(grouped, (1, 8, 8, 8))["macs"] == 8 * 9 * 64


def test_attention_matmuls_are_counted():
    res = count_macs(_Attention(), (1, 160))
    per = 2 * 10 * 10 * 8  # heads × L × S × d
    assert res["by_operator"]["bmm"] == 2 * per  # QKᵀ and attn·V, counted by FlopCounterMode itself
    assert res["by_operator"]["_scaled_dot_product_flash_attention_for_cpu"] == 2 * per  # facesr's CPU formula
    assert res["macs"] == 4 * per
    assert "_softmax" in res["uncounted_ops"] and "mul" in res["uncounted_ops"]  # softmax and the 1/√d scale


def test_upsample_handlers():
    up = nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False)
    assert count_macs(up, (1, 3, 4, 4))["macs"] == 16 * 3 * 8 * 8
    nearest = nn.Upsample(scale_factor=2, mode="nearest")
    assert count_macs(nearest, (1, 3, 4, 4))["macs"] == 3 * 8 * 8
    bilinear = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    assert count_macs(bilinear, (1, 3, 4, 4))["by_operator"] == {"upsample_bilinear2d": 4 * 3 * 8 * 8}
    shrink = lambda x: F.interpolate(x, size=(2, 2), mode="bicubic", antialias=True)  # noqa: E731
    assert count_macs(_Fn(shrink), (1, 3, 8, 8))["by_operator"] == {"_upsample_bicubic2d_aa": 16 * 3 * 2 * 2}


def test_norms_and_elementwise_are_listed_not_counted_and_movement_is_ignored():
    model = nn.Sequential(nn.BatchNorm2d(3), nn.ReLU(), nn.PixelShuffle(1), nn.LayerNorm(4)).eval()
    res = count_macs(_Fn(lambda x: torch.cat([model(x).permute(0, 2, 3, 1), x.permute(0, 2, 3, 1)], -1)), (1, 3, 4, 4))
    assert res["macs"] == 0 and res["by_operator"] == {}
    assert res["uncounted_ops"] == {"_native_batch_norm_legit_no_training": 1, "relu": 1, "native_layer_norm": 1}


def test_no_deprecation_warning(recwarn):
    count_macs(nn.Conv2d(3, 3, 3), (1, 3, 8, 8))
    assert not [w for w in recwarn if issubclass(w.category, (DeprecationWarning, FutureWarning))]


def test_dict_outputs_and_training_flag_restored():
    model = _DictOut().train()
    assert count_macs(model, (1, 3, 5, 5))["macs"] == 2 * 4 * 3 * 25
    assert model.training


def test_peak_memory_sees_a_temporary():
    mib = peak_memory_mb(_BigTemp(), (1, 3, 4, 4))
    assert 56 <= mib <= 200  # the 64 MiB ones and the 64 MiB product are alive together


def test_profile_keys_and_settings():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))
    res = profile(model, (3, 16, 16), batch_sizes=(1, 4), warmup=1, iters=2, memory=False)
    assert res["params"] == 3 * 8 * 9 + 8 + 8 * 3 * 9 + 3
    assert res["macs"] == (8 * 3 * 9 + 3 * 8 * 9) * 256 and res["gmacs"] == res["macs"] / 1e9
    assert res["latency_ms"] > 0 and res["throughput"] > 0
    assert res["latency_batch"] == 1 and res["throughput_batch"] == 4
    assert {"device", "torch", "threads", "amp", "channels_last", "compile"} <= set(res)
    assert res["device"] == "cpu" and res["peak_memory_mb"] is None
    json.dumps(res)  # JSON-ready
    with pytest.raises(ValueError):
        profile(model, (16, 16))


def test_format_and_lr_size():
    assert format_count(7_306_371) == "7.31M"
    assert format_count(3.99e9) == "3.99G"
    assert default_lr_size(nn.Identity()) == 16
    m = nn.Identity()
    m.scale = 4
    assert default_lr_size(m) == 32


def _built(name):
    from facesr.models import build

    try:
        return build(name)
    except ConfigError:
        pytest.skip(f"{name} is not registered yet")


def test_unet_light_gmacs_match_paper():
    """The light U-Net paper: 3.99 GMACs (5 refine blocks) and 1.28 GMACs (1-RH) at 16→128."""
    assert 3.9e9 <= count_macs(_built("unet_light"), (1, 3, 16, 16))["macs"] <= 4.1e9
    assert 1.2e9 <= count_macs(_built("unet_light_1rh"), (1, 3, 16, 16))["macs"] <= 1.35e9


def test_gvtnet_attention_and_adjacency_macs_are_exact():
    """A small released GVTNet at 16×16: 4 windows of 64 tokens, 2 heads of 12 channels, 2 groups × 2 blocks."""
    from facesr.models.gvtnet import gvtnet

    small = {"embed_dim": 24, "depths": (2, 2), "group_shifts": (0, 4), "num_heads": 2, "num_feat": 8}
    res = count_macs(gvtnet(variant="released", **small), (1, 3, 16, 16))
    attention = 4 * (2 * 4 * 2 * 64 * 64 * 12)  # 4 blocks × (QKᵀ + attn·V) × windows × heads × n × n × d
    gram = 2 * (2 * 64 * 4 * 64)  # 2 groups × heads × n × windows × n (the released adjacency's Gram matrix)
    assert res["by_operator"]["bmm"] == attention + gram
    assert res["by_operator"]["_cdist_forward"] == 2 * (2 * 64 * 64 * 64)  # groups × heads × n × n × d(=n)


def test_profile_prints_no_deprecation_warning():
    """fvcore's import printed torch's ``torch.jit.script is deprecated`` FutureWarning into ``models profile``."""
    import subprocess
    import sys

    code = "from facesr.cli import main; main(['models', 'profile', 'bicubic', '--batch', '2', '--iters', '1', '--warmup', '0'])"
    r = subprocess.run([sys.executable, "-W", "default", "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "MACs" in r.stdout and "Warning" not in r.stderr and "deprecat" not in r.stderr.lower(), r.stderr


def test_cli_profile(tmp_path):
    from typer.testing import CliRunner

    from facesr.cli import app

    out = tmp_path / "p.json"
    result = CliRunner().invoke(
        app, ["models", "profile", "bicubic", "--batch", "2", "--iters", "1", "--warmup", "0", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "params" in result.output and "MACs" in result.output and "peak memory" in result.output
    assert "latency" in result.output and "throughput" in result.output and "threads" in result.output
    data = json.loads(out.read_text())
    assert data["model"] == "bicubic" and data["params"] == 0 and data["throughput_batch"] == 2
