"""The build stages: each a pure per-chunk function with declared inputs, outputs and config.

A stage function never opens a store, never picks a scheduler and never prints::

    fn(inputs: {array name: rows of this chunk}, config, *, records=None, weights_dir=None) -> {array name: rows}

``inputs`` holds the arrays the stage ``reads`` (handed over in memory by the earlier stages of the chunk's task, or
read from the store for chunks an earlier run committed, :mod:`facesr.pipeline.tasks`); ``config`` is
everything that decides the output (hashed into the stage key); ``records`` are the crop stage's source
records; ``weights_dir`` says where provider files are (never hashed). Providers (landmarker, detector,
parser) are built once per worker thread from their options (:func:`facesr.pipeline.providers.provider`),
never per chunk, and each GPU-capable provider gets a whole chunk per call.

Chunking and ordering: the unit of work is one storage chunk of the store (``FaceStore.chunk_slices()``,
rows ``[i·chunk, (i+1)·chunk)`` in store order, which is the source's record order). Every output is
written as whole, chunk-aligned rows, so no two tasks ever write one zarr chunk file.

Failed samples (``failure != ""``, set by ``crop``) get the empty value of every later output: zero
pixels, NaN landmarks/boxes, an all-zero heatmap, an all-background class map.

Stage           reads                         writes (names and layouts in :mod:`facesr.data.schema`)
==============  ============================  =================================================================
``ingest``      source records                ``ids``, ``split`` — creates the store
``crop``        image files                   ``hr``, ``failure``; with ``--crop landmarks`` also ``landmarks``
                                              (dlib on the *original* photo, mapped into crop pixels); for
                                              ``pairs`` also the given LR files as ``lr/<spec>``
``degrade/<l>`` ``hr``, ``failure``           ``lr/<l>`` (``facesr.data.degrade``)
``landmarks``   ``hr``, ``failure``           ``landmarks`` (absent with ``--crop landmarks``)
``detect``      ``hr``, ``failure``, lms      ``priors/boxes`` [x1,y1,x2,y2,score,cls], NaN rows pad
``heatmap``     ``hr``, ``priors/boxes``      ``priors/heatmap`` float16 in [0, 1] (0 = no detection)
``parse``       ``hr``, ``failure``, lms      ``priors/parsing`` ids of ``PARSING_CLASSES``
``verify``      everything                    a report in the group attrs (``verify``), no arrays
==============  ============================  =================================================================

Heatmaps are stored as float16 (max error 2⁻¹¹ ≈ 4.9e-4 on [0, 1]), stated in the array attrs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facesr.data import schema
from facesr.pipeline.providers import provider

__all__ = ["ChunkFn", "Output", "Stage", "StageResult", "crop_chunk", "degrade_chunk", "detect_chunk",
           "heatmap_chunk", "landmarks_chunk", "parse_chunk", "run_chunk"]

#: Code versions: bump one when that stage's output for the same inputs and config changes.
VERSIONS: dict[str, int] = {
    "ingest": 1,
    "crop": 2,  # 2: header checks (pixel limit, minimum side) refuse hostile and tiny images
    "degrade": 1,
    "landmarks": 1,
    "detect": 1,
    "heatmap": 2,  # 2: the released preset's radial fade as the authors' notebook (issue 10 item 6)
    "parse": 1,
    "verify": 2,  # 2: usable-share threshold
}

ChunkFn = Callable[..., dict]


@dataclass(frozen=True)
class Output:
    """One array a stage writes: its schema ``spec`` and its per-sample shape ``tail`` in this store."""

    spec: schema.ArraySpec
    tail: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def dtype(self) -> str:
        return self.spec.dtype

    @property
    def stored(self) -> bool:
        """Whether the stage creates the array (the string arrays ``ids``/``split``/``failure`` exist from
        the store's creation)."""
        return self.spec.dtype != "str"


@dataclass(frozen=True)
class Stage:
    """A node of the build DAG.

    ``fn`` is the per-chunk function (None for the whole-store steps ``ingest`` and ``verify``); ``deps`` the
    stages whose outputs it reads (or, for ``verify``, checks); ``reads`` the arrays handed to ``fn`` per
    chunk; ``outputs`` what it writes; ``config`` all that decides its output (hashed into ``key``);
    ``attrs`` what each output array's attributes record; ``weights_dir`` where its provider finds files
    (not hashed: it says where, not what).
    """

    name: str
    fn: ChunkFn | None = None
    deps: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()
    outputs: tuple[Output, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict)
    attrs: Mapping[str, Any] = field(default_factory=dict)
    version: int = 1
    key: str = ""
    weights_dir: str | None = None

    @property
    def per_chunk(self) -> bool:
        return self.fn is not None


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
    checks: Mapping[str, int] = field(default_factory=dict)  # per-chunk counts the build sums (e.g. LR files)


def run_chunk(stage: Stage, inputs: Mapping[str, np.ndarray], records: Sequence[Mapping] | None = None
              ) -> tuple[dict, float]:
    """Call the stage's function on one chunk; returns (outputs, seconds)."""
    t0 = time.perf_counter()
    out = stage.fn(inputs, stage.config, records=records, weights_dir=stage.weights_dir)
    return out, time.perf_counter() - t0


# ------------------------------------------------------------------------------------------ helpers


def _failed(inputs: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    f = inputs.get(schema.FAILURE.name)
    return np.zeros(n, bool) if f is None else np.asarray(f) != ""


def _reason(exc: Exception) -> str:
    from facesr.errors import FacesrError

    msg = str(exc).strip() or type(exc).__name__
    text = msg if isinstance(exc, FacesrError) else f"{type(exc).__name__}: {msg}"
    return text[:300]


def _no_face(path):
    from facesr.errors import DatasetError

    return DatasetError(f"no face found in {path}")


# ------------------------------------------------------------------------------------------ chunk functions


def crop_chunk(inputs, config, *, records: Sequence[Mapping], weights_dir=None) -> dict:
    """Read and crop one chunk of ``records`` (``[{"path", "meta"}, ...]``). Never raises per record: a
    missing, corrupt, oversized (``read.max_pixels``) or tiny (``read.min_side``) image is a failure with
    its reason. With ``config["lr_files"]`` (``pairs``) the records' LR files are read into that array too,
    and ``checks`` counts the ones that differ from degrading the HR by the same spec."""
    from facesr.data.crop import crop_record, find_landmarks, transform_points
    from facesr.data.images import read_image

    size = int(config["size"])
    method = config["method"]
    options = dict(config.get("options", {}))
    limits = dict(config.get("read", {}))
    n = len(records)
    hr = np.zeros((n, size, size, 3), np.uint8)
    failure = [""] * n
    lms = np.full((n, 68, 2), np.nan, np.float32)
    lr_cfg = config.get("lr_files")
    lr = None if lr_cfg is None else np.zeros((n, lr_cfg["size"], lr_cfg["size"], 3), np.uint8)
    landmarker = None
    if method == "landmarks":
        lo = config["landmarker"]
        landmarker = provider("landmarker", lo["name"], lo["options"], weights_dir)
    for i, rec in enumerate(records):
        try:
            img = read_image(rec["path"], **limits)
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
            if lr is not None:
                lr[i] = _lr_file(meta.get("lr_path"), lr_cfg["size"])
            hr[i] = crop
            if dense is not None:
                lms[i] = transform_points(dense, m).astype(np.float32)
        except Exception as exc:  # noqa: BLE001 - a bad record is recorded, never fatal
            failure[i] = _reason(exc)
            if lr is not None:
                lr[i] = 0
    out = {schema.HR.name: hr, schema.FAILURE.name: np.asarray(failure, dtype=str)}
    if method == "landmarks":
        out[schema.LANDMARKS.name] = lms
    if lr is not None:
        out[lr_cfg["array"]] = lr
    return out


def _lr_file(path, side: int) -> np.ndarray:
    from facesr.data.images import read_image
    from facesr.errors import DatasetError

    img = read_image(path, min_side=1)
    if img.shape[:2] != (side, side):
        raise DatasetError(f"LR file {path} is {img.shape[1]}x{img.shape[0]}, expected {side}x{side}")
    return img


def lr_files_differ(out: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> int:
    """How many usable samples of a crop chunk have an LR file that differs from degrading their HR by the
    LR spec it is stored under (0 when the files are that degradation, bit for bit)."""
    from facesr.data.degrade import degrade

    cfg = config.get("lr_files")
    if cfg is None:
        return 0
    ok = np.asarray(out[schema.FAILURE.name]) == ""
    hr, lr = out[schema.HR.name], out[cfg["array"]]
    return int(sum(not np.array_equal(degrade(hr[i], cfg["spec"]), lr[i]) for i in np.flatnonzero(ok)))


def degrade_chunk(inputs, config, *, records=None, weights_dir=None) -> dict:
    """``lr/<spec>`` from ``hr`` by ``config["spec"]``; zero pixels for failed samples."""
    from facesr.data.degrade import LRSpec, degrade

    spec = LRSpec.parse(config["spec"])
    hr = inputs[schema.HR.name]
    bad = _failed(inputs, len(hr))
    s = int(config["size"])
    out = np.zeros((len(hr), s, s, 3), np.uint8)
    for i in np.flatnonzero(~bad):
        out[i] = degrade(hr[i], spec)
    return {config["array"]: out}


def landmarks_chunk(inputs, config, *, records=None, weights_dir=None) -> dict:
    """68 points per usable HR crop by the configured landmarker; NaN rows elsewhere."""
    hr = inputs[schema.HR.name]
    bad = _failed(inputs, len(hr))
    out = np.full((len(hr), 68, 2), np.nan, np.float32)
    ok = np.flatnonzero(~bad)
    if len(ok):
        lm = provider("landmarker", config["name"], config["options"], weights_dir)
        out[ok] = lm([hr[i] for i in ok])
    return {schema.LANDMARKS.name: out}


def detect_chunk(inputs, config, *, records=None, weights_dir=None) -> dict:
    """Part boxes per usable HR crop (one detector call per chunk), padded to ``max_k`` rows of NaN."""
    from facesr.priors.boxes import pad_boxes

    hr = inputs[schema.HR.name]
    bad = _failed(inputs, len(hr))
    det = provider("detector", config["name"], config["options"], weights_dir)
    boxes = [np.zeros((0, 6), np.float32)] * len(hr)
    ok = np.flatnonzero(~bad)
    if len(ok):
        lm = inputs.get(schema.LANDMARKS.name)
        found = det.detect(hr[ok], None if lm is None else lm[ok])
        for j, i in enumerate(ok):
            boxes[i] = found[j]
    return {schema.BOXES.name: pad_boxes(boxes, int(config["max_k"]))}


def heatmap_chunk(inputs, config, *, records=None, weights_dir=None) -> dict:
    """The part heatmap of each crop from its boxes (:func:`facesr.priors.heatmap.render_batch`), in [0, 1]."""
    from facesr.priors.heatmap import HeatmapParams, render_batch, render_batch_torch, torch_is_faster

    hr = inputs[schema.HR.name]
    params = HeatmapParams.from_dict(config["params"])
    if torch_is_faster():  # a GPU: the torch renderer (same recipe, tests: mean |diff| ≤ 2e-3; measured ~1e-8)
        maps = render_batch_torch(hr, inputs[schema.BOXES.name], params, device="cuda").cpu().numpy()
    else:  # on the CPU the cv2 loop is ~4× faster than the batched torch renderer (measured, CPU time)
        maps = render_batch(hr, inputs[schema.BOXES.name], params)
    maps = np.clip(np.nan_to_num(maps, nan=0.0), 0.0, 1.0)
    return {schema.HEATMAP.name: maps.astype(schema.HEATMAP.dtype)}


def parse_chunk(inputs, config, *, records=None, weights_dir=None) -> dict:
    """A class map per usable crop by the configured parser; all background elsewhere."""
    hr = inputs[schema.HR.name]
    bad = _failed(inputs, len(hr))
    out = np.zeros(hr.shape[:3], np.uint8)
    ok = np.flatnonzero(~bad)
    if len(ok):
        parser = provider("parser", config["name"], config["options"], weights_dir)
        lm = inputs.get(schema.LANDMARKS.name)
        out[ok] = parser.parse(hr[ok], None if lm is None else lm[ok])
    return {schema.PARSING.name: out}
