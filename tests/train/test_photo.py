"""facesr.train.photo: every face of a photo found, aligned, super-resolved and pasted back feathered."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facesr.errors import DatasetError
from facesr.train.inference import load_run
from facesr.train.photo import PhotoSR, auto_scale, feather_mask


def group_photo(face: np.ndarray) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """Three copies of a real face (90, 60 and 40 px wide, one mirrored) on a 320×200 grey frame, and where
    each was placed (l, t, r, b)."""
    frame = np.full((200, 320, 3), 120, np.uint8)
    placed = []
    for (x, y, w), flip in zip([(10, 40, 90), (140, 30, 60), (240, 70, 40)], [False, True, False]):
        f = face[:, ::-1] if flip else face
        h = int(round(w * f.shape[0] / f.shape[1]))
        frame[y:y + h, x:x + w] = cv2.resize(np.ascontiguousarray(f), (w, h), interpolation=cv2.INTER_AREA)
        placed.append((x, y, x + w, y + h))
    return frame, placed


def test_feather_mask():
    m = feather_mask(128)
    assert m.shape == (128, 128) and m[64, 64] == pytest.approx(1.0) and m[0, 0] < 1e-3
    assert np.all(np.diff(m[64, :64]) >= -1e-6)  # monotone ramp towards the centre


def test_auto_scale_follows_the_smallest_face_within_the_side_cap():
    assert auto_scale([128.0], (300, 300)) == 1
    assert auto_scale([64.0, 32.0], (300, 300)) == 4  # the smallest face decides
    assert auto_scale([10.0], (300, 300)) == 8  # at most ×8
    assert auto_scale([16.0], (1000, 2000)) == 2  # the upscaled photo stays within 4,096 px


def test_one_face_detect_align_paste_back(tiny_run, astronaut_face):
    pred = load_run(tiny_run)
    photo = np.pad(astronaut_face, ((150, 150), (150, 150), (0, 0)), mode="edge")  # face ≈ 100 px, far from corners
    res = PhotoSR(pred, detector="hog")(photo)
    assert len(res.faces) == 1
    assert res.face_lr.shape == (16, 16, 3) and res.face_sr.shape == (128, 128, 3)
    h, w = photo.shape[:2]
    assert res.scale >= 1 and res.image.shape == (h * res.scale, w * res.scale, 3)
    big = photo if res.scale == 1 else cv2.resize(photo, (w * res.scale, h * res.scale), interpolation=cv2.INTER_CUBIC)
    # far from the face the photo is untouched (up to the upscale) ...
    assert np.array_equal(res.image[:20, :20], big[:20, :20])
    assert np.array_equal(res.image[-20:, -20:], big[-20:, -20:])
    # ... and at the face centre the pixels are the SR face's: map the crop centre back to the photo
    m = np.vstack([res.matrix, [0, 0, 1]])
    x, y, _ = np.linalg.inv(m) @ np.array([63.5, 70.0, 1.0])
    cx, cy = int(round((x + 0.5) * res.scale - 0.5)), int(round((y + 0.5) * res.scale - 0.5))
    assert np.abs(res.image[cy, cx].astype(int) - res.face_sr[70, 64].astype(int)).max() <= 12


def test_group_photo_every_face_found_and_pasted(tiny_run, astronaut_face):
    pred = load_run(tiny_run)
    frame, placed = group_photo(astronaut_face)
    res = PhotoSR(pred)(frame)  # hog+cnn, exhaustive
    assert len(res.faces) == 3
    for (l, t, r, b) in placed:  # each placed face is one found face, its landmarks inside the placed copy
        hit = [f for f in res.faces if l <= (f.box[0] + f.box[2]) / 2 <= r and t <= (f.box[1] + f.box[3]) / 2 <= b]
        assert len(hit) == 1
        pts = hit[0].landmarks
        assert (pts[:, 0] > l - 5).all() and (pts[:, 0] < r + 5).all() and (pts[:, 1] > t - 5).all()
    # the smallest face (40 px) decides the scale: ×3 at least, and every face's crop centre carries its SR face
    assert res.scale >= 3 and res.image.shape[:2] == (200 * res.scale, 320 * res.scale)
    for f in res.faces:
        x, y, _ = np.linalg.inv(np.vstack([f.matrix, [0, 0, 1]])) @ np.array([63.5, 80.0, 1.0])
        cx, cy = int(round((x + 0.5) * res.scale - 0.5)), int(round((y + 0.5) * res.scale - 0.5))
        assert np.abs(res.image[cy, cx].astype(int) - f.sr[80, 64].astype(int)).max() <= 16
    # --max-faces keeps the largest, --min-face drops the small ones
    assert [round(f.face_px) for f in PhotoSR(pred, max_faces=1)(frame).faces] == [round(res.faces[0].face_px)]
    sides = sorted(f.box[2] - f.box[0] for f in res.faces)
    kept = PhotoSR(pred, min_face=(sides[0] + sides[1]) / 2)(frame).faces
    assert len(kept) == 2 and min(f.box[2] - f.box[0] for f in kept) == sides[1]


def test_no_face_is_one_dataset_error(tiny_run):
    with pytest.raises(DatasetError, match="no face found"):
        PhotoSR(load_run(tiny_run), detector="hog")(np.full((80, 80, 3), 127, np.uint8))
