"""Heatmaps from part boxes: a slow per-pixel reference, ranges, presets, and a real-face check."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from facesr.errors import ConfigError
from facesr.priors.boxes import CLASS_ID, PART_CLASSES, make_boxes, pad_boxes, unpad_boxes
from facesr.priors.heatmap import PRESETS, HeatmapParams, get_params, render_batch, render_heatmap

# ------------------------------------------------------------------------------ slow reference


def _reflect101(i: int, n: int) -> int:
    if n == 1:
        return 0
    while i < 0 or i >= n:
        i = -i if i < 0 else 2 * (n - 1) - i
    return i


def _conv_ref(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Per-pixel 2-D correlation with a reflect-101 border (OpenCV's default)."""
    h, w = a.shape
    r = k.shape[0] // 2
    out = np.zeros((h, w), np.float64)
    for y in range(h):
        rows = [_reflect101(y + dy, h) for dy in range(-r, r + 1)]
        for x in range(w):
            cols = [_reflect101(x + dx, w) for dx in range(-r, r + 1)]
            out[y, x] = float((a[np.ix_(rows, cols)] * k).sum())
    return out


def _gauss_kernel(ksize: int, sigma: float) -> np.ndarray:
    g = np.array([math.exp(-((i - (ksize - 1) / 2) ** 2) / (2 * sigma**2)) for i in range(ksize)])
    g /= g.sum()
    return np.outer(g, g)


SCHARR_X = np.array([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]], np.float64)


def _edges_ref(crop: np.ndarray, p: HeatmapParams) -> np.ndarray:
    a = crop.astype(np.float64)
    gx, gy = _conv_ref(a, SCHARR_X), _conv_ref(a, SCHARR_X.T)
    sch = np.sqrt(gx**2 + gy**2)
    if sch.max() > 0:
        sch = sch / sch.max()
    can = cv2.Canny(np.ascontiguousarray(crop), p.canny_low, p.canny_high) / 255.0  # no simple reference
    e = p.scharr_weight * sch + p.canny_weight * can
    return e / e.max() if e.max() > 0 else e


def _fade_ref(kind: str, x: float, y: float, p: HeatmapParams) -> float:
    d2 = x * x + y * y
    if kind == "gaussian":
        return math.exp(-p.gaussian_alpha * d2)
    if kind == "inverse":
        return p.inverse_floor + (1 - p.inverse_floor) * (1 - math.exp(-d2 / (2 * p.inverse_sigma**2)))
    return 1.0


