"""The build stages: each a pure per-chunk function with declared inputs, outputs and config.

A stage never opens a store, never picks a scheduler and never prints: the runner
(:mod:`facesr.pipeline.runner`) reads a chunk's input arrays, calls the stage's function, writes the
returned arrays and commits the chunk. Providers (landmarker, detector, parser) are built once per
worker thread/process from their JSON-able build options (:func:`provider`), never per chunk, and each
GPU-capable provider gets a whole chunk per call.

Chunking and ordering: the unit of work is one storage chunk of the store (``FaceStore.chunk_slices()``,
rows ``[i·chunk, (i+1)·chunk)`` in store order, which is the source's record order). Every output is
written as whole, chunk-aligned rows, so no two tasks ever write one zarr chunk file.

Failed samples (``failure != ""``, set by ``crop``) get the empty value of every later output: zero
pixels, NaN landmarks/boxes, an all-zero heatmap, an all-background class map.

Stage           reads                         writes (dims, dtype, range)
==============  ============================  =================================================================
``ingest``      source records                ``ids`` (N,) str, ``split`` (N,) str — creates the store
``crop``        image files                   ``hr`` (N,S,S,3) uint8 RGB; ``failure`` (N,) str;
                                              with ``--crop landmarks`` also ``landmarks`` (N,68,2) float32,
                                              dlib's points on the *original* photo mapped into crop pixels
``degrade/<l>`` ``hr``                        ``lr/<l>`` (N,s,s,3) uint8 RGB (``facesr.data.degrade``)
``landmarks``   ``hr``                        ``landmarks`` (N,68,2) float32 HR (x, y), NaN where no face
``detect``      ``hr``, ``landmarks``         ``priors/boxes`` (N,K,6) float32 [x1,y1,x2,y2,score,cls], NaN rows pad
``heatmap``     ``hr``, ``priors/boxes``      ``priors/heatmap`` (N,S,S) float16 in [0, 1] (0 = no detection)
``parse``       ``hr``, ``landmarks``         ``priors/parsing`` (N,S,S) uint8 ids of ``PARSING_CLASSES``
``verify``      everything                    a report in the group attrs (``verify``), no arrays
==============  ============================  =================================================================

Heatmaps are stored as float16 (max error 2⁻¹¹ ≈ 4.9e-4 on [0, 1]), stated in the array attrs.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["ArraySpec", "CHUNK_FUNCS", "Stage", "StageResult", "provider", "provider_config"]

#: Code versions: bump one when that stage's output for the same inputs and config changes.
VERSIONS: dict[str, int] = {
    "ingest": 1,
    "crop": 1,
    "degrade": 1,
    "landmarks": 1,
    "detect": 1,
    "heatmap": 1,
    "parse": 1,
}

HEATMAP_DTYPE = "float16"


@dataclass(frozen=True)
class ArraySpec:
    """One output array: ``name`` of shape ``(N, *tail)`` and ``dtype``."""

    name: str
    tail: tuple[int, ...]
    dtype: str


@dataclass(frozen=True)
class Stage:
    """A node of the build DAG.

    ``fn`` names the per-chunk function in :data:`CHUNK_FUNCS`; ``deps`` the stages it must follow;
    ``reads`` the store arrays handed to ``fn`` per chunk; ``outputs`` what it writes; ``config`` all that
    decides its output (hashed into ``key``); ``attrs`` what each output array's attributes record.
    """

    name: str
    fn: str
    deps: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    outputs: tuple[ArraySpec, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    key: str = ""
    runtime: Mapping[str, Any] = field(default_factory=dict)  # e.g. weights_dir: never hashed

    @property
    def per_chunk(self) -> bool:
        return self.fn not in ("ingest", "verify")


@dataclass(frozen=True)
class StageResult:
    """What one (stage, chunk) task reports back to the runner (small: it crosses processes)."""

    stage: str
    chunk: int
    n: int
    seconds: float
    skipped: bool = False
    failures: int = 0
    cpu: float = 0.0  # CPU seconds of the worker process spent on this task (read + compute + write)


# ------------------------------------------------------------------------------------------ providers

_local = threading.local()


def _opts_key(kind: str, name: str, opts: Mapping[str, Any]) -> str:
    return json.dumps([kind, name, dict(opts)], sort_keys=True, default=str)


def _build_provider(kind: str, name: str, opts: Mapping[str, Any]):
    from facesr.runtime import offline_env

    offline_env()
    opts = dict(opts)
    if kind == "landmarker":
        from facesr.priors.landmarks import DlibLandmarker

        fb = opts.get("fallback")
        if isinstance(fb, list):
            opts["fallback"] = tuple(fb)
        return DlibLandmarker(**opts)
    if kind == "detector":
        from facesr.priors.detectors import DETECTORS

        if name == "yoloworld" and "random_seed" in opts:
            from facesr.priors.detectors import YoloWorldDetector

            seed = opts.pop("random_seed")
            return YoloWorldDetector.from_random(seed, **opts)
        return DETECTORS.build(name, **opts)
    if kind == "parser":
        from facesr.priors.parsing import PARSERS

        if name == "bisenet" and "random_seed" in opts:
            from facesr.priors.parsing import BiSeNetParser

            seed = opts.pop("random_seed")
            return BiSeNetParser.from_random(seed, **opts)
        return PARSERS.build(name, **opts)
    raise ValueError(f"unknown provider kind {kind!r}")


def provider(kind: str, name: str, opts: Mapping[str, Any]):
    """The provider ``name`` of ``kind`` built with ``opts``, cached per worker thread (so per process too).

    Providers hold native handles (dlib, torch) that are not thread-safe, hence one per thread.
    """
    cache = getattr(_local, "cache", None)
    if cache is None:
        cache = _local.cache = {}
    k = _opts_key(kind, name, opts)
    if k not in cache:
        cache[k] = _build_provider(kind, name, opts)
    return cache[k]


def provider_config(kind: str, name: str, opts: Mapping[str, Any]) -> dict:
    """``provider.config()`` (what enters the stage key); builds the provider in this process once."""
    return dict(provider(kind, name, opts).config())


# ------------------------------------------------------------------------------------------ chunk functions
# Signature: fn(inputs: {array name: rows of this chunk}, config, extra) -> {array name: rows}


def _with_runtime(options: Mapping[str, Any], config: Mapping[str, Any]) -> dict:
    """Build options plus the unhashed runtime ones (``weights_dir``) the runner passed in ``_runtime``."""
    return {**dict(options), **dict(config.get("_runtime") or {})}


def _failed(inputs: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    f = inputs.get("failure")
    return np.zeros(n, bool) if f is None else np.asarray(f) != ""


def crop_chunk(inputs: Mapping[str, np.ndarray], config: Mapping[str, Any], extra: Sequence[Mapping]) -> dict:
    """Read and crop one chunk of records (``extra``: ``[{"path", "meta"}, ...]``). Never raises per record."""
    from facesr.data.crop import crop_record, find_landmarks, transform_points
    from facesr.data.images import read_image

    size = int(config["size"])
    method = config["method"]
    options = dict(config.get("options", {}))
    n = len(extra)
    hr = np.zeros((n, size, size, 3), np.uint8)
    failure = [""] * n
    lms = np.full((n, 68, 2), np.nan, np.float32)
    landmarker = None
    if method == "landmarks":
        lo = config["landmarker"]
        landmarker = provider("landmarker", lo["name"], _with_runtime(lo["options"], config))
    for i, rec in enumerate(extra):
        try:
            img = read_image(rec["path"])
            pts = None
            meta = rec.get("meta") or {}
            if meta.get("landmarks") is not None:
                pts = np.asarray(meta["landmarks"], np.float32)
            dense = None  # 68 points on the original photo, for the landmarks output
            if method == "landmarks":
                if pts is not None and pts.shape == (68, 2):
                    dense = pts
                else:  # dlib on the original photo; a dataset box helps where HOG misses
                    dense = find_landmarks(img, landmarker, meta.get("box"))
                    if not np.isfinite(dense).all():
                        dense = None
                if pts is None:
                    pts = dense
                if pts is None:
                    raise _no_face(rec["path"])
            crop, m = crop_record(img, method, landmarks=pts, size=size, **options)
            hr[i] = crop
            if dense is not None:
                lms[i] = transform_points(dense, m).astype(np.float32)
        except Exception as exc:  # noqa: BLE001 - a bad record is recorded, never fatal
            failure[i] = _reason(exc)
    out = {"hr": hr, "failure": np.asarray(failure, dtype=str)}
    if method == "landmarks":
        out["landmarks"] = lms
    return out


def _no_face(path):
    from facesr.errors import DatasetError

    return DatasetError(f"no face found in {path}")


def _reason(exc: Exception) -> str:
    from facesr.errors import FacesrError

    msg = str(exc).strip() or type(exc).__name__
    text = msg if isinstance(exc, FacesrError) else f"{type(exc).__name__}: {msg}"
    return text[:300]


def degrade_chunk(inputs, config, extra=None) -> dict:
    from facesr.data.degrade import LRSpec, degrade

    spec = LRSpec.parse(config["spec"])
    hr = inputs["hr"]
    bad = _failed(inputs, len(hr))
    s = int(config["size"])
    out = np.zeros((len(hr), s, s, 3), np.uint8)
    for i in np.flatnonzero(~bad):
        out[i] = degrade(hr[i], spec)
    return {config["array"]: out}


def landmarks_chunk(inputs, config, extra=None) -> dict:
    hr = inputs["hr"]
    bad = _failed(inputs, len(hr))
    out = np.full((len(hr), 68, 2), np.nan, np.float32)
    ok = np.flatnonzero(~bad)
    if len(ok):
        lm = provider("landmarker", config["name"], _with_runtime(config["options"], config))
        out[ok] = lm([hr[i] for i in ok])
    return {"landmarks": out}


def detect_chunk(inputs, config, extra=None) -> dict:
    from facesr.priors.boxes import pad_boxes

    hr = inputs["hr"]
    bad = _failed(inputs, len(hr))
    det = provider("detector", config["name"], _with_runtime(config["options"], config))
    boxes = [np.zeros((0, 6), np.float32)] * len(hr)
    ok = np.flatnonzero(~bad)
    if len(ok):
        lm = inputs.get("landmarks")
        found = det.detect(hr[ok], None if lm is None else lm[ok])  # one call per chunk (batched)
        for j, i in enumerate(ok):
            boxes[i] = found[j]
    return {"priors/boxes": pad_boxes(boxes, int(config["max_k"]))}


def heatmap_chunk(inputs, config, extra=None) -> dict:
    from facesr.priors.heatmap import HeatmapParams, render_batch

    hr = inputs["hr"]
    params = HeatmapParams.from_dict(config["params"]) if isinstance(config["params"], Mapping) else config["params"]
    maps = render_batch(hr, inputs["priors/boxes"], params)
    maps = np.clip(np.nan_to_num(maps, nan=0.0), 0.0, 1.0)
    return {"priors/heatmap": maps.astype(HEATMAP_DTYPE)}


def parse_chunk(inputs, config, extra=None) -> dict:
    hr = inputs["hr"]
    bad = _failed(inputs, len(hr))
    out = np.zeros(hr.shape[:3], np.uint8)
    ok = np.flatnonzero(~bad)
    if len(ok):
        parser = provider("parser", config["name"], _with_runtime(config["options"], config))
        lm = inputs.get("landmarks")
        out[ok] = parser.parse(hr[ok], None if lm is None else lm[ok])
    return {"priors/parsing": out}


def noop_chunk(inputs, config, extra=None) -> dict:
    """A stage whose outputs another stage already wrote (``landmarks`` after ``--crop landmarks``)."""
    return {}


CHUNK_FUNCS: dict[str, Callable[..., dict]] = {
    "crop": crop_chunk,
    "degrade": degrade_chunk,
    "landmarks": landmarks_chunk,
    "landmarks-from-crop": noop_chunk,
    "detect": detect_chunk,
    "heatmap": heatmap_chunk,
    "parse": parse_chunk,
}


def run_chunk(stage: Stage, inputs: Mapping[str, np.ndarray], extra: Any = None) -> tuple[dict, float]:
    """Call the stage's function on one chunk; returns (outputs, seconds)."""
    t0 = time.perf_counter()
    config = {**dict(stage.config), "_runtime": dict(stage.runtime)}
    out = CHUNK_FUNCS[stage.fn](inputs, config, extra)
    return out, time.perf_counter() - t0
