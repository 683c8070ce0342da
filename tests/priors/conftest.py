"""Fixtures shared by the prior tests."""

from __future__ import annotations

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="module")
def face_and_points(astronaut_face):
    """The astronaut face at 128×150 and its 68 dlib points (skips where dlib is absent)."""
    lm_mod = pytest.importorskip("facesr.priors.landmarks")
    img = np.ascontiguousarray(cv2.resize(astronaut_face, (128, 150), interpolation=cv2.INTER_AREA))
    pts = lm_mod.DlibLandmarker(fallback=None)([img])[0]
    assert np.isfinite(pts).all()
    return img, pts
