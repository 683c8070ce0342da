"""Process-wide settings, applied once at an entry point (the CLI, a worker), never at import time."""

from __future__ import annotations

import os


def offline_env() -> None:
    """Keep third-party libraries from reaching for the network or writing config in odd places.

    Called by the CLI entry point and by the providers that import those libraries, before importing them.
    """
    os.environ.setdefault("YOLO_OFFLINE", "1")
    os.environ.setdefault("YOLO_AUTOINSTALL", "False")
    os.environ.setdefault("YOLO_VERBOSE", "False")
    os.environ.setdefault("YOLO_CONFIG_DIR", os.path.join(os.path.expanduser("~"), ".cache", "facesr", "ultralytics"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def restore_threads() -> None:
    """Importing ultralytics drops torch to one thread; give the machine's cores back."""
    import torch

    want = int(os.environ.get("FACESR_THREADS", os.cpu_count() or 1))
    if torch.get_num_threads() != want:
        torch.set_num_threads(want)
