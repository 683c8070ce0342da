"""W-Net: shapes and side output, gradients (reduced width), determinism, blocks, the paper config once."""

from __future__ import annotations

import pytest
import torch

from facesr.errors import ConfigError
from facesr.models import build, sr_of
from facesr.models.wnet import LPF, PARAM_COUNT, SCAB, ConvSelfAttention, WNetConfig, wnet

TINY = {"hr_size": 32, "width": 8, "up_widths": (4, 4, 4), "down_widths": (4, 8, 8), "parsing_res_blocks": 1}


NARROW = {"down_widths": (16, 32, 64), "decoder_skips": "additive"}  # facesr's earlier default, by overrides


def test_paper_config_parameters_and_widths():
    """Eqs. 14-19: every conv before an (un)shuffle has 64 outputs; eq. 23 without skips (15,804,294 params)."""
    with torch.device("meta"):
        model = build("wnet")
        narrow = build("wnet", **NARROW)
    assert sum(p.numel() for p in model.parameters()) == PARAM_COUNT == 15_804_294 == model.expected_params
    assert model.cfg.decoder_skips == "none" and model.cfg.down_widths == (256, 256, 256)
    assert [m[0].out_channels for m in (*model.w_up, *model.w_down)] == [64] * 6
    assert model.enc_down[0][0].in_channels == 256 and model.enc_down[0][0].out_channels == 16
    assert sum(p.numel() for p in narrow.parameters()) == 4_720_825 and narrow.expected_params is None


def test_paper_widths_forward_at_16px():
    """The paper widths run end to end (at hr_size 16, the smallest the 4-level encoder takes: cheap on a CPU)."""
    torch.manual_seed(0)
    model = build("wnet", hr_size=16).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, 4, 4))
    assert set(out) == {"sr", "parsing"}
    assert out["sr"].shape == (1, 3, 16, 16) and out["parsing"].shape == (1, 3, 16, 16)
    assert torch.isfinite(out["sr"]).all() and torch.isfinite(out["parsing"]).all()
    assert sr_of(out) is out["sr"]


def test_skips_are_an_option_that_changes_the_output():
    torch.manual_seed(0)
    plain = wnet(**TINY).eval()
    skips = wnet(**TINY, decoder_skips="additive").eval()
    skips.load_state_dict(plain.state_dict())  # same parameters: the skips add no weights
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert not torch.allclose(plain(x)["sr"], skips(x)["sr"])
    assert plain.cfg.decoder_skips == "none"


def test_reduced_width_backward_finite():
    torch.manual_seed(0)
    model = wnet(**TINY).train()
    out = model(torch.rand(2, 3, 8, 8))
    assert out["sr"].shape == (2, 3, 32, 32) and out["parsing"].shape == (2, 3, 32, 32)
    (out["sr"].square().mean() + out["parsing"].abs().mean()).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert grads["parsing_block.shallow.weight"].abs().sum() > 0  # the SR loss reaches the Parsing Block


def test_deterministic_under_seed():
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    outs = []
    for _ in range(2):
        torch.manual_seed(7)
        model = wnet(**TINY).eval()
        with torch.no_grad():
            outs.append(model(x)["sr"])
    assert torch.equal(outs[0], outs[1])


def test_any_lr_size_and_single_channel_parsing():
    model = wnet(**TINY, parsing_channels=1).eval()
    with torch.no_grad():
        a = model(torch.rand(1, 3, 8, 8))
        b = model(torch.rand(1, 3, 16, 16))
    assert a["sr"].shape == b["sr"].shape == (1, 3, 32, 32)
    assert a["parsing"].shape == (1, 1, 32, 32)


def test_blocks_keep_shapes():
    x, par = torch.randn(2, 16, 12, 12), torch.rand(2, 3, 12, 12)
    assert LPF(16, 3, 16)(x, par).shape == x.shape
    assert SCAB(16, 4, 16)(x).shape == x.shape


def test_conv_self_attention_matches_naive():
    torch.manual_seed(0)
    att = ConvSelfAttention(8, heads=4).eval()
    x = torch.randn(1, 8, 5, 6)
    with torch.no_grad():
        got = att(x)
        q = att.pw(att.dw(torch.cat([x, x, x], 1)))
        outs = []
        for h in range(4):
            qh, kh, vh = (q[0, i * 8 + 2 * h : i * 8 + 2 * h + 2].reshape(2, 30) for i in range(3))
            a = torch.softmax(qh @ kh.T / 30**0.5, dim=-1)
            outs.append((a @ vh).reshape(2, 5, 6))
        want = att.proj(torch.cat(outs, 0)[None])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_bad_config():
    with pytest.raises(ConfigError, match="widht"):
        wnet(widht=32)
    with pytest.raises(ConfigError, match="additive skips"):
        WNetConfig(width=64, down_widths=(16, 32, 32), decoder_skips="additive").validate()
    WNetConfig(width=64, down_widths=(16, 32, 32)).validate()  # no skips: the encoder's first step adapts widths
    with pytest.raises(ConfigError, match="decoder_skips"):
        wnet(decoder_skips="concat")
    with pytest.raises(ConfigError):
        WNetConfig(hr_size=40).validate()
