"""facesr.data.degrade: DIC bit-exactness, MATLAB bicubic against an independent dense formulation,
hand-derived MATLAB values, bilinear against torch, progressive halving, specs."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from PIL import Image

from facesr.data.degrade import (
    METHODS,
    MR_SETS,
    UFVNET_ANCHORS,
    LRSpec,
    degrade,
    imresize_matlab,
    mr_specs,
    progressive_sizes,
    resize,
    upscale_back,
)
from facesr.data.images import read_image
from facesr.errors import ConfigError


# ------------------------------------------------ independent MATLAB formulation (dense matrices)
def _cubic_scalar(x: float) -> float:
    a = abs(x)
    if a <= 1:
        return 1.5 * a**3 - 2.5 * a**2 + 1
    if a <= 2:
        return -0.5 * a**3 + 2.5 * a**2 - 4 * a + 2
    return 0.0


def _dense_weights(in_len: int, out_len: int) -> np.ndarray:
    """(out_len, in_len) matrix from imresize.m's contributions() rules, written out element by element
    in MATLAB's 1-based terms (a second, loop-based reading of the same rules)."""
    scale = out_len / in_len
    if scale < 1:
        kw = 4.0 / scale

        def kernel(x):
            return scale * _cubic_scalar(scale * x)
    else:
        kw = 4.0
        kernel = _cubic_scalar
    aux = list(range(1, in_len + 1)) + list(range(in_len, 0, -1))
    W = np.zeros((out_len, in_len))
    for x in range(1, out_len + 1):
        u = x / scale + 0.5 * (1 - 1 / scale)
        left = math.floor(u - kw / 2)
        taps = [(left + k, kernel(u - (left + k))) for k in range(math.ceil(kw) + 2)]
        total = sum(w for _, w in taps)
        for j, w in taps:
            src = aux[(j - 1) % len(aux)]  # MATLAB: aux(mod(j - 1, numel(aux)) + 1)
            W[x - 1, src - 1] += w / total
    return W


def _dense_resize(x: np.ndarray, h: int, w: int) -> np.ndarray:
    Wh, Ww = _dense_weights(x.shape[0], h), _dense_weights(x.shape[1], w)
    if x.ndim == 2:
        return Wh @ x @ Ww.T
    return np.stack([Wh @ x[..., c] @ Ww.T for c in range(x.shape[2])], axis=-1)


@pytest.mark.parametrize(
    "shape,out",
    [
        ((128, 128), (16, 16)),  # ×1/8
        ((128, 128, 3), (24, 40)),  # non-integer, different per axis
        ((37, 53, 3), (11, 29)),  # odd sizes, non-integer
        ((16, 16, 3), (128, 128)),  # upscaling ×8
        ((20, 13), (33, 50)),  # non-integer upscaling
        ((64, 48, 3), (64, 12)),  # one axis unchanged
        ((9, 7), (3, 2)),  # tiny: taps reach past both borders (mirror more than once)
    ],
)
def test_matlab_bicubic_matches_dense_formulation(shape, out):
    x = np.random.default_rng(sum(shape) + sum(out)).random(shape)
    got = imresize_matlab(x, out)
    want = _dense_resize(x, *out)
    assert got.shape == want.shape
    err = np.abs(got - want).max()
    assert err < 1e-6, err


def test_matlab_bicubic_hand_values():
    # 1×4 row [0 0 1 1] → 1×2 (scale 1/2, antialiased): the first output's weights on inputs 1..4 are
    # 0.546875, 0.3984375, 0.1015625, -0.046875 (from 0.5·cubic(0.5·d), d = ±0.5, ±1.5, ±2.5, ±3.5,
    # with the mirror padding folding taps -2..0 and 5 back onto 3, 2, 1 and 4).
    np.testing.assert_allclose(
        imresize_matlab(np.array([[0, 0, 1, 1.0]]), (1, 2)), [[0.0546875, 0.9453125]], atol=1e-12
    )
    np.testing.assert_allclose(
        imresize_matlab(np.array([[2.0, 3.0, 5.0, 7.0]]), (1, 2)),
        [[0.546875 * 2 + 0.3984375 * 3 + 0.1015625 * 5 - 0.046875 * 7,
          -0.046875 * 2 + 0.1015625 * 3 + 0.3984375 * 5 + 0.546875 * 7]],
        atol=1e-12,
    )
    # 1×2 [0 1] → 1×4 (×2, no antialiasing): u = 0.75, 1.25, 1.75, 2.25; first output
    # = (cubic(0.75) + cubic(0.25))·a1 + (cubic(1.75) + cubic(1.25))·a2 = 1.09375·a1 − 0.09375·a2.
    np.testing.assert_allclose(
        imresize_matlab(np.array([[0.0, 1.0]]), (1, 4)), [[-0.09375, 0.203125, 0.796875, 1.09375]], atol=1e-12
    )
    # constants stay constant; scale 1 is the identity
    c = np.full((10, 7, 3), 0.37)
    np.testing.assert_allclose(imresize_matlab(c, (3, 5)), 0.37, atol=1e-12)
    x = np.random.default_rng(0).random((10, 7))
    np.testing.assert_allclose(imresize_matlab(x, (10, 7)), x)


def test_matlab_uint8_rounds_after_each_pass_like_imresizemex():
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    h, w = 10, 24  # scale rows 0.25 < cols 0.8: rows first (MATLAB sorts the scales)
    Wh, Ww = _dense_weights(40, h), _dense_weights(30, w)
    first = np.clip(np.floor(np.einsum("oi,ijc->ojc", Wh, img.astype(float)) + 0.5), 0, 255)
    want = np.clip(np.floor(np.einsum("oj,ijc->ioc", Ww, first) + 0.5), 0, 255).astype(np.uint8)
    got = resize(img, (h, w), "bicubic-matlab")
    np.testing.assert_array_equal(got, want)
    # and within one level of the float path rounded once
    once = np.clip(np.floor(imresize_matlab(img, (h, w)) + 0.5), 0, 255)
    assert np.abs(got.astype(int) - once).max() <= 1


