"""Face parsers: an HR batch → a class map per image, plus the pure helpers W-Net training uses (seed 001).

Interface (every entry of :data:`PARSERS`)::

    parser = PARSERS.build("bisenet")             # or "landmarks"
    parser.name, parser.config() -> dict          # JSON-able; everything that changes the output
    parser.parse(images, landmarks=None) -> (B, H, W) uint8 class ids in PARSING_CLASSES

``images`` ``(B, H, W, 3)`` uint8 RGB; ``landmarks`` ``(B, 68, 2)`` float32, NaN where no face.

Stored class ids (:data:`PARSING_CLASSES`): 0 other, 1 skin, 2 eyebrows, 3 eyes, 4 nose, 5 mouth.

* ``bisenet`` — facexlib's BiSeNet (19 CelebAMask-HQ classes, ``parsing_bisenet.pth`` from the weights
  directory). Input resized to 512×512 (bilinear, antialiased when shrinking), ImageNet mean/std, RGB;
  19-class argmax at 512, mapped to facesr ids (skin 1 → 1; brows {2, 3} → 2; eyes {4, 5} → 3; nose
  {10} → 4; mouth and lips {11, 12, 13} → 5; all else 0), then resized back to H×W with nearest.
* ``bisenet-random`` — the same network with seeded random weights (offline tests, timing).
* ``landmarks`` — polygons from the 68 points rasterised with ``cv2.fillPoly`` (offline alternative).

W-Net (§3.1) uses the binarised map: skin = 1, everything else (features, background) = 0; its LR ground
truth is a bicubic downsample of that HR binary map (§4.2): :func:`lr_parsing`.
"""

from __future__ import annotations

import os
import cv2
import numpy as np

from facesr.errors import ConfigError
from facesr.metrics.backbones import IMAGENET_MEAN, IMAGENET_STD  # BiSeNet's input normalisation
from facesr.priors.provider import LazyNetwork, check_images, check_landmarks, default_device
from facesr.registry import Registry

PARSING_CLASSES: tuple[str, ...] = ("other", "skin", "eyebrows", "eyes", "nose", "mouth")
PARSING_ID: dict[str, int] = {n: i for i, n in enumerate(PARSING_CLASSES)}
COMPONENTS: tuple[str, ...] = ("eyebrows", "eyes", "nose", "mouth")

BISENET_WEIGHTS = "parsing_bisenet.pth"
BISENET_PARAMS = 13_300_416
#: facexlib BiSeNet's 19 CelebAMask-HQ labels → facesr parsing ids.
BISENET_TO_FACESR = np.zeros(19, np.uint8)
BISENET_TO_FACESR[1] = 1
BISENET_TO_FACESR[[2, 3]] = 2
BISENET_TO_FACESR[[4, 5]] = 3
BISENET_TO_FACESR[10] = 4
BISENET_TO_FACESR[[11, 12, 13]] = 5
PARSERS: Registry = Registry("parser")

__all__ = [
    "BISENET_TO_FACESR",
    "COMPONENTS",
    "PARSERS",
    "PARSING_CLASSES",
    "BiSeNetParser",
    "LandmarkParser",
    "RandomBiSeNetParser",
    "binary_skin",
    "component_masks",
    "LR_METHODS",
    "lr_parsing",
    "parse_from_landmarks",
]


# --------------------------------------------------------------------------------------- pure helpers


def binary_skin(class_map: np.ndarray) -> np.ndarray:
    """W-Net's binary parsing map (§3.1): ``(H, W)`` float32, 1 on skin, 0 on features and background.
    Works on any leading shape."""
    return (np.asarray(class_map) == PARSING_ID["skin"]).astype(np.float32)


def component_masks(class_map: np.ndarray) -> dict[str, np.ndarray]:
    """Key-region masks for the W-Net key loss (eq. 27): name → bool array, for eyebrows, eyes, nose, mouth."""
    cm = np.asarray(class_map)
    return {name: cm == PARSING_ID[name] for name in COMPONENTS}


LR_METHODS = ("bicubic-pil", "bicubic-matlab", "cv2-cubic")


