"""facesr.data.crop: the seed-000 aligned crop against torchvision itself, landmark crops and their
matrices, and landmark crops of real in-the-wild Helen photos."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from PIL import Image

from facesr.data.crop import (
    CROPS,
    TEMPLATE_128,
    aligned_crop,
    aligned_transform,
    crop_record,
    crop_transform,
    landmark_crop,
    similarity_lstsq,
    template,
    transform_points,
    warp,
)
from facesr.data.images import read_image
from facesr.errors import ConfigError, DatasetError


def _torchvision_crop(img: np.ndarray, crop=178, size=128) -> np.ndarray:
    T = pytest.importorskip("torchvision.transforms")
    return np.asarray(T.Compose([T.CenterCrop(crop), T.Resize(size)])(Image.fromarray(img)))


def _blob(shape, centre, sigma=3.0):
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w]
    g = np.exp(-((xx - centre[0]) ** 2 + (yy - centre[1]) ** 2) / (2 * sigma**2))
    return np.repeat((g * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def _centroid(img):
    g = img[..., 0].astype(np.float64)
    yy, xx = np.mgrid[0 : g.shape[0], 0 : g.shape[1]]
    return np.array([(g * xx).sum() / g.sum(), (g * yy).sum() / g.sum()])


def test_registry():
    assert {"aligned", "landmarks"} <= set(CROPS.names())


@pytest.mark.parametrize("shape", [(218, 178), (178, 178), (300, 301), (177, 250), (100, 150), (219, 179)])
def test_aligned_crop_is_torchvision_bit_for_bit(shape):
    img = np.random.default_rng(sum(shape)).integers(0, 256, (*shape, 3), dtype=np.uint8)
    np.testing.assert_array_equal(aligned_crop(img), _torchvision_crop(img))
    np.testing.assert_array_equal(aligned_crop(img, size=64, crop=150), _torchvision_crop(img, 150, 64))


@pytest.mark.shared
def test_aligned_crop_on_real_celeba_is_torchvision(celeba_root):
    files = sorted((celeba_root / "img_align_celeba").glob("*.jpg"))[:50]
    for f in files:
        img = read_image(f)
        assert img.shape == (218, 178, 3)
        np.testing.assert_array_equal(aligned_crop(img), _torchvision_crop(img))


def test_aligned_transform_follows_the_pixels():
    # a blob at a known place in a 178×218 image lands where the matrix says
    p = np.array([70.0, 120.0])
    img = _blob((218, 178), p)
    out = aligned_crop(img)
    m = aligned_transform(img.shape)
    np.testing.assert_allclose(_centroid(out), transform_points(p, m), atol=0.15)
    crop, m2 = crop_record(img, "aligned")
    np.testing.assert_array_equal(crop, out)
    np.testing.assert_allclose(m2, m)
    # the crop's corners: source pixel (0, 20) edge → crop edge
    np.testing.assert_allclose(transform_points([[-0.5, 19.5], [177.5, 197.5]], m), [[-0.5, -0.5], [127.5, 127.5]])


def _face_points(rng, angle=0.2, scale=2.3, shift=(140.0, 90.0)):
    """Five points of a face: the template under a known similarity, plus a little noise."""
    c, s = np.cos(angle) * scale, np.sin(angle) * scale
    a = np.array([[c, -s], [s, c]])
    return TEMPLATE_128 @ a.T + np.array(shift), a


def test_template_crop_inverts_a_known_similarity():
    rng = np.random.default_rng(0)
    pts, a = _face_points(rng)
    m = crop_transform(pts, size=128, mode="template")
    np.testing.assert_allclose(transform_points(pts, m), TEMPLATE_128, atol=1e-3)
    np.testing.assert_allclose(m[:, :2], np.linalg.inv(a), atol=1e-5)
    # other sizes use the scaled template
    m64 = crop_transform(pts, size=64)
    np.testing.assert_allclose(transform_points(pts, m64), template(64), atol=1e-3)


def test_opencv_fit_is_the_least_squares_similarity():
    rng = np.random.default_rng(1)
    for _ in range(10):
        pts, _ = _face_points(rng, rng.uniform(-0.6, 0.6), rng.uniform(0.5, 4), rng.uniform(50, 300, 2))
        pts = pts + rng.normal(0, 2.0, pts.shape)
        np.testing.assert_allclose(
            crop_transform(pts), similarity_lstsq(pts, template(128)), atol=2e-4, rtol=1e-4
        )


def test_68_points_use_their_5_point_summary():
    from facesr.priors.landmarks import five_points

    rng = np.random.default_rng(2)
    p68 = rng.uniform(100, 200, (68, 2))
    np.testing.assert_allclose(crop_transform(p68), crop_transform(five_points(p68)), atol=1e-6)


def test_dic_box_crop():
    pts = np.array([[100.0, 80.0], [160.0, 90.0], [130.0, 180.0], [110.0, 150.0], [150.0, 150.0]])
    m = crop_transform(pts, size=128, mode="dic-box", expand=0.3)
    assert m[0, 1] == 0 and m[1, 0] == 0 and m[0, 0] == m[1, 1]
    side = 100 * 1.3  # the box is 60 × 100 → square on its longer side, 30 % larger
    np.testing.assert_allclose(m[0, 0], 128 / side)
    # the box centre goes to the crop centre
    np.testing.assert_allclose(transform_points([[130.0, 130.0]], m), [[63.5, 63.5]])
    out = landmark_crop(np.full((300, 300, 3), 200, np.uint8), pts, mode="dic-box")
    assert out.shape == (128, 128, 3) and (out == 200).all()
    with pytest.raises(ConfigError):
        crop_transform(pts, mode="box")


def test_warp_follows_the_pixels_when_shrinking_rotating_and_at_borders():
    p = np.array([250.0, 310.0])
    img = _blob((480, 400), p, sigma=8.0)
    rng = np.random.default_rng(3)
    for angle, scale in [(0.0, 0.25), (0.3, 0.4), (-0.5, 1.7)]:
        c, s = np.cos(angle) * scale, np.sin(angle) * scale
        m = np.array([[c, -s, 0.0], [s, c, 0.0]])
        m[:, 2] = np.array([64.0, 64.0]) - m[:, :2] @ (p + rng.uniform(-5, 5, 2))
        out = warp(img, m, 128)
        np.testing.assert_allclose(_centroid(out), transform_points(p, m), atol=0.35)
    # antialiasing: a fine checkerboard shrunk ×1/4 is near-flat grey, not aliased
    checker = ((np.indices((400, 400)).sum(0) % 2) * 255).astype(np.uint8)
    checker = np.repeat(checker[..., None], 3, axis=2)
    out = warp(checker, np.array([[0.25, 0, 0], [0, 0.25, 0]]), 64)
    assert np.abs(out[5:-5, 5:-5].astype(int) - 127).max() <= 3
    # outside the photo: black or replicated edge
    small = np.full((20, 20, 3), 90, np.uint8)
    m = np.array([[1.0, 0, 50], [0, 1.0, 50]])
    assert warp(small, m, 128)[0, 0].tolist() == [0, 0, 0]
    assert warp(small, m, 128, border="replicate")[0, 0].tolist() == [90, 90, 90]


def test_crop_record_errors():
    img = np.zeros((64, 64, 3), np.uint8)
    with pytest.raises(DatasetError, match="no face found"):
        crop_record(img, "landmarks", landmarks=np.full((68, 2), np.nan))
    with pytest.raises(DatasetError, match="no face found"):
        crop_record(img, "landmarks", landmarks=np.zeros((5, 2)))  # degenerate
    with pytest.raises(ConfigError):
        crop_record(img, "alignd")
    with pytest.raises(ConfigError, match="unknown option"):
        crop_record(img, "aligned", mode="template")
    with pytest.raises(ValueError):
        crop_record(img, "landmarks", landmarks=np.zeros((7, 2)))


def test_crop_record_resize():
    img = np.random.default_rng(4).integers(0, 256, (256, 300, 3), dtype=np.uint8)
    crop, m = crop_record(img, "resize", size=128)
    assert crop.shape == (128, 128, 3)
    np.testing.assert_allclose(transform_points([[21.5, -0.5]], m), [[-0.5, -0.5]])
    same, _ = crop_record(img[:128, :128], "resize")
    np.testing.assert_array_equal(same, img[:128, :128])


def test_crop_record_detects_a_real_face(astronaut_face):
    pytest.importorskip("dlib")
    crop, m = crop_record(astronaut_face, "landmarks")
    assert crop.shape == (128, 128, 3)
    assert abs(np.linalg.det(m[:, :2])) > 0
    blank = np.full((128, 128, 3), 128, np.uint8)
    with pytest.raises(DatasetError, match="no face found"):
        crop_record(blank, "landmarks")


@pytest.mark.shared
def test_landmark_crop_of_real_helen_photos(helen_root):
    pytest.importorskip("dlib")
    from facesr.priors.landmarks import DlibLandmarker, five_points

    lm = DlibLandmarker(upsample=1, fallback=None, progressive=True)
    files = sorted(helen_root.glob("*.jpg"))
    assert len(files) == 62
    ok = 0
    t = time.process_time()
    for f in files:
        img = read_image(f)
        pts = lm([img])[0]
        try:
            crop, m = crop_record(img, "landmarks", landmarks=pts)
        except DatasetError:
            continue
        ok += 1
        assert crop.shape == (128, 128, 3)
        # the face's 5 points land near the template, inside the crop
        mapped = transform_points(five_points(pts), m)
        assert np.all((mapped > 0) & (mapped < 127))
        assert np.abs(mapped - TEMPLATE_128).max() < 20
        # dic-box mode on the same points also works
        assert landmark_crop(img, pts, mode="dic-box").shape == (128, 128, 3)
    rate = ok / len(files)
    cpu_ms = 1e3 * (time.process_time() - t) / len(files)
    print(f"helen landmark-crop success {ok}/{len(files)} = {rate:.1%}, {cpu_ms:.0f} ms CPU/img")
    assert rate >= 0.95


def test_warp_matches_plain_warpaffine_without_shrinking():
    img = np.random.default_rng(5).integers(0, 256, (100, 90, 3), dtype=np.uint8)
    m = np.array([[1.2, -0.1, 3.0], [0.1, 1.2, -4.0]])
    np.testing.assert_array_equal(warp(img, m, 64), cv2.warpAffine(img, m, (64, 64), flags=cv2.INTER_LINEAR))