@pytest.mark.shared
def test_bicubic_pil_is_bit_exact_with_all_dic_lr_files(dic_root):
    t = time.perf_counter()
    hr_files = sorted((dic_root / "HR").glob("*.png"))
    assert len(hr_files) == 1000
    exact = 0
    for f in hr_files:
        lr = degrade(read_image(f), LRSpec("bicubic-pil", 16))
        exact += np.array_equal(lr, read_image(dic_root / "LR" / f.name))
    assert exact == 1000, f"{exact}/1000 bit-exact"
    assert time.perf_counter() - t < 30


def test_bicubic_pil_is_pillow():
    img = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for size in [(16, 16), (24, 40), (200, 130)]:
        want = np.asarray(Image.fromarray(img).resize((size[1], size[0]), Image.BICUBIC))
        np.testing.assert_array_equal(resize(img, size, "bicubic-pil"), want)


def test_bilinear_is_torch_antialiased_bilinear_within_one_level():
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    img = np.random.default_rng(2).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for s in (16, 24, 64, 100):
        ours = resize(img, (s, s), "bilinear").astype(int)
        t = torch.from_numpy(img).permute(2, 0, 1)[None].double()
        ref = F.interpolate(t, size=(s, s), mode="bilinear", antialias=True, align_corners=False)
        ref = ref.round().clamp(0, 255)[0].permute(1, 2, 0).numpy().astype(int)
        assert np.abs(ours - ref).max() <= 1


def test_bilinear_progressive_steps_and_shapes():
    assert progressive_sizes((128, 128), (16, 16)) == [(64, 64), (32, 32), (16, 16)]
    assert progressive_sizes((128, 128), (8, 8)) == [(64, 64), (32, 32), (16, 16), (8, 8)]
    assert progressive_sizes((128, 128), (24, 24)) == [(64, 64), (32, 32), (24, 24)]
    assert progressive_sizes((128, 128), (64, 64)) == [(64, 64)]
    assert progressive_sizes((128, 128), (100, 100)) == [(100, 100)]
    assert progressive_sizes((16, 16), (128, 128)) == [(128, 128)]
    assert progressive_sizes((128, 128), (128, 128)) == []
    img = np.random.default_rng(4).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for s in range(8, 129, 8):
        out = resize(img, (s, s), "bilinear-progressive")
        assert out.shape == (s, s, 3) and out.dtype == np.uint8
    # the ×8 recipe is literally three Pillow bilinear halvings
    want = Image.fromarray(img)
    for s in (64, 32, 16):
        want = want.resize((s, s), Image.BILINEAR)
    np.testing.assert_array_equal(resize(img, (16, 16), "bilinear-progressive"), np.asarray(want))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_any_size(method):
    img = np.random.default_rng(5).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    for size in [(8, 8), (16, 16), (24, 24), (40, 40), (64, 64), (12, 20), (130, 129)]:
        out = resize(img, size, method)
        assert out.shape == (*size, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    np.testing.assert_array_equal(resize(img, (128, 128), method), img)
    flat = np.full((128, 128, 3), 93, np.uint8)
    np.testing.assert_array_equal(resize(flat, (16, 16), method), 93)


def test_resize_rejects_bad_input():
    img = np.zeros((8, 8, 3), np.uint8)
    with pytest.raises(ConfigError, match="unknown resize method") as e:
        resize(img, (4, 4), "bicubic_pil")
    assert "bicubic-pil" in e.value.hint
    with pytest.raises(ConfigError):
        resize(img, (0, 4), "bilinear")
    with pytest.raises(ValueError):
        resize(img.astype(np.float32), (4, 4), "bilinear")


def test_lrspec():
    s = LRSpec.parse("bicubic-pil:16")
    assert s == LRSpec("bicubic-pil", 16) and s.name == "bicubic-pil_16" and str(s) == "bicubic-pil:16"
    assert LRSpec.parse(s.name) == s
    assert LRSpec.parse("bilinear-progressive:8").name == "bilinear-progressive_8"
    for bad in ("bicubic-pil", "bicubic-pil:x", "nearest:16", "bicubic-pil:0"):
        with pytest.raises(ConfigError):
            LRSpec.parse(bad)
    with pytest.raises(ConfigError):
        LRSpec("bilinear", 16.0)
    img = np.random.default_rng(6).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    assert degrade(img, "bicubic-matlab:32").shape == (32, 32, 3)
    lr = degrade(img, s)
    up = upscale_back(lr)
    np.testing.assert_array_equal(up, np.asarray(Image.fromarray(lr).resize((128, 128), Image.BICUBIC)))


def test_mr_sets_follow_ufvnet():
    assert MR_SETS["MR3"] == UFVNET_ANCHORS == (16, 32, 64)
    assert MR_SETS["MR7"] == tuple(128 * k // 16 for k in range(2, 9))
    assert MR_SETS["MR8"] == tuple(128 * k // 16 for k in range(1, 9))
    assert [s.name for s in mr_specs("MR3")] == ["bicubic-pil_16", "bicubic-pil_32", "bicubic-pil_64"]
    assert [s.size for s in mr_specs("MR8", "bicubic-matlab", hr_size=256)] == [16, 32, 48, 64, 80, 96, 112, 128]
    with pytest.raises(ConfigError):
        mr_specs("MR5")
