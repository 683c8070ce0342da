"""PSNR/SSIM protocols: the benchmark README's reference table over all 1,000 DIC test images, the torch
twins against numpy, skimage as an independent reference, hand-computed cases, and region PSNR."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from facesr.errors import ConfigError
from facesr.metrics.protocols import PROTOCOLS, get_protocol, psnr, psnr_ssim, psnr_ssim_torch, ssim
from facesr.metrics.regions import region_psnr

# shared/benchmarks/README.md: (GVTNet psnr, ssim), (PIL-bicubic psnr, ssim)
REFERENCE = {
    "dic": ((27.937, 0.8153), (23.580, 0.6269)),
    "basicsr": ((27.945, 0.8161), (23.582, 0.6276)),
    "sparnet": ((27.648, 0.8058), (23.549, 0.6357)),
    "sfmnet": ((27.937, 0.8199), (23.580, 0.6212)),
    "rgb": ((26.198, 0.7789), (22.141, 0.5955)),
}


def _load(folder, ids, upscale=False):
    out = []
    for i in ids:
        im = Image.open(folder / f"{i}.png").convert("RGB")
        if upscale:
            im = im.resize((128, 128), Image.BICUBIC)
        out.append(np.asarray(im))
    return np.stack(out)


@pytest.fixture(scope="module")
def dic_arrays(dic_root):
    ids = sorted(p.stem for p in (dic_root / "HR").glob("*.png"))
    assert len(ids) == 1000
    return _load(dic_root / "HR", ids), _load(dic_root / "GVTNet_x8", ids), _load(dic_root / "LR", ids, upscale=True)


@pytest.fixture(scope="module")
def smooth_pair():
    """Small deterministic uint8 'images' with structure (no shared data needed)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    base = (127 + 100 * np.sin(xx / 5.0)[None, ..., None] * np.cos(yy / 7.0)[None, ..., None]
            + rng.normal(0, 3, (4, 48, 48, 3)))
    hr = np.clip(base, 0, 255).astype(np.uint8)
    sr = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
    return sr, hr


@pytest.mark.shared
def test_reference_table_all_protocols(dic_arrays):
    hr, gvt, bic = dic_arrays
    for name, ((p_g, s_g), (p_b, s_b)) in REFERENCE.items():
        g = psnr_ssim(gvt, hr, name)
        b = psnr_ssim(bic, hr, name)
        assert g.psnr.shape == (1000,) and g.ssim.shape == (1000,)
        assert abs(g.psnr.mean() - p_g) <= 0.001, (name, g.psnr.mean())
        assert abs(g.ssim.mean() - s_g) <= 0.0005, (name, g.ssim.mean())
        assert abs(b.psnr.mean() - p_b) <= 0.001, (name, b.psnr.mean())
        assert abs(b.ssim.mean() - s_b) <= 0.0005, (name, b.ssim.mean())


@pytest.mark.shared
def test_dic_is_not_the_overflow_bug(dic_arrays):
    """DIC's released code saturates uint8 before SSIM (0.8158); the intent gives 0.8153."""
    hr, gvt, _ = dic_arrays
    assert abs(psnr_ssim(gvt, hr, "dic").ssim.mean() - 0.8158) > 0.0003


@pytest.mark.parametrize("name", PROTOCOLS.names())
def test_torch_matches_numpy(name, smooth_pair):
    sr, hr = smooth_pair
    ref = psnr_ssim(sr, hr, name)
    to_t = lambda a: torch.from_numpy(a).permute(0, 3, 1, 2)  # noqa: E731
    for a, b in ((to_t(sr), to_t(hr)), (to_t(sr).double() / 255, to_t(hr).double() / 255),
                 (to_t(sr).float() / 255, to_t(hr).float() / 255)):
        got = psnr_ssim_torch(a, b, name)
        np.testing.assert_allclose(got[f"psnr[{name}]"].numpy(), ref.psnr, rtol=0, atol=1e-9)
        np.testing.assert_allclose(got[f"ssim[{name}]"].numpy(), ref.ssim, rtol=0, atol=1e-9)


