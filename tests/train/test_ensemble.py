"""Self-ensemble (GVTNet+): eight transforms inverted and averaged; a flip/rot90-equivariant model is unchanged,
any other model gets the mean of its eight inverted outputs; the Predictor's --self-ensemble path uses it."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from facesr.train.ensemble import TRANSFORMS, invert, self_ensemble, transform


def _d4_symmetric(w: torch.Tensor) -> torch.Tensor:
    """A conv kernel averaged over the 8 symmetries of the square: conv with it commutes with flips/rot90."""
    outs = [torch.rot90(w, k, dims=(-2, -1)) for k in range(4)]
    outs += [o.flip(-1) for o in outs]
    return torch.stack(outs).mean(0)


class _Equivariant(nn.Module):
    """Nearest ×4 upsampling, then two 3×3 convs with D4-symmetric kernels (zero padding is symmetric too)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.w1 = _d4_symmetric(torch.randn(8, 3, 3, 3, generator=g))
        self.w2 = _d4_symmetric(torch.randn(3, 8, 3, 3, generator=g))

    def forward(self, x):
        x = F.interpolate(x, scale_factor=4, mode="nearest")
        return F.conv2d(F.relu(F.conv2d(x, self.w1, padding=1)), self.w2, padding=1)


def _lopsided(x):
    """Not equivariant: a fixed gradient ramp added, a horizontal shift, ×4 nearest."""
    h, w = x.shape[-2:]
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w)
    y = torch.roll(x, shifts=1, dims=-1) + 0.3 * ramp * x.mean(1, keepdim=True) + 0.1 * x[..., :1, :]
    return F.interpolate(y, scale_factor=4, mode="nearest")


@pytest.fixture(scope="module")
def lr():
    return torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(1))


def test_transforms_are_the_eight_distinct_symmetries_and_invert(lr):
    images = [transform(lr, k, f) for k, f in TRANSFORMS]
    assert len(TRANSFORMS) == 8 and len({tuple(t.flatten().tolist()) for t in images}) == 8
    for (k, f), t in zip(TRANSFORMS, images):
        torch.testing.assert_close(invert(t, k, f), lr, rtol=0, atol=0)


def test_equivariant_model_is_unchanged(lr):
    model = _Equivariant()
    plain = model(lr)
    for k, f in TRANSFORMS:  # the premise: the stand-in really is equivariant
        torch.testing.assert_close(model(transform(lr, k, f)), transform(plain, k, f), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(self_ensemble(model, lr), plain, rtol=1e-5, atol=1e-5)


def test_any_model_gets_the_mean_of_the_eight(lr):
    """Reference written out with torch.flip/transpose (not the module's helpers)."""
    def t(x, i):  # rot90 counter-clockwise k times == transpose then flip rows, applied k times
        k, f = divmod(i, 2)
        for _ in range(k):
            x = x.transpose(-2, -1).flip(-2)
        return x.flip(-1) if f else x

    def t_inv(y, i):
        k, f = divmod(i, 2)
        y = y.flip(-1) if f else y
        for _ in range(k):
            y = y.flip(-2).transpose(-2, -1)
        return y

    want = torch.stack([t_inv(_lopsided(t(lr, i)), i) for i in range(8)]).mean(0)
    got = self_ensemble(_lopsided, lr)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
    assert (got - _lopsided(lr)).abs().max() > 1e-2  # it really is a different output here


def test_predictor_self_ensemble(lr):
    from facesr import models
    from facesr.models import sr_of
    from facesr.train.config import load_config
    from facesr.train.inference import Predictor
    from tests.train._stores import TINY

    cfg = load_config("seed000-bicubic", TINY)
    torch.manual_seed(0)
    net = models.build(cfg.model.name, **cfg.model.args).eval()
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    plain = Predictor(net, cfg, None, torch.device("cpu"), "model", {})
    plus = Predictor(net, cfg, None, torch.device("cpu"), "model", {}, self_ensemble=True)
    with torch.no_grad():
        want = self_ensemble(lambda t: sr_of(net(t)).float(), x).clamp(0, 1)
    torch.testing.assert_close(plus.predict(x), want)
    assert (plus.predict(x) - plain.predict(x)).abs().max() > 0
    assert "self-ensemble" in repr(plus)
