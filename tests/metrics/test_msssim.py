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
