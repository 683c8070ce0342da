"""Process-wide settings, applied once at an entry point (the CLI, a worker), never at import time; and the
two run-time facts that training and inference share: the device (:func:`resolve_device`) and the LR side of a
store LR spec (:func:`lr_size`)."""

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


def resolve_device(name: str = "auto", local_rank: int | None = None):
    """The ``torch.device`` for a ``--device`` value: ``auto`` | ``cpu`` | ``cuda`` | ``cuda:N`` | ``mps``.

    ``auto`` is CUDA when present, else CPU. ``local_rank`` (under torchrun) picks the GPU for ``auto`` and
    for a bare ``cuda``. A name torch does not know, or a GPU that is not there, is a one-line ConfigError.
    """
    import torch

    from facesr.errors import ConfigError

    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", local_rank if local_rank is not None else torch.cuda.current_device())
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError, ValueError):
        raise ConfigError(f"unknown device {name!r}", hint="use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but CUDA is not available", hint="use --device cpu")
        if dev.index is None and local_rank is not None:
            dev = torch.device("cuda", local_rank)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} GPU(s)",
                              hint="use --device cuda:0 … or auto")
    elif dev.type not in ("cpu", "mps"):
        raise ConfigError(f"device type {dev.type!r} is not supported", hint="use auto, cpu, cuda or cuda:N")
    return dev


def lr_size(spec: str) -> int:
    """LR side of a store LR spec (``bicubic-pil_16``, ``lr/bicubic-pil_16`` or ``bicubic-pil:16`` → 16)."""
    from facesr.data.degrade import LRSpec

    return LRSpec.parse(spec.split("/", 1)[-1]).size