def lr_parsing(binary_map: np.ndarray, size: int | tuple[int, int], method: str = "bicubic-pil") -> np.ndarray:
    """Bicubic downsample of an HR binary map (§4.2) to ``size`` (``int`` or ``(h, w)``), float32 in [0, 1].

    §4.2 makes the LR parsing maps "using bicubic interpolation", like the LR images, so the methods
    mirror :mod:`facesr.data.degrade` but in float (a binary map must not be rounded to uint8):

    * ``"bicubic-pil"`` (default): Pillow's bicubic on a float (mode ``F``) image — Keys a = −0.5,
      antialiased when shrinking; the filter of degrade's ``bicubic-pil`` (the DIC/SPARNet LR sets);
    * ``"bicubic-matlab"``: ``facesr.data.degrade.imresize_matlab`` (MATLAB ``imresize``; on a float map it
      agrees with ``bicubic-pil`` to float precision away from the border, where MATLAB mirrors);
    * ``"cv2-cubic"``: ``cv2.resize(..., INTER_CUBIC)`` — plain interpolation, no antialiasing prefilter
      (a = −0.75); at ×8 it samples rather than averages, so the map stays nearly binary.

    The bicubic over/undershoot at edges is clipped to [0, 1]. Accepts ``(H, W)`` or ``(B, H, W)``.
    """
    arr = np.asarray(binary_map, np.float32)
    h, w = (size, size) if isinstance(size, (int, np.integer)) else (int(size[0]), int(size[1]))
    if method not in LR_METHODS:
        raise ConfigError(f"unknown lr_parsing method {method!r}", hint=f"known: {', '.join(LR_METHODS)}")
    if arr.ndim == 3:
        return np.stack([lr_parsing(a, (h, w), method) for a in arr]) if len(arr) else np.zeros((0, h, w), np.float32)
    if arr.ndim != 2:
        raise ConfigError(f"binary map must be (H, W) or (B, H, W); got {arr.shape}")
    if method == "cv2-cubic":
        out = cv2.resize(arr, (w, h), interpolation=cv2.INTER_CUBIC)
    elif method == "bicubic-pil":
        from PIL import Image

        out = np.asarray(Image.fromarray(np.ascontiguousarray(arr)).resize((w, h), Image.Resampling.BICUBIC))
    else:
        from facesr.data.degrade import imresize_matlab

        out = imresize_matlab(arr, (h, w))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------------------- landmarks


def parse_from_landmarks(points: np.ndarray, height: int, width: int, brow_frac: float = 0.04) -> np.ndarray:
    """``(H, W)`` uint8 class map from 68 points (all zeros if any point is NaN).

    Skin: convex hull of jaw + brows (0–26), then drawn on top: eyebrows as polylines 17–21 / 22–26 of
    thickness ``max(1, round(brow_frac·face width))``; eyes 36–41 / 42–47; nose as the hull of 27–35; mouth
    as the outer lip 48–59.
    """
    out = np.zeros((height, width), np.uint8)
    pts = np.asarray(points, np.float32).reshape(68, 2)
    if not np.isfinite(pts).all():
        return out
    # fixed-point for sub-pixel accuracy
    shift = 4
    ip = np.round(pts * (1 << shift)).astype(np.int32)

    def poly(idx):
        return ip[list(idx)].reshape(-1, 1, 2)

    hull = cv2.convexHull(poly(range(0, 27)))
    cv2.fillPoly(out, [hull], PARSING_ID["skin"], lineType=cv2.LINE_8, shift=shift)
    fw = float(np.ptp(pts[0:17, 0]))
    thick = max(1, int(round(brow_frac * fw)))
    for idx in (range(17, 22), range(22, 27)):
        cv2.polylines(out, [poly(idx)], False, PARSING_ID["eyebrows"], thickness=thick, lineType=cv2.LINE_8,
                      shift=shift)
    cv2.fillPoly(out, [cv2.convexHull(poly(range(27, 36)))], PARSING_ID["nose"], shift=shift)
    for idx in (range(36, 42), range(42, 48)):
        cv2.fillPoly(out, [poly(idx)], PARSING_ID["eyes"], shift=shift)
    cv2.fillPoly(out, [poly(range(48, 60))], PARSING_ID["mouth"], shift=shift)
    return out