def render_ref(image: np.ndarray, boxes: np.ndarray, p: HeatmapParams) -> np.ndarray:
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    H, W = grey.shape
    acc = np.zeros((H, W), np.float64)
    used = 0
    for row in boxes:
        if np.isnan(row).any() or row[4] < p.min_score:
            continue
        cls = int(row[5])
        x1, y1, x2, y2 = (min(max(int(v), 0), lim) for v, lim in zip(row[:4], (W, H, W, H), strict=True))
        bw, bh = x2 - x1, y2 - y1
        if bw < p.min_box_px or bh < p.min_box_px:
            continue
        e = _edges_ref(grey[y1:y2, x1:x2], p)
        if p.blur_stage == "box":
            e = _conv_ref(e, _gauss_kernel(p.blur_ksize, p.blur_sigma))
        pad = max(p.local_pad_min, min(bw, bh) // p.local_pad_div) if p.local_pad else 0
        wx1, wy1, wx2, wy2 = max(0, x1 - pad), max(0, y1 - pad), min(W, x2 + pad), min(H, y2 + pad)
        cx, cy = wx1 + (wx2 - wx1) // 2, wy1 + (wy2 - wy1) // 2  # the notebook: the window's integer centre
        maxd = min(wx2 - wx1, wy2 - wy1) / 2
        weight = p.class_weights[cls] * (p.head_scale if PART_CLASSES[cls] == "head" else 1.0)
        for yy in range(wy1, wy2):
            for xx in range(wx1, wx2):
                v = 0.0
                if x1 <= xx < x2 and y1 <= yy < y2:
                    u = -1 + 2 * (xx - x1) / (bw - 1) if bw > 1 else -1.0
                    t = -1 + 2 * (yy - y1) / (bh - 1) if bh > 1 else -1.0
                    v = e[yy - y1, xx - x1] * _fade_ref(p.fades[cls], u, t, p)
                if p.radial_fade:
                    r = math.hypot(xx - cx, yy - cy) / maxd
                    v *= min(max(math.exp(-p.radial_alpha * r * r), p.radial_min), p.radial_max)
                v *= weight
                acc[yy, xx] = acc[yy, xx] + v if p.combine == "sum" else max(acc[yy, xx], v)
        used += 1
    if used == 0:
        return np.zeros((H, W), np.float32)
    if p.blur_stage == "final":
        acc = _conv_ref(acc, _gauss_kernel(p.blur_ksize, p.blur_sigma))
    lo, hi = acc.min(), acc.max()
    return ((acc - lo) / (hi - lo)).astype(np.float32) if hi > lo else np.zeros((H, W), np.float32)


# ------------------------------------------------------------------------------ fixtures


def _image(h: int = 36, w: int = 44, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 3.0) * np.cos(yy / 4.0)
    img = np.clip(base[..., None] + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    img[10:16, 8:20] = 30  # a dark blob with strong edges
    return img


def _boxes() -> np.ndarray:
    return np.concatenate(
        [
            make_boxes([[5.7, 7.2, 22.9, 18.5]], "eye"),
            make_boxes([[20, 12, 38, 30]], "nosetip", score=0.5),
            make_boxes([[-4, -3, 30, 34]], "face"),  # partly outside: clipped
            make_boxes([[2, 1, 50, 40]], "head"),
            make_boxes([[30, 30, 31, 33]], "mouth"),  # 1 px wide: skipped
            np.full((1, 6), np.nan, np.float32),  # padding row: ignored
        ]
    )


SMALL = {"blur_ksize": 5, "blur_sigma": 1.5}


@pytest.mark.parametrize("preset", ["paper", "released"])
@pytest.mark.parametrize("combine", ["sum", "max"])
def test_matches_slow_reference(preset, combine):
    p = get_params(preset, combine=combine, **SMALL)
    img, boxes = _image(), _boxes()
    got = render_heatmap(img, boxes, p)
    want = render_ref(img, boxes, p)
    assert got.dtype == np.float32 and got.shape == img.shape[:2]
    np.testing.assert_allclose(got, want, atol=2e-4)


def test_matches_reference_with_full_size_kernels():
    img, boxes = _image(28, 30, seed=3), _boxes()
    for name in ("paper", "released"):
        np.testing.assert_allclose(render_heatmap(img, boxes, PRESETS[name]), render_ref(img, boxes, PRESETS[name]),
                                   atol=2e-4)


@pytest.mark.parametrize("preset", ["paper", "released"])
def test_range_and_normalisation(preset):
    h = render_heatmap(_image(seed=1), _boxes(), preset)
    assert h.min() == 0.0 and h.max() == pytest.approx(1.0)
    assert np.isfinite(h).all()


def test_flat_when_no_boxes():
    img = _image()
    for boxes in (np.zeros((0, 6), np.float32), np.full((3, 6), np.nan, np.float32)):
        for preset in PRESETS:
            h = render_heatmap(img, boxes, PRESETS[preset])
            assert h.shape == img.shape[:2] and not h.any()
    # boxes on a texture-free image have no edges → flat → zeros, never NaN
    flat = np.full((32, 32, 3), 77, np.uint8)
    assert not render_heatmap(flat, make_boxes([[4, 4, 20, 20]], "eye")).any()


def test_max_near_heaviest_box():
    # the same texture under an eye box (4.5) and a nose-tip box (3.0): the eye's copy wins
    img = np.full((48, 96, 3), 120, np.uint8)
    patch = _image(20, 20, seed=5)
    img[10:30, 10:30] = patch
    img[10:30, 60:80] = patch
    boxes = np.concatenate([make_boxes([[10, 10, 30, 30]], "nosetip"), make_boxes([[60, 10, 80, 30]], "eye")])
    for preset in PRESETS:
        h = render_heatmap(img, boxes, preset)
        y, x = np.unravel_index(np.argmax(h), h.shape)
        assert 60 <= x < 80 and 10 <= y < 30, preset
        assert h[10:30, 60:80].max() > 1.3 * h[10:30, 10:30].max()


def test_presets_differ():
    paper, rel = PRESETS["paper"], PRESETS["released"]
    assert (paper.blur_ksize, paper.blur_sigma, paper.combine) == (15, 3.0, "sum")
    assert (rel.blur_ksize, rel.blur_sigma, rel.combine) == (21, 2.0, "max")
    w = dict(zip(PART_CLASSES, paper.class_weights, strict=True))
    assert w == {"eye": 4.5, "eyebrows": 4.0, "nose": 4.0, "nosetip": 3.0, "mouth": 4.0, "chin": 4.0, "ear": 4.0,
                 "face": 4.0, "head": 2.0}
    assert rel.weight(CLASS_ID["head"]) == pytest.approx(0.6) and paper.weight(CLASS_ID["head"]) == 2.0
    img = _image(seed=2)
    boxes = make_boxes([[8, 8, 24, 20]], "eye")
    hp, hr = render_heatmap(img, boxes, paper), render_heatmap(img, boxes, rel)
    assert not np.allclose(hp, hr)
    outside = np.ones(hp.shape, bool)
    outside[8:20, 8:24] = False
    assert not hp[outside].any()  # paper: blurred inside the box only
    assert hr[outside].max() > 0.05  # released: the final blur spreads past the box


def test_fades():
    from facesr.priors.heatmap import fade

    p = PRESETS["paper"]
    g, inv = fade(21, 21, "gaussian", p), fade(21, 21, "inverse", p)
    assert g[10, 10] == pytest.approx(1.0) and g[0, 0] == pytest.approx(math.exp(-4))
    assert inv[10, 10] == pytest.approx(0.0) and inv[0, 0] == pytest.approx(1 - math.exp(-2 / 0.72))
    face = fade(21, 21, "inverse", PRESETS["released"])
    assert face[10, 10] == pytest.approx(0.3)


def test_sum_equals_max_for_disjoint_boxes_without_final_blur():
    img = _image(seed=4)
    boxes = np.concatenate([make_boxes([[2, 2, 18, 14]], "eye"), make_boxes([[22, 18, 40, 34]], "mouth")])
    p = PRESETS["paper"]
    np.testing.assert_allclose(render_heatmap(img, boxes, p), render_heatmap(img, boxes, p.replace(combine="max")))


def test_batch_and_padding():
    imgs = np.stack([_image(seed=s) for s in range(3)])
    sets = [_boxes()[:2], np.zeros((0, 6), np.float32), _boxes()[2:4]]
    a = render_batch(imgs, sets, "released")
    b = render_batch(imgs, pad_boxes(sets), "released")
    assert a.shape == (3, 36, 44) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    for i in range(3):
        np.testing.assert_array_equal(a[i], render_heatmap(imgs[i], sets[i], "released"))
    assert not a[1].any()


def test_pad_unpad_roundtrip():
    sets = [_boxes()[:3], np.zeros((0, 6), np.float32), _boxes()[2:4]]
    padded = pad_boxes(sets, 5)
    assert padded.shape == (3, 5, 6) and np.isnan(padded[1]).all()
    back = unpad_boxes(padded)
    for s, b in zip(sets, back, strict=True):
        np.testing.assert_array_equal(s, b)
    top = pad_boxes([_boxes()[:3]], 1)  # keeps the highest score
    assert top.shape == (1, 1, 6) and top[0, 0, 4] == 1.0


def test_params_validation_and_json():
    p = PRESETS["released"]
    d = p.to_dict()
    assert d["class_weights"]["head"] == 1.2 and d["fades"]["face"] == "inverse"
    assert HeatmapParams.from_dict(d) == p
    with pytest.raises(ConfigError, match="blur_sigm") as info:
        p.replace(blur_sigm=2)
    assert "blur_sigma" in info.value.hint
    with pytest.raises(ConfigError):
        HeatmapParams(combine="mean")
    with pytest.raises(ConfigError):
        HeatmapParams(blur_ksize=4)
    with pytest.raises(ConfigError):
        get_params("papr")
    with pytest.raises(ConfigError):
        render_heatmap(_image(), np.zeros((2, 5), np.float32))


def test_overlays():
    from facesr.priors.overlay import draw_boxes, overlay_heatmap, overlay_parsing

    img, boxes = _image(), _boxes()
    h = render_heatmap(img, boxes)
    a = overlay_heatmap(img, h)
    b = overlay_parsing(img, (np.arange(36 * 44).reshape(36, 44) % 6).astype(np.uint8))
    c = draw_boxes(img, boxes)
    for o in (a, b, c):
        assert o.shape == img.shape and o.dtype == np.uint8
    assert not np.array_equal(c, img) and np.array_equal(overlay_parsing(img, np.zeros((36, 44), np.uint8)), img)


# ------------------------------------------------------------------------------ real faces


def _aligned_celeba(root, n: int) -> np.ndarray:
    """The seed-000 crop of aligned CelebA: centre 178×178, resized to 128 (INTER_AREA)."""
    files = sorted((root / "img_align_celeba").glob("*.jpg"))[:n]
    out = []
    for f in files:
        im = cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1]
        t = (im.shape[0] - 178) // 2
        out.append(cv2.resize(np.ascontiguousarray(im[t : t + 178, :178]), (128, 128), interpolation=cv2.INTER_AREA))
    return np.stack(out)


@pytest.mark.shared
def test_real_faces_argmax_on_key_parts(celeba_root):
    """On 50 aligned CelebA faces with landmark boxes, the heatmap's hottest pixel lies inside an eye,
    eyebrow, nose or mouth box (measured on 200: paper 98%, released 99%)."""
    landmarks_mod = pytest.importorskip("facesr.priors.landmarks")
    from facesr.priors.detectors import LandmarkDetector

    imgs = _aligned_celeba(celeba_root, 50)
    lm = landmarks_mod.DlibLandmarker()(list(imgs))
    assert np.isfinite(lm).all(axis=(1, 2)).mean() >= 0.9
    boxes = LandmarkDetector().detect(imgs, lm)
    key = {CLASS_ID[c] for c in ("eye", "eyebrows", "nose", "mouth")}
    for preset in PRESETS:
        hm = render_batch(imgs, boxes, preset)
        hits = []
        for h, b in zip(hm, boxes, strict=True):
            if not len(b):
                continue
            y, x = np.unravel_index(np.argmax(h), h.shape)
            hits.append(any(int(r[5]) in key and r[0] <= x < r[2] and r[1] <= y < r[3] for r in b))
        assert np.mean(hits) >= 0.95, (preset, np.mean(hits))


# ------------------------------------------------------------------------------ the authors' notebook


def notebook_heatmap(img128: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """``detailed_heatmap_aligned`` of ``heatmaps/heatmaps_generator.ipynb`` (seed 000's released code),
    transcribed line by line with the detector's output replaced by ``boxes`` (facesr class ids)."""
    weights = {"eye": 4.5, "mouth": 4.0, "nose": 4.0, "nosetip": 3.0, "chin": 4.0, "ear": 4.0, "eyebrows": 4.0,
               "face": 4.0, "head": 1.2}

    def extract_edges(img_gray):
        scharr_x = cv2.Scharr(img_gray, cv2.CV_32F, 1, 0)
        scharr_y = cv2.Scharr(img_gray, cv2.CV_32F, 0, 1)
        scharr = np.sqrt(scharr_x**2 + scharr_y**2)
        scharr /= scharr.max() + 1e-8
        canny = cv2.Canny(img_gray, 50, 150).astype(np.float32) / 255.0
        combined = 0.5 * scharr + 0.5 * canny
        return combined / (combined.max() + 1e-8)

    def gaussian_fade(shape):
        hh, ww = shape
        y, x = np.meshgrid(np.linspace(-1, 1, ww), np.linspace(-1, 1, hh))
        return np.exp(-2.0 * (x**2 + y**2)).astype(np.float32)

    def inverse_gaussian_fade(shape):
        hh, ww = shape
        y, x = np.meshgrid(np.linspace(-1, 1, ww), np.linspace(-1, 1, hh))
        distance = np.sqrt(x**2 + y**2)
        return (1 - np.exp(-(distance**2) / (2 * 0.6**2))).astype(np.float32)

    H, W = img128.shape[:2]
    gray128 = cv2.cvtColor(img128, cv2.COLOR_RGB2GRAY)
    rows = boxes[~np.isnan(boxes).any(axis=1)]
    if len(rows) == 0:
        return np.zeros((H, W), dtype=np.float32)
    combined_heatmap = np.zeros((H, W), dtype=np.float32)
    for (x1, y1, x2, y2), cls in zip(rows[:, :4].astype(int), rows[:, 5].astype(int), strict=True):
        lab = PART_CLASSES[cls]
        weight = weights.get(lab, 1.0)
        x1, y1 = max(0, x1), max(0, y1)
        x2, y2 = min(W, x2), min(H, y2)
        if x2 <= x1 or y2 <= y1:
            continue
        crop = gray128[y1:y2, x1:x2]
        edges = extract_edges(np.ascontiguousarray(crop))
        box_w, box_h = x2 - x1, y2 - y1
        pad = max(8, min(box_w, box_h) // 4)
        y1_exp, y2_exp, x1_exp, x2_exp = max(0, y1 - pad), min(H, y2 + pad), max(0, x1 - pad), min(W, x2 + pad)
        local_h, local_w = y2_exp - y1_exp, x2_exp - x1_exp
        local_heatmap = np.zeros((local_h, local_w), dtype=np.float32)
        crop_start_y, crop_start_x = y1 - y1_exp, x1 - x1_exp
        edges_resized = cv2.resize(edges, (box_w, box_h), interpolation=cv2.INTER_LINEAR)
        if lab == "head":
            edges_resized *= gaussian_fade(edges_resized.shape)
            weight *= 0.5
        elif lab == "face":
            edges_resized *= 0.3 + 0.7 * inverse_gaussian_fade(edges_resized.shape)
        else:
            edges_resized *= gaussian_fade(edges_resized.shape)
        local_heatmap[crop_start_y : crop_start_y + box_h, crop_start_x : crop_start_x + box_w] = edges_resized
        center_y, center_x = local_h // 2, local_w // 2
        y_coords, x_coords = np.ogrid[:local_h, :local_w]
        distances = np.sqrt((x_coords - center_x) ** 2 + (y_coords - center_y) ** 2)
        max_dist = min(local_h, local_w) / 2
        radial_fade = np.clip(np.exp(-0.8 * (distances / max_dist) ** 2), 0.3, 1.0)
        local_heatmap *= radial_fade
        combined_heatmap[y1_exp:y2_exp, x1_exp:x2_exp] = np.maximum(
            combined_heatmap[y1_exp:y2_exp, x1_exp:x2_exp], local_heatmap * weight)
    combined_heatmap = cv2.GaussianBlur(combined_heatmap, (21, 21), sigmaX=2.0)
    if combined_heatmap.max() > combined_heatmap.min():
        combined_heatmap = (combined_heatmap - combined_heatmap.min()) / (combined_heatmap.max() - combined_heatmap.min())
    return combined_heatmap


def test_released_equals_the_notebook():
    """issue 10 item 6: the radial fade's centre is the padded window's integer centre and distances are
    normalised by half its shorter side; the whole released map equals the notebook's to 1e-6."""
    cases = [(_image(64, 72, seed=s), _boxes()) for s in range(3)]
    cases.append((_image(128, 128, seed=9), np.concatenate([
        make_boxes([[30.6, 40.2, 52.9, 55.5], [70, 41, 93, 56]], "eye"),
        make_boxes([[2, 2, 126, 127]], "head"), make_boxes([[10, 15, 118, 124]], "face"),
        make_boxes([[50, 60, 78, 90]], "nose"), make_boxes([[0, 100, 1, 128]], "ear")])))  # 1 px wide: kept
    for img, boxes in cases:
        want = notebook_heatmap(img, boxes)
        got = render_heatmap(img, boxes, "released")
        assert np.abs(got - want).max() <= 1e-6
    # the comparison sees the radial fade: without it the map moves by far more than the tolerance
    img, boxes = cases[-1]
    p = PRESETS["released"]
    assert np.abs(render_heatmap(img, boxes, p.replace(radial_fade=False)) - notebook_heatmap(img, boxes)).max() > 1e-2


@pytest.mark.shared
def test_released_equals_the_notebook_on_real_faces(celeba_root):
    imgs = _aligned_celeba(celeba_root, 8)
    rng = np.random.default_rng(0)
    for img in imgs:  # random part boxes of every class (no detector needed)
        xy = np.sort(rng.uniform(-5, 133, (9, 2, 2)), axis=1).reshape(9, 4)  # [x1, y1, x2, y2]
        boxes = make_boxes(xy, list(range(len(PART_CLASSES))))
        assert np.abs(render_heatmap(img, boxes, "released") - notebook_heatmap(img, boxes)).max() <= 1e-6


@pytest.mark.parametrize("preset", ["paper", "released"])
def test_bitwise_deterministic(preset):
    """The same image and boxes give the same map to the bit, whatever the memory layout of the crops: a
    resumed build must rewrite identical chunks (a SIMD path whose result depends on alignment, such as
    cv2.magnitude's, broke this by up to 1.8e-7)."""
    rng = np.random.default_rng(3)
    p = get_params(preset)
    for _ in range(40):
        img = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
        img = cv2.GaussianBlur(img, (5, 5), 1.5)
        k = int(rng.integers(4, 12))
        xy = rng.uniform(0, 100, (k, 2))
        wh = rng.uniform(9, 60, (k, 2))
        boxes = np.concatenate([xy, xy + wh, np.ones((k, 1)), rng.integers(0, len(PART_CLASSES), (k, 1))], 1)
        first = render_heatmap(img, boxes.astype(np.float32), p)
        _ = [np.empty(int(n)) for n in rng.integers(1, 999, 7)]  # shift the allocator's next addresses
        again = render_heatmap(np.ascontiguousarray(img[:, :]), boxes.astype(np.float32), p)
        assert np.array_equal(first, again)
