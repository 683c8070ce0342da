"""Shared fixtures. Real faces come from ``../shared`` beside the project root; tests that need it skip
cleanly where it is absent (CI has it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("FACESR_SHARED", ROOT.parent / "shared"))


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent (needs ../shared)")
    return path


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    return _need(SHARED)


@pytest.fixture(scope="session")
def celeba_root() -> Path:
    return _need(SHARED / "faces" / "celeba")


@pytest.fixture(scope="session")
def helen_root() -> Path:
    return _need(SHARED / "faces" / "helen_smoke")


@pytest.fixture(scope="session")
def dic_root() -> Path:
    return _need(SHARED / "benchmarks" / "celeba_test_dic")


@pytest.fixture(scope="session")
def astronaut_face():
    """A real face that ships inside scikit-image (public domain), cropped to the face, uint8 RGB."""
    from skimage import data

    img = data.astronaut()
    return img[20:230, 140:320].copy()
