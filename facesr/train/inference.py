"""Load a trained run and super-resolve: a store split, a folder of LR faces, tiny crops, real photos.

:func:`load_run` takes a run folder (``checkpoints/best``, falling back to ``last``; EMA weights when the
run has them) or a checkpoint folder, rebuilds the model from the run's ``config.yaml`` and returns a
:class:`Predictor`. All pixel I/O is uint8 RGB ``H×W×3``; the model sees ``[0, 1]`` tensors.

Photos (:meth:`Predictor.photo`), the same chain as the data pipeline so a photo looks like training data:
dlib finds the largest face and its 68 points (:class:`facesr.priors.landmarks.DlibLandmarker`, no
fallback box; photos up to 640 px that show no face at upsample 1 are searched again at upsample 2; a
miss is a :class:`DatasetError`), :func:`facesr.data.crop.crop_transform` aligns it to the
128×128 template crop (antialiased warp), :func:`facesr.data.degrade.degrade` makes the LR input with the
run's own LR spec (``data.lr``, e.g. ``bicubic-pil_16``), the model super-resolves it, and the SR face is
warped back with the inverse transform and blended through a feathered mask (1 inside, a Gaussian ramp
over the outer ~12 % of the crop, 0 outside). The photo is first upscaled (bicubic) by ``scale`` so the
face is pasted at the SR resolution: ``scale="auto"`` is the crop's pixels per photo pixel, rounded, in
[1, 8] (a 40-px face gets ×3); a face already larger than 128 px is pasted at photo scale.

Tiny crops (:meth:`Predictor.tiny`): an image whose longer side is ≤ 32 px is taken as an LR face as is
(resized with PIL bicubic to the model's LR side if it differs) and returned as the 128×128 SR face.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facesr.errors import ConfigError, DatasetError
from facesr.train import checkpoint as ckpt

TINY_MAX = 32  # an input with max(h, w) <= this is an LR face, not a photo

__all__ = ["PhotoResult", "Predictor", "StoreEvaluation", "TINY_MAX", "evaluate_store", "feather_mask", "load_run",
           "predict_arrays", "predict_store"]


@dataclass(frozen=True)
class PhotoResult:
    image: np.ndarray  # the photo (upscaled by `scale`) with the SR face pasted in
    face_lr: np.ndarray  # the LR face the model saw
    face_sr: np.ndarray  # the 128×128 SR face
    matrix: np.ndarray  # 2×3, photo pixels (original scale) → crop pixels
    scale: int
    face_px: float  # side of the aligned face crop in photo pixels: above the LR size, detail is thrown away


class Predictor:
    """A trained model ready to super-resolve (eval mode, no grad)."""

    def __init__(self, model, cfg, folder: Path, device: torch.device, weights: str, state: dict) -> None:
        from facesr.train.trainer import lr_size

        self.model = model.eval()
        self.cfg = cfg
        self.folder = folder
        self.device = device
        self.weights = weights  # "ema" or "model"
        self.state = state
        self.lr_spec = cfg.data.lr
        self.lr_size = lr_size(cfg.data.lr)
        self.hr_size = 128
        self._landmarkers: dict[int, object] = {}

    def __repr__(self) -> str:
        st = self.state.get("train", {})
        return (f"Predictor({self.cfg.model.name}, {self.folder}, {self.weights} weights, epoch {st.get('epoch')}, "
                f"step {st.get('step')}, LR {self.lr_spec})")

    @torch.no_grad()
    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """``(B, 3, s, s)`` in [0, 1] → SR ``(B, 3, 128, 128)`` in [0, 1] (clamped)."""
        from facesr.models import sr_of

        out = sr_of(self.model(lr.to(self.device, torch.float32)))
        return out.float().clamp(0, 1)

    def predict_uint8(self, lr: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 ``(B, s, s, 3)`` or ``(s, s, 3)`` → uint8 ``(B, 128, 128, 3)`` (or one image)."""
        one = lr.ndim == 3
        arr = lr[None] if one else lr
        if arr.shape[1:3] != (self.lr_size, self.lr_size):
            raise ConfigError(f"the model takes {self.lr_size}×{self.lr_size} LR faces, got {arr.shape[1:3]}")
        outs = []
        for i in range(0, len(arr), batch_size):
            t = torch.from_numpy(np.array(arr[i : i + batch_size])).permute(0, 3, 1, 2).float() / 255.0
            outs.append(to_uint8(self.predict(t)))
        out = np.concatenate(outs)
        return out[0] if one else out

    # ------------------------------------------------------------------------------------- inputs
    def tiny(self, img: np.ndarray) -> np.ndarray:
        """An LR face (≤ 32 px) → 128×128 SR face (resized to the model's LR side first if needed)."""
        img = _rgb(img)
        if img.shape[:2] != (self.lr_size, self.lr_size):
            from PIL import Image

            img = np.asarray(Image.fromarray(img).resize((self.lr_size, self.lr_size), Image.BICUBIC))
        return self.predict_uint8(img)

    def photo(self, img: np.ndarray, *, landmarker=None, scale: int | str = "auto", landmarks=None) -> PhotoResult:
        """Detect, align, degrade, super-resolve and paste back one face of a photo (see module docstring)."""
        import cv2

        from facesr.data.crop import crop_transform, warp
        from facesr.data.degrade import degrade

        img = _rgb(img)
        if landmarks is None:
            landmarker = landmarker if landmarker is not None else self._landmarker(1)
            landmarks = landmarker([img])[0]
            if not np.isfinite(landmarks).all() and max(img.shape[:2]) <= 640:
                # small photos: dlib's HOG finds faces ≥ ~40 px at upsample 1; look again at 2 (≥ ~20 px)
                landmarks = self._landmarker(2)([img])[0]
        if not np.isfinite(landmarks).all():
            raise DatasetError("no face found", hint="crop the face yourself and pass the crop (≤ 32 px is taken as LR)")
        m = crop_transform(landmarks, self.hr_size, "template")
        face = warp(img, m, self.hr_size, "replicate")
        lr = degrade(face, self.lr_spec)
        sr = self.predict_uint8(lr)
        px = float(np.sqrt(abs(np.linalg.det(m[:, :2]))))  # crop pixels per photo pixel
        s = int(min(8, max(1, round(px)))) if scale == "auto" else int(scale)
        h, w = img.shape[:2]
        big = img if s == 1 else cv2.resize(img, (w * s, h * s), interpolation=cv2.INTER_CUBIC)
        ms = m.copy()
        ms[:, :2] /= s  # big-photo pixels → crop pixels (pixel centres: (x + 0.5)/s − 0.5)
        ms[:, 2] += m[:, :2].sum(axis=1) * (0.5 / s - 0.5)
        flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
        back = cv2.warpAffine(sr, ms, (big.shape[1], big.shape[0]), flags=flags, borderMode=cv2.BORDER_REPLICATE)
        mask = cv2.warpAffine(feather_mask(self.hr_size), ms, (big.shape[1], big.shape[0]), flags=flags,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
        out = (mask * back.astype(np.float32) + (1.0 - mask) * big.astype(np.float32)).round().clip(0, 255)
        return PhotoResult(out.astype(np.uint8), lr, sr, m, s, self.hr_size / px)

    def _landmarker(self, upsample: int):
        """dlib face finder + 68 points at ``upsample``, built once per Predictor (loading it is slow)."""
        if upsample not in self._landmarkers:
            from facesr.priors.landmarks import DlibLandmarker

            self._landmarkers[upsample] = DlibLandmarker(upsample=upsample, fallback=None)
        return self._landmarkers[upsample]

    def image(self, img: np.ndarray, **kw) -> tuple[str, np.ndarray]:
        """``("tiny", SR face)`` for an image ≤ 32 px, else ``("photo", pasted photo)``."""
        img = _rgb(img)
        if max(img.shape[:2]) <= TINY_MAX:
            return "tiny", self.tiny(img)
        return "photo", self.photo(img, **kw).image


def feather_mask(size: int = 128, margin: float = 0.12) -> np.ndarray:
    """float32 ``size×size`` blending mask: 1 in the middle, a smooth ramp to 0 over the outer ``margin``."""
    import cv2

    k = max(1, int(round(size * margin)))
    mask = np.zeros((size, size), np.float32)
    mask[k:-k, k:-k] = 1.0
    sigma = k / 2.0
    ks = 2 * int(3 * sigma) + 1
    return cv2.GaussianBlur(mask, (ks, ks), sigma, borderType=cv2.BORDER_CONSTANT)


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """``(B, 3, H, W)`` [0, 1] → uint8 ``(B, H, W, 3)``, quantised like the metrics (``floor(255x + 0.5)``)."""
    return (x.clamp(0, 1) * 255.0 + 0.5).floor().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def _rgb(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 RGB image, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def load_run(path: str | os.PathLike, which: str = "best", device: str = "auto", prefer_ema: bool = True) -> Predictor:
    """A :class:`Predictor` from a run folder (``which``: best → last) or a checkpoint folder."""
    import yaml

    from facesr import models
    from facesr.train.config import load_config
    from facesr.train.distributed import DistInfo
    from facesr.train.trainer import resolve_device

    folder = ckpt.find(path, which)
    run = folder.parent.parent
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"{cfg_path} not found", hint="pass a run folder written by `facesr train --out RUN`")
    cfg = load_config(base=yaml.safe_load(cfg_path.read_text()))
    dev = resolve_device(device, DistInfo())
    model = models.build(cfg.model.name, **cfg.model.args)
    sd, kind = ckpt.load_generator(folder, prefer_ema)
    model.load_state_dict(sd)
    return Predictor(model.to(dev), cfg, folder, dev, kind, ckpt.load_state(folder))


def predict_store(pred: Predictor, store, split: str = "test", batch_size: int = 32,
                  limit: int = 0) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(indices, lr uint8, sr uint8, hr uint8)`` batches over a split, in store order, with the run's LR."""
    from facesr.data.loader import StoreEvalDataset

    ds = StoreEvalDataset(store, split, lr=pred.lr_spec, priors=(), batch_size=batch_size, rank=0, world_size=1,
                          raw=True)
    seen = 0
    for raw in ds:
        idx = raw["index"].numpy()
        lr = raw["lr"].numpy()
        hr = raw["hr"].numpy()
        if limit:
            k = min(len(idx), limit - seen)
            idx, lr, hr = idx[:k], lr[:k], hr[:k]
        sr = pred.predict_uint8(lr, batch_size=batch_size)
        yield idx, lr, sr, hr
        seen += len(idx)
        if limit and seen >= limit:
            break
    if not seen:  # here, once, for every caller
        raise DatasetError(f"split {split!r} of {getattr(store, 'path', store)} has no usable samples")


def predict_arrays(pred: Predictor, store, split: str = "test", batch_size: int = 32,
                   limit: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, lr, sr, hr)``: a whole split super-resolved, uint8 stacks in store order (what
    ``facesr eval --checkpoint`` scores; ``lr`` for its bicubic baseline)."""
    from facesr.data.store import FaceStore

    st = store if isinstance(store, FaceStore) else FaceStore.open(store)
    ids, lrs, srs, hrs = [], [], [], []
    for idx, lr, sr, hr in predict_store(pred, st, split, batch_size, limit):
        ids.extend(st.ids[idx].tolist())
        lrs.append(lr)
        srs.append(sr)
        hrs.append(hr)
    return ids, np.concatenate(lrs), np.concatenate(srs), np.concatenate(hrs)


@dataclass(frozen=True)
class StoreEvaluation:
    """Per-image scores of a run on a store split, and of the bicubic baseline on the same LR faces."""

    protocol: str
    ids: np.ndarray
    model: object  # facesr.metrics.protocols.Scores
    bicubic: object  # Scores
    grid: np.ndarray  # uint8: one row per image (first `grid_n`), LR (nearest) | bicubic | SR | HR


def evaluate_store(pred: Predictor, store, split: str = "test", protocol: str = "dic", batch_size: int = 32,
                   limit: int = 0, grid_n: int = 8, sr_dir: str | os.PathLike | None = None) -> StoreEvaluation:
    """Super-resolve a split and score it with the numpy protocol metrics (``facesr.metrics.protocols``).

    The bicubic baseline is PIL bicubic of the same LR (``facesr.data.degrade.upscale_back``). ``sr_dir``:
    also write each SR face as ``<id>.png`` there (lossless), for ``facesr eval --pred``.
    """
    from facesr.data.degrade import upscale_back
    from facesr.data.images import write_png
    from facesr.data.store import FaceStore
    from facesr.metrics.protocols import Scores, get_protocol, psnr_ssim

    st = store if isinstance(store, FaceStore) else FaceStore.open(store)
    p = get_protocol(protocol)
    ids_all = st.ids
    ids, mp, ms, bp, bs, rows = [], [], [], [], [], []
    for idx, lr, sr, hr in predict_store(pred, st, split, batch_size, limit):
        bic = np.stack([upscale_back(x, hr.shape[1]) for x in lr])
        s_m = psnr_ssim(sr, hr, p)
        s_b = psnr_ssim(bic, hr, p)
        mp.append(s_m.psnr), ms.append(s_m.ssim), bp.append(s_b.psnr), bs.append(s_b.ssim)
        ids.extend(ids_all[idx].tolist())
        if sr_dir is not None:
            for i, img in zip(idx, sr):
                write_png(Path(sr_dir) / f"{ids_all[i]}.png", img)
        for k in range(len(idx)):
            if len(rows) < grid_n:
                up = np.repeat(np.repeat(lr[k], hr.shape[1] // lr.shape[1], 0), hr.shape[2] // lr.shape[2], 1)
                rows.append(np.concatenate([up, bic[k], sr[k], hr[k]], axis=1))
    model = Scores(p.name, np.concatenate(mp), np.concatenate(ms))
    bicubic = Scores(p.name, np.concatenate(bp), np.concatenate(bs))
    return StoreEvaluation(p.name, np.asarray(ids), model, bicubic, np.concatenate(rows, axis=0))
