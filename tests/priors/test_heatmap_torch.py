"""render_batch_torch against the numpy/cv2 renderer: grey, Canny, blur taps, synthetic and real faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from facesr.errors import ConfigError
from facesr.priors.boxes import pad_boxes
from facesr.priors.heatmap import PRESETS, get_params, render_batch, render_batch_torch
from facesr.priors.heatmap_torch import _gather, _index, _valid, canny_torch, gaussian_taps, grey_torch
from tests.priors.test_heatmap import SMALL, _aligned_celeba, _boxes, _image


def _canny(grey: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    x1, y1, x2, y2 = box
    h, w = y2 - y1, x2 - x1
    hh, ww = torch.tensor([h]), torch.tensor([w])
    rows = _index(torch.tensor([y1]), hh, h, 1, "replicate")
    cols = _index(torch.tensor([x1]), ww, w, 1, "replicate")
    patch = _gather(torch.from_numpy(grey[None]), torch.tensor([0]), rows, cols)
    return canny_torch(patch, _valid(hh, ww, h, w), 50, 150)[0].numpy()


def test_grey_is_bit_exact_with_cv2():
    x = np.random.default_rng(3).integers(0, 256, (4, 64, 64, 3), dtype=np.uint8)
    want = np.stack([cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) for i in x])
    np.testing.assert_array_equal(grey_torch(torch.from_numpy(x)).numpy(), want)


def test_gaussian_taps_match_cv2():
    for k, s in ((21, 2.0), (15, 3.0), (5, 1.5)):
        np.testing.assert_allclose(gaussian_taps(k, s), cv2.getGaussianKernel(k, s).ravel(), rtol=1e-12)


def test_canny_matches_cv2_on_textures():
    """Pixel-exact on random textured crops of many sizes, including 1-pixel-wide and border-touching ones."""
    rng = np.random.default_rng(0)
    img = _image(96, 96, seed=7)
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    grey = cv2.GaussianBlur(grey, (3, 3), 0.8)  # fewer saturated gradients: more weak/strong mixes
    for _ in range(60):
        x1, y1 = rng.integers(0, 90, 2)
        x2, y2 = x1 + rng.integers(1, 96 - x1 + 1), y1 + rng.integers(1, 96 - y1 + 1)
        box = (int(x1), int(y1), int(x2), int(y2))
        want = cv2.Canny(np.ascontiguousarray(grey[y1:y2, x1:x2]), 50, 150) > 0
        got = _canny(grey, box)
        assert np.array_equal(got, want), box


@pytest.mark.parametrize("preset", ["paper", "released"])
@pytest.mark.parametrize("combine", ["sum", "max"])
def test_matches_numpy_on_synthetic(preset, combine):
    imgs = np.stack([_image(seed=s) for s in range(3)])
    sets = [_boxes(), _boxes()[:2], np.zeros((0, 6), np.float32)]
    for p in (get_params(preset, combine=combine), get_params(preset, combine=combine, **SMALL)):
        want = render_batch(imgs, sets, p)
        got = render_batch_torch(imgs, pad_boxes(sets), p)
        assert got.dtype == torch.float32 and got.shape == (3, 36, 44)
        np.testing.assert_allclose(got.numpy(), want, atol=1e-5)
        assert not got[2].any()


def test_slices_of_boxes_do_not_change_the_result():
    imgs = np.stack([_image(seed=s) for s in range(4)])
    boxes = pad_boxes([_boxes()] * 4)
    a = render_batch_torch(imgs, boxes, "released")
    b = render_batch_torch(imgs, torch.from_numpy(boxes), "released", box_chunk=1)  # one box per slice
    torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_final_blur_matches_kornia():
    kornia = pytest.importorskip("kornia")
    from facesr.priors.heatmap_torch import _sep

    x = torch.rand(2, 40, 36)
    r, taps = 10, gaussian_taps(21, 2.0)
    padded = torch.nn.functional.pad(x[:, None], (r, r, r, r), mode="reflect")[:, 0]
    ours = _sep(_sep(padded, taps, -1), taps, -2)
    ref = kornia.filters.gaussian_blur2d(x[:, None], (21, 21), (2.0, 2.0), border_type="reflect")[:, 0]
    torch.testing.assert_close(ours, ref, atol=1e-6, rtol=0)


def test_input_errors():
    with pytest.raises(ConfigError):
        render_batch_torch(np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 1, 6), np.float32))
    with pytest.raises(ConfigError):
        render_batch_torch(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((3, 1, 6), np.float32))


@pytest.mark.shared
def test_real_faces_agree_with_numpy(celeba_root):
    """issue 14 item 1: on real CelebA faces with the landmark provider's boxes, mean |difference| ≤ 2e-3
    (measured on 200 faces: ~1e-8 mean, ≤ 6e-7 max; Canny identical on all 2,000 crops)."""
    landmarks_mod = pytest.importorskip("facesr.priors.landmarks")
    from facesr.priors.detectors import LandmarkDetector

    imgs = _aligned_celeba(celeba_root, 48)
    boxes = pad_boxes(LandmarkDetector().detect(imgs, landmarks_mod.DlibLandmarker()(list(imgs))), 16)
    for preset in PRESETS:
        want = render_batch(imgs, boxes, preset)
        got = render_batch_torch(imgs, boxes, preset).numpy()
        diff = np.abs(got - want)
        assert diff.mean() <= 2e-3 and diff.max() <= 1e-3, (preset, diff.mean(), diff.max())
    grey = np.stack([cv2.cvtColor(i, cv2.COLOR_RGB2GRAY) for i in imgs])
    mismatched = 0
    for g, bs in zip(grey, boxes, strict=True):
        for b in bs[~np.isnan(bs).any(axis=1)]:
            x1, y1, x2, y2 = (min(max(int(v), 0), 128) for v in b[:4])
            if x2 > x1 and y2 > y1:
                want = cv2.Canny(np.ascontiguousarray(g[y1:y2, x1:x2]), 50, 150) > 0
                mismatched += int((_canny(g, (x1, y1, x2, y2)) != want).sum())
    assert mismatched == 0