def test_skimage_is_an_independent_reference(smooth_pair):
    from skimage.metrics import structural_similarity

    sr, hr = smooth_pair
    y = lambda a: 16 + (65.481 * a[..., 0] + 128.553 * a[..., 1] + 24.966 * a[..., 2]) / 255.0  # noqa: E731
    for i in range(len(sr)):
        a, b = np.floor(y(sr[i].astype(float))), np.floor(y(hr[i].astype(float)))
        want = structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
        assert ssim(sr[i], hr[i], "sparnet") == pytest.approx(want, abs=1e-12)
        a = np.floor(y(sr[i, 8:-8, 8:-8].astype(float)) + 0.5).astype(np.uint8)  # MATLAB round
        b = np.floor(y(hr[i, 8:-8, 8:-8].astype(float)) + 0.5).astype(np.uint8)
        assert ssim(sr[i], hr[i], "sfmnet") == pytest.approx(structural_similarity(a, b), abs=1e-12)
        want = structural_similarity(sr[i], hr[i], channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                     use_sample_covariance=False, data_range=255)
        assert ssim(sr[i], hr[i], "rgb") == pytest.approx(want, abs=1e-12)


def test_hand_computed_psnr():
    hr = np.full((32, 32, 3), 100, np.uint8)
    sr = hr + np.uint8(5)
    assert psnr(sr, hr, "rgb") == pytest.approx(10 * math.log10(255**2 / 25))
    # Y of a grey offset of 5: 5 * (65.481 + 128.553 + 24.966) / 255 = 4.2941... (float) → 4 or 5 after rounding
    dy = 5 * 219.0 / 255
    assert psnr(sr, hr, "basicsr") == pytest.approx(10 * math.log10(255**2 / dy**2))
    assert psnr(hr, hr, "dic") == math.inf
    assert ssim(hr, hr, "dic") == pytest.approx(1.0)


def test_crop_is_applied():
    """A difference only in the 8-px border is invisible to dic/basicsr/sfmnet, visible to sparnet/rgb."""
    hr = np.full((40, 40, 3), 120, np.uint8)
    sr = hr.copy()
    sr[:4] = 0
    for name in ("dic", "basicsr", "sfmnet"):
        assert psnr(sr, hr, name) == math.inf
    for name in ("sparnet", "rgb"):
        assert psnr(sr, hr, name) < 30


def test_names_and_errors(smooth_pair):
    sr, hr = smooth_pair
    assert set(psnr_ssim(sr, hr, "sparnet").columns()) == {"psnr[sparnet]", "ssim[sparnet]"}
    assert psnr_ssim(sr[0], hr[0]).psnr.shape == (1,)
    with pytest.raises(ConfigError, match="unknown evaluation protocol") as err:
        get_protocol("dik")
    assert "dic" in err.value.hint
    with pytest.raises(ValueError, match="uint8"):
        psnr(sr.astype(np.float32), hr.astype(np.float32))
    with pytest.raises(ValueError, match="shape"):
        psnr_ssim(sr[:, :40], hr)


def test_region_psnr_hand_computed():
    hr = np.full((1, 16, 16, 3), 100, np.uint8)
    sr = hr.copy()
    classes = np.zeros((1, 16, 16), np.int64)
    classes[0, 2:4, 2:6] = 3  # eyes: 8 px
    classes[0, 10:12, 4:8] = 5  # mouth: 8 px, error only on half of it
    sr[0, 2:4, 2:6] = 110
    sr[0, 10, 4:8] = 90
    out = region_psnr(sr, hr, classes, regions=("eyes", "mouth", "nose"), protocol="rgb")
    assert out["psnr[rgb,eyes]"][0] == pytest.approx(10 * math.log10(255**2 / 100))
    assert out["psnr[rgb,mouth]"][0] == pytest.approx(10 * math.log10(255**2 / 50))
    assert np.isnan(out["psnr[rgb,nose]"][0])  # no nose in the map
    dic = region_psnr(sr, hr, classes, regions=("eyes",))  # Y, no border crop for regions
    dy = np.floor(16 + 110 * 219 / 255 + 0.5) - np.floor(16 + 100 * 219 / 255 + 0.5)
    assert dic["psnr[dic,eyes]"][0] == pytest.approx(10 * math.log10(255**2 / dy**2))
