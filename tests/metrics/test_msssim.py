"""MS-SSIM: numpy vs torch, single-scale reduction to SSIM, window-size rule at 128 px, gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facesr.metrics.msssim import ms_ssim, ms_ssim_torch
from facesr.metrics.ssim import ssim_np


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:128, 0:128]
    base = 128 + 90 * np.sin(xx / 9.0) * np.cos(yy / 13.0)
    hr = np.clip(base[None, ..., None] + rng.normal(0, 4, (3, 128, 128, 3)), 0, 255).astype(np.uint8)
    sr = np.clip(hr + rng.normal(0, 15, hr.shape), 0, 255).astype(np.uint8)
    return sr, hr


def _t(a):
    return torch.from_numpy(a).permute(0, 3, 1, 2).double() / 255


def test_identical_is_one(pair):
    _, hr = pair
    np.testing.assert_allclose(ms_ssim(hr, hr), 1.0, atol=1e-12)


def test_numpy_matches_torch(pair):
    sr, hr = pair
    ref = ms_ssim(sr, hr)
    assert ref.shape == (3,) and np.all((ref > 0.3) & (ref < 1))
    np.testing.assert_allclose(ms_ssim_torch(_t(sr), _t(hr)).numpy(), ref, atol=1e-10)
    assert ms_ssim(sr[0], hr[0]) == pytest.approx(ref[0])


def test_single_scale_is_ssim(pair):
    sr, hr = pair
    a = np.moveaxis(sr.astype(float), -1, 1)
    b = np.moveaxis(hr.astype(float), -1, 1)
    want = ssim_np(a, b, size=7).mean(axis=1)
    np.testing.assert_allclose(ms_ssim(sr, hr, weights=(1.0,)), want, atol=1e-12)


def test_window_11_does_not_fit_128(pair):
    sr, hr = pair
    with pytest.raises(ValueError, match="at least 176 px"):
        ms_ssim(sr, hr, win_size=11)


def test_gradient_flows(pair):
    sr, hr = pair
    x = _t(sr).float().requires_grad_(True)
    (1 - ms_ssim_torch(x, _t(hr).float())).mean().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def _seed000_reference(sr: np.ndarray, hr: np.ndarray) -> float:
    """The notebook's torchmetrics call written out from the formulas, one image, plain loops over scales:
    [-1, 1] images, 11-tap Gaussian σ 1.5 (torchmetrics sizes Gaussians from σ), reflect padding, CS maps
    cropped to the valid part, the last scale's SSIM map not, C·H·W means, ReLU, weights WEIGHTS[:4]."""
    from numpy.lib.stride_tricks import sliding_window_view

    x = sr.astype(np.float64).transpose(2, 0, 1) / 127.5 - 1.0
    y = hr.astype(np.float64).transpose(2, 0, 1) / 127.5 - 1.0
    ax = np.arange(11) - 5.0
    g = np.exp(-(ax**2) / (2 * 1.5**2))
    g /= g.sum()
    k2d = np.outer(g, g)
    c1, c2 = (0.01 * 2.0) ** 2, (0.03 * 2.0) ** 2
    betas = (0.0448, 0.2856, 0.3001, 0.2363)
    value = 1.0
    for level, beta in enumerate(betas):
        def mean(z):
            zp = np.pad(z, ((0, 0), (5, 5), (5, 5)), mode="reflect")
            return np.einsum("chwij,ij->chw", sliding_window_view(zp, (11, 11), axis=(1, 2)), k2d)

        mx, my = mean(x), mean(y)
        vx = np.maximum(mean(x * x) - mx * mx, 0)
        vy = np.maximum(mean(y * y) - my * my, 0)
        cxy = mean(x * y) - mx * my
        cs = (2 * cxy + c2) / (vx + vy + c2)
        if level < len(betas) - 1:
            term = cs[:, 5:-5, 5:-5].mean()
            h, w = x.shape[1] // 2, x.shape[2] // 2
            x = x[:, : 2 * h, : 2 * w].reshape(3, h, 2, w, 2).mean(axis=(2, 4))
            y = y[:, : 2 * h, : 2 * w].reshape(3, h, 2, w, 2).mean(axis=(2, 4))
        else:
            term = ((2 * mx * my + c1) / (mx * mx + my * my + c1) * cs).mean()
        value *= max(term, 0.0) ** beta
    return value


def test_seed000_variant_matches_formula_reference(pair):
    from facesr.metrics.msssim import ms_ssim_seed000

    sr, hr = pair
    got = ms_ssim_seed000(sr, hr)
    ref = np.array([_seed000_reference(a, b) for a, b in zip(sr, hr)])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-9)
    assert ms_ssim_seed000(hr[0], hr[0]) == pytest.approx(1.0)
    # a different quantity from msssim[rgb] (scales, pooling, centring): the two must not be confused
    assert np.abs(got - ms_ssim(sr, hr)).max() > 2e-4


def test_seed000_variant_equals_torchmetrics(pair):
    tm = pytest.importorskip("torchmetrics.image.ssim")
    from facesr.metrics.msssim import ms_ssim_seed000

    sr, hr = pair
    metric = tm.MultiScaleStructuralSimilarityIndexMeasure(
        data_range=2.0, kernel_size=(7, 7), betas=(0.0448, 0.2856, 0.3001, 0.2363), normalize="relu")

    def t(a):  # the notebook's tensors: [-1, 1]
        return torch.from_numpy(a).permute(0, 3, 1, 2).double() / 127.5 - 1.0

    ours = ms_ssim_seed000(sr, hr)
    for i in range(len(sr)):
        metric.reset()
        assert float(metric(t(sr[i : i + 1]), t(hr[i : i + 1]))) == pytest.approx(ours[i], abs=1e-6)
    metric.reset()
    assert float(metric(t(sr), t(hr))) == pytest.approx(ours.mean(), abs=1e-6)  # batch value = image mean