@PARSERS.register("landmarks")
class LandmarkParser:
    """Class maps rasterised from 68-point landmarks (:func:`parse_from_landmarks`); needs ``landmarks``."""

    name = "landmarks"
    needs_weights = False

    def __init__(self, *, brow_frac: float = 0.04) -> None:
        self.brow_frac = float(brow_frac)

    def config(self) -> dict:
        return {"name": self.name, "version": 1, "brow_frac": self.brow_frac}

    def parse(self, images: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        imgs = check_images(images)
        lm = check_landmarks(landmarks, len(imgs), who="landmarks parser")
        h, w = imgs.shape[1:3]
        return np.stack([parse_from_landmarks(p, h, w, self.brow_frac) for p in lm]) if len(imgs) else np.zeros(
            (0, h, w), np.uint8
        )


# --------------------------------------------------------------------------------------- BiSeNet


def _bisenet_class():
    from facesr.runtime import offline_env

    offline_env()
    from facexlib.parsing.bisenet import BiSeNet

    return BiSeNet


@PARSERS.register("bisenet")
class BiSeNetParser(LazyNetwork):
    """facexlib BiSeNet face parsing, batched over a chunk (see the module docstring for the recipe).

    Args:
        weights_dir: facesr weights directory holding ``parsing_bisenet.pth``.
        size: network input size (512 as released; must be a multiple of 32).
        device: default cuda when available. batch: images per forward pass.
        model: an already built ``BiSeNet(num_class=19)``.

    Offline tests use :class:`RandomBiSeNetParser` (registry name ``bisenet-random``).
    """

    name = "bisenet"
    needs_weights = True

    def __init__(
        self,
        *,
        weights_dir: str | os.PathLike | None = None,
        size: int = 512,
        device: str | None = None,
        batch: int = 16,
        model=None,
    ) -> None:
        if size % 32 or size <= 0 or batch < 1:
            raise ConfigError(f"BiSeNet size must be a positive multiple of 32 (got {size}); batch >= 1")
        self.size, self.device, self.batch = int(size), device, int(batch)
        self.weights_dir = weights_dir
        self._model = model
        self._weights = None
        if model is None:
            self._find_weights(weights_dir)

    def _find_weights(self, weights_dir) -> None:
        self._require_weights(BISENET_WEIGHTS, what="BiSeNet face parsing", alternative="--parser landmarks",
                              weights_dir=weights_dir)

    def _build(self):
        import torch

        from facesr.errors import WeightsInvalidError

        net = _bisenet_class()(num_class=19)
        try:  # junk, a truncated download or another network's file: one line naming the file
            state = torch.load(self._weights, map_location="cpu", weights_only=True)
            net.load_state_dict(state, strict=True)
        except Exception as exc:  # noqa: BLE001 - torch raises KeyError/UnpicklingError/RuntimeError/EOFError here
            raise WeightsInvalidError(
                f"{self._weights} is not facexlib's BiSeNet state dict ({type(exc).__name__}: {str(exc)[:120]})",
                hint="put facexlib's parsing_bisenet.pth there, or use --parser landmarks",
                path=str(self._weights)) from None
        return net.eval()

    def config(self) -> dict:
        return {
            "name": self.name,
            "version": 1,
            **self._weights_config(BISENET_WEIGHTS),
            "size": self.size,
            "mapping": BISENET_TO_FACESR.tolist(),
        }

    def logits(self, images: np.ndarray):
        """``(B, 19, size, size)`` float32 torch logits for a batch (on the model's device)."""
        import torch
        import torch.nn.functional as F

        dev = torch.device(default_device(self.device))
        net = self.model.to(dev)
        x = torch.from_numpy(np.ascontiguousarray(images)).to(dev).permute(0, 3, 1, 2).float().div_(255.0)
        if x.shape[-2:] != (self.size, self.size):
            shrink = x.shape[-1] > self.size or x.shape[-2] > self.size
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False, antialias=shrink)
        mean = torch.tensor(IMAGENET_MEAN, device=dev).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=dev).view(1, 3, 1, 1)
        with torch.inference_mode():
            return net((x - mean) / std)[0]

    def parse(self, images: np.ndarray, landmarks: np.ndarray | None = None) -> np.ndarray:
        """``(B, H, W)`` uint8 facesr class ids; ``landmarks`` is ignored."""
        import torch
        import torch.nn.functional as F

        imgs = check_images(images)
        b, h, w = imgs.shape[:3]
        out = np.zeros((b, h, w), np.uint8)
        lut = torch.from_numpy(BISENET_TO_FACESR)
        for start in range(0, b, self.batch):
            logits = self.logits(imgs[start : start + self.batch])
            labels = logits.argmax(1, keepdim=True).float()
            if (h, w) != (self.size, self.size):
                labels = F.interpolate(labels, size=(h, w), mode="nearest")
            out[start : start + len(labels)] = lut[labels[:, 0].long().cpu()].numpy()
        return out



@PARSERS.register("bisenet-random")
class RandomBiSeNetParser(BiSeNetParser):
    """BiSeNet with seeded random weights: offline, for tests and timing; no weight file. Other arguments as
    :class:`BiSeNetParser`."""

    name = "bisenet-random"
    needs_weights = False

    def __init__(self, *, seed: int = 0, size: int = 512, device: str | None = None, batch: int = 16) -> None:
        self.seed = int(seed)
        super().__init__(size=size, device=device, batch=batch)

    def _find_weights(self, weights_dir) -> None:
        self._weights = None

    def _build(self):
        import torch

        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            net = _bisenet_class()(num_class=19)
        return net.eval()
