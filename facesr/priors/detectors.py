"""Part detectors: an HR batch → one box set per image (see :mod:`facesr.priors.boxes`).

Interface (every entry of :data:`DETECTORS`)::

    det = DETECTORS.build("landmarks")            # or "yoloworld", with keyword options
    det.name                                      # registry name
    det.config() -> dict                          # JSON-able; everything that changes the output (hashing)
    det.detect(images, landmarks=None) -> list[np.ndarray]   # B arrays (K_i, 6) float32

``images`` is ``(B, H, W, 3)`` uint8 RGB; ``landmarks`` ``(B, 68, 2)`` float32 (x, y) in the same pixels,
NaN where no face was found. Boxes come back in input pixel coordinates, clipped to the image. Providers
are pure per-chunk functions: they know nothing of stores or schedulers, load their networks lazily on the
first call and drop them when pickled (so a dask graph can carry them).

* ``landmarks`` — boxes from the 68 iBUG points (geometry in :class:`LandmarkDetector`), score 1.0. Pure,
  fast, no weights: the offline alternative to YOLO-World.
* ``yoloworld-random`` — the same network with seeded random weights and embeddings (offline tests, timing).
* ``yoloworld`` — ultralytics YOLO-World with text embeddings of the part prompts (computed once with CLIP
  when it is installed and cached as ``yoloworld_text_embeddings.pt`` in the weights directory, else read from
  that cache). Defaults follow seed 000's released notebook: ``version="v1"`` (``yolov8s-world.pt``; ``"v2"``
  reads ``yolov8s-worldv2.pt``), the notebook's prompts in its order (:data:`NOTEBOOK_PROMPTS`), conf 0.001,
  iou 0.1, imgsz 640, letterboxed. Unlike the released code, images are handed to ultralytics in BGR, the
  order it assumes for numpy arrays (the notebook passed RGB: a silent swap).
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Sequence

import numpy as np

from facesr.errors import ConfigError, WeightsMissingError
from facesr.priors.boxes import CLASS_ID, PART_CLASSES, clip_boxes, empty_boxes
from facesr.priors.provider import LazyNetwork, check_images, check_landmarks, default_device
from facesr.registry import Registry

DETECTORS: Registry = Registry("detector")

#: version → (weight file, ultralytics yaml of the same network for the random-weight twin). The notebook
#: loads ``yolov8s-world.pt`` (v1); the paper says only "YOLOv8s-World".
YOLOWORLD_VERSIONS: dict[str, tuple[str, str]] = {
    "v1": ("yolov8s-world.pt", "yolov8s-world.yaml"),
    "v2": ("yolov8s-worldv2.pt", "yolov8s-worldv2.yaml"),
}
YOLOWORLD_DEFAULT_VERSION = "v1"
YOLOWORLD_EMBEDDINGS = "yoloworld_text_embeddings.pt"
#: parameters of each network as built from its yaml with 9 classes (tests/priors/test_detectors.py counts them)
YOLOWORLD_PARAMS = {"v1": 13_383_496, "v2": 12_759_880}
#: (prompt text, facesr class) exactly as the notebook sets them, in its order (the text ``nosetip`` too).
#: Order does not change the boxes (classes are scored independently, NMS is per class), only the model's
#: class indices, which facesr maps to its own classes.
NOTEBOOK_PROMPTS: tuple[tuple[str, str], ...] = (
    ("eye", "eye"),
    ("mouth", "mouth"),
    ("ear", "ear"),
    ("nose", "nose"),
    ("nosetip", "nosetip"),
    ("face", "face"),
    ("chin", "chin"),
    ("head", "head"),
    ("eyebrows", "eyebrows"),
)
DEFAULT_PROMPTS = NOTEBOOK_PROMPTS

__all__ = [
    "DEFAULT_PROMPTS",
    "NOTEBOOK_PROMPTS",
    "YOLOWORLD_VERSIONS",
    "DETECTORS",
    "LandmarkDetector",
    "RandomYoloWorldDetector",
    "YoloWorldDetector",
    "boxes_from_landmarks",
]


# --------------------------------------------------------------------------------------- landmarks


def boxes_from_landmarks(
    points: np.ndarray, height: int, width: int, *, ears: bool = False, head_up: float = 0.6, head_side: float = 0.15
) -> np.ndarray:
    """Part boxes ``(K, 6)`` for one face from its 68 points (0-based iBUG indices); empty if any is NaN.

    Geometry (``s`` = inter-ocular distance, outer eye corners 36–45; all boxes are then clipped):

    * eye: each of 36–41 / 42–47, bbox padded by 0.25·(eye width) sideways and 0.35·(eye width) up/down;
    * eyebrows: each of 17–21 / 22–26, padded 0.1·(brow width) sideways, 0.08·s up/down;
    * nose: 27–35, padded 0.1·s sideways and 0.05·s up/down;
    * nosetip: 30–35 (tip and nostrils), padded 0.08·s sideways, 0.12·s up, 0.05·s down;
    * mouth: 48–67, padded 0.1·(mouth width) sideways and 0.1·s up/down;
    * chin: x from points 6..10, y from halfway between lower lip (57) and chin (8) to 8, +0.05·s down;
    * face: bbox of the jaw + brow hull (0–26);
    * head: the face box widened by ``head_side``·(face width) on each side, raised by
      ``head_up``·(face height) and lowered by 0.05·(face height) — an estimate of the hair line;
    * ear (only with ``ears=True``; YOLO-World's "ear" often fires on frontal CelebA crops where the ears are
      hidden, so the default is to emit none): beside the jaw, points 0–3 (left) / 13–16 (right), a box
      0.15·(face width) wide outside the jaw line, as tall as those points.
    """
    pts = np.asarray(points, np.float32).reshape(68, 2)
    if not np.isfinite(pts).all():
        return empty_boxes()
    s = float(np.linalg.norm(pts[45] - pts[36])) or 1.0

    def bbox(a, b, px, py_up, py_down=None):  # points a..b-1 (slices: no fancy-index copies)
        p = pts[a:b]
        x1, y1 = p.min(0)
        x2, y2 = p.max(0)
        return [x1 - px, y1 - py_up, x2 + px, y2 + (py_up if py_down is None else py_down)]

    def span(a, b):
        x = pts[a:b, 0]
        return float(x.max() - x.min())

    rows: list[tuple[list[float], str]] = []
    for a, b in ((36, 42), (42, 48)):
        ew = span(a, b)
        rows.append((bbox(a, b, 0.25 * ew, 0.35 * ew), "eye"))
    for a, b in ((17, 22), (22, 27)):
        rows.append((bbox(a, b, 0.1 * span(a, b), 0.08 * s), "eyebrows"))
    rows.append((bbox(27, 36, 0.1 * s, 0.05 * s), "nose"))
    rows.append((bbox(30, 36, 0.08 * s, 0.12 * s, 0.05 * s), "nosetip"))
    rows.append((bbox(48, 68, 0.1 * span(48, 68), 0.1 * s), "mouth"))
    chin_x1, chin_x2 = float(pts[6:11, 0].min()), float(pts[6:11, 0].max())
    chin_y2 = float(pts[6:11, 1].max()) + 0.05 * s
    chin_y1 = float(pts[57, 1] + pts[8, 1]) / 2.0
    rows.append(([chin_x1, chin_y1, chin_x2, chin_y2], "chin"))
    fx1, fy1, fx2, fy2 = bbox(0, 27, 0.0, 0.0)
    fw, fh = fx2 - fx1, fy2 - fy1
    if ears:
        for idx, side in ((range(0, 4), -1), (range(13, 17), 1)):
            p = pts[list(idx)]
            ex = float(p[:, 0].min()) if side < 0 else float(p[:, 0].max())
            x1, x2 = (ex - 0.15 * fw, ex) if side < 0 else (ex, ex + 0.15 * fw)
            rows.append(([x1, float(p[:, 1].min()), x2, float(p[:, 1].max())], "ear"))
    rows.append(([fx1, fy1, fx2, fy2], "face"))
    rows.append(([fx1 - head_side * fw, fy1 - head_up * fh, fx2 + head_side * fw, fy2 + 0.05 * fh], "head"))
    out = np.array([[*xyxy, 1.0, CLASS_ID[c]] for xyxy, c in rows], np.float32)
    return clip_boxes(out, height, width)


@DETECTORS.register("landmarks")
class LandmarkDetector:
    """Part boxes derived from 68-point landmarks (:func:`boxes_from_landmarks`); needs ``landmarks``."""

    name = "landmarks"
    needs_weights = False

    def __init__(self, *, ears: bool = False, head_up: float = 0.6, head_side: float = 0.15) -> None:
        self.ears, self.head_up, self.head_side = bool(ears), float(head_up), float(head_side)

    def config(self) -> dict:
        return {"name": self.name, "version": 1, "ears": self.ears, "head_up": self.head_up,
                "head_side": self.head_side}

    def detect(self, images: np.ndarray, landmarks: np.ndarray | None = None) -> list[np.ndarray]:
        imgs = check_images(images)
        lm = check_landmarks(landmarks, len(imgs), who="landmarks detector")
        h, w = imgs.shape[1:3]
        return [
            boxes_from_landmarks(p, h, w, ears=self.ears, head_up=self.head_up, head_side=self.head_side) for p in lm
        ]


# --------------------------------------------------------------------------------------- YOLO-World


def _import_ultralytics():
    from facesr.runtime import offline_env, restore_threads

    offline_env()
    import ultralytics  # noqa: F401  (import-time side effects happen here, once)
    from ultralytics import YOLO

    restore_threads()
    return YOLO


def load_text_embeddings(prompts: Sequence[str], weights_dir=None, *, compute: bool = True):
    """``(K, 512)`` float32 L2-normalised CLIP text embeddings of ``prompts`` (torch tensor).

    Read from ``yoloworld_text_embeddings.pt`` in the weights directory (a dict ``{"prompts": [...],
    "embeddings": (N, 512)}``); prompts missing from it are computed with ultralytics' CLIP ViT-B/32 text
    encoder when that works offline, and the cache is rewritten. Otherwise a :class:`WeightsMissingError`.
    """
    import torch

    from facesr.weights import find_weight, weights_dir as wdir

    prompts = list(prompts)
    cache_path = find_weight(YOLOWORLD_EMBEDDINGS, weights_dir)
    cached: dict[str, torch.Tensor] = {}
    if cache_path is not None:
        blob = torch.load(cache_path, map_location="cpu", weights_only=True)
        cached = {p: e for p, e in zip(blob["prompts"], blob["embeddings"], strict=True)}
    missing = [p for p in prompts if p not in cached]
    if missing:
        root = wdir(weights_dir)
        if not compute:
            raise WeightsMissingError(f"no cached text embeddings for {missing} in {root / YOLOWORLD_EMBEDDINGS}")
        try:
            _import_ultralytics()
            from ultralytics.nn.text_model import build_text_model

            clip = build_text_model("clip:ViT-B/32", device=torch.device("cpu"))
            with torch.no_grad():
                feats = clip.encode_text(clip.tokenize(missing)).float().cpu()
        except Exception as exc:  # CLIP missing or its weights not downloadable offline
            raise WeightsMissingError(
                f"YOLO-World text embeddings for {missing} are not cached in {root / YOLOWORLD_EMBEDDINGS} "
                f"and CLIP could not compute them ({type(exc).__name__}: {exc})",
                hint="install CLIP with its ViT-B/32 weights once, or copy the cache file there; "
                "offline alternative: --detector landmarks",
            ) from None
        for p, e in zip(missing, feats, strict=True):
            cached[p] = e
        root.mkdir(parents=True, exist_ok=True)
        names = sorted(cached)
        torch.save({"prompts": names, "embeddings": torch.stack([cached[n] for n in names]), "clip": "ViT-B/32"},
                   root / YOLOWORLD_EMBEDDINGS)
    emb = torch.stack([cached[p].float() for p in prompts])
    return torch.nn.functional.normalize(emb, dim=-1)


@DETECTORS.register("yoloworld")
class YoloWorldDetector(LazyNetwork):
    """YOLO-World part detector (ultralytics), batched over a chunk.

    Args:
        version: ``"v1"`` (``yolov8s-world.pt``, the notebook's; default) or ``"v2"`` (``yolov8s-worldv2.pt``).
        weights_dir: the facesr weights directory (default: ``$FACESR_WEIGHTS`` / ``~/.cache/facesr/weights``).
        imgsz: letterbox size (released: 640). conf, iou, max_det: NMS settings (released: 0.001, 0.1; 300).
        device: ``"cpu"``, ``"cuda:0"``...; default cuda when available. half: fp16 on cuda.
        batch: images per forward pass (a chunk is split into batches of this size).
        prompts: ``(text, facesr class)`` pairs; model class ``i`` maps to ``CLASS_ID[prompts[i][1]]``.
        model: an already built ``ultralytics`` YOLO-World object (its class order must follow ``prompts``).
        text_embeddings: ``(K, 512)`` class embeddings for ``model``.

    Offline tests use :class:`RandomYoloWorldDetector` (registry name ``yoloworld-random``).
    """

    name = "yoloworld"
    needs_weights = True

    def __init__(
        self,
        *,
        version: str = YOLOWORLD_DEFAULT_VERSION,
        weights_dir: str | os.PathLike | None = None,
        imgsz: int = 640,
        conf: float = 0.001,
        iou: float = 0.1,
        max_det: int = 300,
        device: str | None = None,
        half: bool = False,
        batch: int = 32,
        prompts: Sequence[tuple[str, str]] = DEFAULT_PROMPTS,
        model=None,
        text_embeddings=None,
    ) -> None:
        if version not in YOLOWORLD_VERSIONS:
            raise ConfigError(f"unknown YOLO-World version {version!r}", hint=f"one of {', '.join(YOLOWORLD_VERSIONS)}")
        self.version = version
        self.weights_file, self.yaml_file = YOLOWORLD_VERSIONS[version]
        self.prompts = tuple((str(t), str(c)) for t, c in prompts)
        for _, c in self.prompts:
            if c not in CLASS_ID:
                raise ConfigError(f"prompt class {c!r} is not a part class", hint=f"known: {', '.join(PART_CLASSES)}")
        if imgsz % 32 or imgsz <= 0 or not 0 <= conf <= 1 or not 0 <= iou <= 1 or max_det < 1 or batch < 1:
            raise ConfigError(f"bad YOLO-World settings imgsz={imgsz} conf={conf} iou={iou} max_det={max_det}")
        self.imgsz, self.conf, self.iou, self.max_det = int(imgsz), float(conf), float(iou), int(max_det)
        self.device, self.half, self.batch = device, bool(half), int(batch)
        self.weights_dir = weights_dir
        self._custom_emb = None  # (K, 512) set through set_text_embeddings; survives pickling
        self._emb = None  # (K, 512) CLIP embeddings of the prompts (real weights only)
        self._model = model
        self.class_map = np.array([CLASS_ID[c] for _, c in self.prompts], np.float32)
        if model is None:
            self._find_weights(weights_dir)
        if model is not None and text_embeddings is not None:
            self.set_text_embeddings(text_embeddings)

    # -- construction -------------------------------------------------------------------------------

    def _find_weights(self, weights_dir) -> None:
        self._require_weights(self.weights_file, what=f"YOLO-World {self.version}", alternative="--detector landmarks",
                              weights_dir=weights_dir)
        # fail fast (here, not in a worker): the prompts' embeddings must be cached or computable
        self._emb = load_text_embeddings([t for t, _ in self.prompts], weights_dir)

    def _network(self):
        """(ultralytics YOLO, (K, 512) prompt embeddings) from the weight file."""
        return _import_ultralytics()(str(self._weights)), self._emb

    def _build(self):
        yolo, emb = self._network()
        self._set_classes(yolo, emb if self._custom_emb is None else self._custom_emb)
        return yolo

    def set_text_embeddings(self, emb) -> None:
        """Replace the model's class embeddings by ``(K, 512)`` ones in ``prompts`` order (L2-normalised here)."""
        import torch

        self._set_classes(self.model, emb)
        self._custom_emb = torch.as_tensor(emb, dtype=torch.float32).reshape(-1, 512).clone()

    def text_embeddings(self):
        """The model's current ``(K, 512)`` class embeddings (torch, CPU)."""
        return self.model.model.txt_feats.detach().reshape(-1, 512).cpu().clone()

    def _set_classes(self, yolo, emb) -> None:
        """Inject ``(K, 512)`` embeddings the way ``set_classes`` would, without CLIP."""
        import torch

        emb = torch.as_tensor(emb, dtype=torch.float32)
        if emb.numel() != 512 * len(self.prompts):
            raise ConfigError(f"need {len(self.prompts)} text embeddings of size 512; got {tuple(emb.shape)}")
        emb = torch.nn.functional.normalize(emb.reshape(1, -1, 512), dim=-1)
        yolo.model.txt_feats = emb
        yolo.model.model[-1].nc = emb.shape[1]
        yolo.model.names = {i: t for i, (t, _) in enumerate(self.prompts)}
        yolo.predictor = None

    # -- interface ----------------------------------------------------------------------------------

    def config(self) -> dict:
        return {
            "name": self.name,
            "version": 1,
            "yoloworld": self.version,
            **self._weights_config(self.weights_file),
            "prompts": [list(p) for p in self.prompts],
            "text_embeddings": self._embedding_tag(),
            "imgsz": self.imgsz,
            "conf": self.conf,
            "iou": self.iou,
            "max_det": self.max_det,
            "half": self.half,
            "channel_order": "bgr",
        }

    def _embedding_tag(self) -> str:
        if self._custom_emb is not None:
            return "custom:" + hashlib.sha256(self._custom_emb.numpy().tobytes()).hexdigest()[:16]
        if self.seed is not None:
            return f"random:{self.seed}"
        if self._emb is not None:
            return "clip:ViT-B/32:" + hashlib.sha256(self._emb.numpy().tobytes()).hexdigest()[:16]
        return "injected"

    def detect(self, images: np.ndarray, landmarks: np.ndarray | None = None) -> list[np.ndarray]:
        """Boxes for a chunk ``(B, H, W, 3)`` uint8 RGB; ``landmarks`` is ignored."""
        from facesr.runtime import restore_threads

        imgs = check_images(images)
        h, w = imgs.shape[1:3]
        yolo, device = self.model, default_device(self.device)
        out: list[np.ndarray] = []
        for start in range(0, len(imgs), self.batch):
            # ultralytics reads numpy arrays as OpenCV BGR: flip RGB → BGR (contiguous copies)
            src = [np.ascontiguousarray(im[..., ::-1]) for im in imgs[start : start + self.batch]]
            results = yolo.predict(
                src,
                imgsz=self.imgsz,
                conf=self.conf,
                iou=self.iou,
                max_det=self.max_det,
                device=device,
                half=self.half,
                verbose=False,
            )
            restore_threads()  # ultralytics' select_device drops torch to cpu_count - 1 threads on CPU
            for r in results:
                data = r.boxes.data.detach().float().cpu().numpy().reshape(-1, 6)
                boxes = data.astype(np.float32, copy=True)
                boxes[:, 5] = self.class_map[data[:, 5].astype(np.int64)]
                out.append(clip_boxes(boxes, h, w))
        return out


@DETECTORS.register("yoloworld-random")
class RandomYoloWorldDetector(YoloWorldDetector):
    """YOLO-World with random weights (the version's yaml, seeded) and random L2-normalised text
    embeddings: offline, for tests and timing; no weight file. With ``zero_class_bias`` the contrastive heads'
    −10 biases are zeroed so boxes pass small confidence thresholds. Other arguments as
    :class:`YoloWorldDetector`."""

    name = "yoloworld-random"
    needs_weights = False

    def __init__(self, *, seed: int = 0, zero_class_bias: bool = True, **settings) -> None:
        # settings: YoloWorldDetector's, with its defaults, less the weight ones (checked like a signature's)
        type(self).__signature__.bind(seed=seed, zero_class_bias=zero_class_bias, **settings)
        self.seed, self.zero_class_bias = int(seed), bool(zero_class_bias)
        super().__init__(**settings)

    def _find_weights(self, weights_dir) -> None:
        self._weights = None

    def _network(self):
        import torch

        YOLO = _import_ultralytics()
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            yolo = YOLO(self.yaml_file)
            emb = torch.nn.functional.normalize(torch.randn(len(self.prompts), 512), dim=-1)
        if self.zero_class_bias:
            for mod in yolo.model.modules():
                if type(mod).__name__ in ("BNContrastiveHead", "ContrastiveHead"):
                    mod.bias.data.zero_()
        return yolo, emb

    def config(self) -> dict:
        return {**super().config(), "zero_class_bias": self.zero_class_bias}


# The one place the settings of the random variant are declared: seed, zero_class_bias, then the parent's
# keyword options less weights_dir / model / text_embeddings (the registry checks options against it).
RandomYoloWorldDetector.__signature__ = inspect.Signature([
    inspect.Parameter("seed", inspect.Parameter.KEYWORD_ONLY, default=0, annotation="int"),
    inspect.Parameter("zero_class_bias", inspect.Parameter.KEYWORD_ONLY, default=True, annotation="bool"),
    *(p for name, p in inspect.signature(YoloWorldDetector.__init__).parameters.items()
      if name not in ("self", "weights_dir", "model", "text_embeddings")),
], return_annotation="None")
