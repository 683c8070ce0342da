"""What a build is given: the dataset (:class:`SourceSpec`), what decides the store's content
(:class:`BuildOptions`, hashed into the stage keys) and how to run it (:class:`RunOptions`, never hashed).

::

    build_store(path, BuildOptions(lr=("bicubic-pil:16",)), source=SourceSpec("celeba", root),
                run=RunOptions(workers=2))

Paths are made absolute here (:meth:`SourceSpec.resolved`, :meth:`RunOptions.resolved`): a dask cluster's
workers may run in another directory or on another host, so a relative path means nothing to them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from facesr.data.images import DEFAULT_MAX_PIXELS  # images with more pixels are refused from their header
from facesr.errors import ConfigError

__all__ = ["BuildOptions", "CROP_METHODS", "DEFAULT_MAX_PIXELS", "DEFAULT_MIN_SIDE", "RunOptions", "SourceSpec",
           "default_crop", "parse_lr"]

CROP_METHODS = ("aligned", "landmarks", "resize")
#: Images with a side under this are refused: too small to hold a face.
DEFAULT_MIN_SIDE = 32
#: Datasets whose HR are already crops: kept as given (``resize`` is the identity at the store's size).
_PRECROPPED = {"pairs": "resize"}


def default_crop(dataset: str | None) -> str:
    """The crop a dataset gets when none is given: ``resize`` for ``pairs`` (already-cropped HR), else
    ``aligned``."""
    return _PRECROPPED.get(str(dataset), "aligned")


def parse_lr(lr: str | Sequence[str] | None) -> tuple[str, ...]:
    """LR specs from ``"a:16,b:32"`` or a list of such, normalised to ``METHOD:SIZE`` and deduplicated."""
    if lr is None:
        return ()
    from facesr.data.degrade import expand_lr

    items = (x.strip() for item in ([lr] if isinstance(lr, str) else lr) for x in str(item).split(","))
    return tuple(dict.fromkeys(str(spec) for x in items if x for spec in expand_lr(x)))  # mr8: UFVNet's sizes


def _positive(name: str, value, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class SourceSpec:
    """The dataset a store is made from: a :mod:`facesr.data.sources` name, its root folder, the source's
    options, and ``limit`` (keep N records, spread over the splits in their proportions)."""

    dataset: str
    root: str | os.PathLike
    options: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None

    def __post_init__(self) -> None:
        if self.limit is not None and (isinstance(self.limit, bool) or int(self.limit) < 1):
            raise ConfigError(f"--limit must be positive, got {self.limit}")

    def resolved(self) -> SourceSpec:
        """The same spec with an absolute root, so every record path is absolute (split files and other
        dataset files are read here, in the calling process, so they may stay relative)."""
        return replace(self, root=str(Path(self.root).expanduser().absolute()), options=dict(self.options))


@dataclass(frozen=True)
class BuildOptions:
    """Everything that decides a store's content (all of it enters the stage keys, except ``chunk``, which
    only lays out a store being created).

    ``crop=None``: as recorded in the store, else :func:`default_crop` of the dataset. ``priors=False`` plans
    the ``data prepare`` subset (ingest, crop, degrade). ``max_pixels``/``min_side``: images refused from
    their header (recorded as failures with the reason). ``size`` is the HR side.
    """

    crop: str | None = None
    crop_options: Mapping[str, Any] | None = None
    size: int = 128
    lr: tuple[str, ...] = ()
    priors: bool = True
    landmarker: Mapping[str, Any] | None = None  # None: upsample 1, fallback "center" for aligned crops
    detector: str = "landmarks"
    detector_options: Mapping[str, Any] = field(default_factory=dict)
    parser: str = "landmarks"
    parser_options: Mapping[str, Any] = field(default_factory=dict)
    heatmap: str = "paper"
    heatmap_overrides: Mapping[str, Any] = field(default_factory=dict)
    max_pixels: int = DEFAULT_MAX_PIXELS
    min_side: int = DEFAULT_MIN_SIDE
    chunk: int | None = None

    def __post_init__(self) -> None:
        if self.crop is not None and self.crop not in CROP_METHODS:
            raise ConfigError(f"unknown crop method {self.crop!r}", hint=f"choose one of {', '.join(CROP_METHODS)}")
        object.__setattr__(self, "lr", parse_lr(self.lr))
        _positive("--max-pixels", self.max_pixels, allow_none=False)
        _positive("--min-side", self.min_side, allow_none=False)
        _positive("--chunk", self.chunk)
        if self.crop is not None:
            from facesr.data.crop import check_options

            check_options(self.crop, self.crop_options or {})  # a typo must not turn every record into a failure


@dataclass(frozen=True)
class RunOptions:
    """How a build runs; nothing here changes a byte of the store.

    ``scheduler``: ``sync``/``threads``/``processes`` or a dask.distributed address (default ``processes``
    for ``workers > 1``, ``sync`` with ``debug``). ``cluster_timeout``: seconds to wait for a cluster's first
    worker (None: wait). ``verify``: run the verify stage (default: with priors); it fails when fewer than
    ``min_usable`` of the samples are usable, or on any failed sample with ``strict``. ``overwrite``: replace
    an existing facesr store (never anything else). ``lock_timeout``: seconds to wait for another build.
    """

    workers: int | None = None
    scheduler: str | None = None
    debug: bool = False
    verify: bool | None = None
    strict: bool = False
    min_usable: float = 0.9
    overwrite: bool = False
    lock_timeout: float | None = None
    cluster_timeout: float | None = None
    weights_dir: str | os.PathLike | None = None

    def __post_init__(self) -> None:
        _positive("--workers", self.workers)
        _positive("--timeout", self.cluster_timeout)
        if not 0.0 <= float(self.min_usable) <= 1.0:
            raise ConfigError(f"--min-usable must be a fraction in [0, 1], got {self.min_usable}")

    def resolved(self) -> RunOptions:
        """Absolute ``weights_dir``; ``workers`` and ``scheduler`` filled in."""
        from facesr.pipeline.runner import LOCAL_SCHEDULERS

        workers = int(self.workers or os.cpu_count() or 1)
        scheduler = "sync" if self.debug else (self.scheduler or ("processes" if workers > 1 else "sync"))
        if scheduler not in LOCAL_SCHEDULERS and "://" not in scheduler:
            raise ConfigError(f"unknown scheduler {scheduler!r}", hint="sync, threads, processes or tcp://host:port")
        wd = str(Path(self.weights_dir).expanduser().absolute()) if self.weights_dir else None
        return replace(self, workers=workers, scheduler=scheduler, weights_dir=wd)
