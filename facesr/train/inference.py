"""Load a trained run and super-resolve: a store split, a folder of LR faces, tiny crops, real photos.

:func:`load_run` takes a run folder (``checkpoints/best``, falling back to ``last``; EMA weights when the
run has them) or a checkpoint folder, rebuilds the model from the run's ``config.yaml`` and returns a
:class:`Predictor`. All pixel I/O is uint8 RGB ``H×W×3``; the model sees ``[0, 1]`` tensors.
``load_run(..., self_ensemble=True)`` predicts with the mean of the eight flip/rot90 transforms (GVTNet+,
:mod:`facesr.train.ensemble`). :func:`evaluate_run` scores a run on a store split with the one evaluator
(:func:`facesr.metrics.evaluate.evaluate`), one result per input resolution.

Photos (detect every face, align, SR, paste back) are :mod:`facesr.train.photo`'s.

Tiny crops (:meth:`Predictor.tiny`): an image whose longer side is ≤ 32 px is taken as an LR face as is
(resized with PIL bicubic to the model's LR side if it differs) and returned as the 128×128 SR face.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from facesr.errors import ConfigError, StoreIncompleteError
from facesr.metrics.pixels import to_uint8
from facesr.train import checkpoint as ckpt

TINY_MAX = 32  # an input with max(h, w) <= this is an LR face, not a photo

__all__ = ["Predictor", "TINY_MAX", "evaluate_run", "load_run", "predict_arrays", "predict_store", "run_lr_specs"]


class Predictor:
    """A trained model ready to super-resolve (eval mode, no grad)."""

    def __init__(self, model, cfg, folder: Path, device: torch.device, weights: str, state: dict,
                 self_ensemble: bool = False) -> None:
        from facesr.runtime import lr_size

        self.model = model.eval()
        self.cfg = cfg
        self.folder = folder
        self.device = device
        self.weights = weights  # "ema" or "model"
        self.state = state
        self.lr_specs = run_lr_specs(cfg)  # several for a multi-resolution run (UFVNet)
        self.lr_spec = self.lr_specs[0]
        self.lr_size = lr_size(self.lr_spec)
        self.lr_sizes = tuple(lr_size(s) for s in self.lr_specs)
        self.self_ensemble = bool(self_ensemble)  # average the 8 flip/rot90 transforms (GVTNet+)
        self.hr_size = 128

    def __repr__(self) -> str:
        st = self.state.get("train", {})
        return (f"Predictor({self.cfg.model.name}, {self.folder}, {self.weights} weights, epoch {st.get('epoch')}, "
                f"step {st.get('step')}, LR {', '.join(self.lr_specs)}{', self-ensemble' if self.self_ensemble else ''})")

    @torch.no_grad()
    def predict(self, lr: torch.Tensor) -> torch.Tensor:
        """``(B, 3, s, s)`` in [0, 1] → SR ``(B, 3, 128, 128)`` in [0, 1] (clamped; with ``self_ensemble`` the
        mean of the eight flip/rot90 transforms, :func:`facesr.train.ensemble.self_ensemble`)."""
        from facesr.models import sr_of

        x = lr.to(self.device, torch.float32)
        if self.self_ensemble:
            from facesr.train.ensemble import self_ensemble

            return self_ensemble(lambda t: sr_of(self.model(t)).float(), x).clamp(0, 1)
        return sr_of(self.model(x)).float().clamp(0, 1)

    def predict_uint8(self, lr: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """uint8 ``(B, s, s, 3)`` or ``(s, s, 3)`` → uint8 ``(B, 128, 128, 3)`` (or one image)."""
        one = lr.ndim == 3
        arr = lr[None] if one else lr
        if arr.shape[1] != arr.shape[2] or arr.shape[1] not in self.lr_sizes:
            sizes = ", ".join(f"{s}×{s}" for s in self.lr_sizes)
            raise ConfigError(f"the model takes {sizes} LR faces, got {arr.shape[1:3]}")
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


def _rgb(img: np.ndarray) -> np.ndarray:
    a = np.asarray(img)
    if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected a uint8 H×W×3 RGB image, got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def load_run(path: str | os.PathLike, which: str = "best", device: str = "auto", prefer_ema: bool = True,
             self_ensemble: bool = False) -> Predictor:
    """A :class:`Predictor` from a run folder (``which``: best → last) or a checkpoint folder;
    ``self_ensemble``: predict with the eight-transform average (GVTNet+)."""
    import yaml

    from facesr import models
    from facesr.train.config import load_config
    from facesr.runtime import resolve_device

    folder = ckpt.find(path, which)
    run = folder.parent.parent
    cfg_path = run / "config.yaml"
    if not cfg_path.is_file():
        raise ConfigError(f"{cfg_path} not found", hint="pass a run folder written by `facesr train --out RUN`")
    cfg = load_config(base=yaml.safe_load(cfg_path.read_text()))
    dev = resolve_device(device)
    model = models.build(cfg.model.name, **cfg.model.args)
    sd, kind = ckpt.load_generator(folder, prefer_ema)
    model.load_state_dict(sd)
    return Predictor(model.to(dev), cfg, folder, dev, kind, ckpt.load_state(folder), self_ensemble=self_ensemble)


def run_lr_specs(cfg) -> list[str]:
    """The LR specs (store names, ``bicubic-pil_16``) a run was trained on. ``data.lr`` is one spec, a list
    or comma-separated specs (multi-resolution training), or a UFVNet set name (``MR8``: its sizes, bicubic)."""
    from facesr.data import schema
    from facesr.data.degrade import MR_SETS, mr_specs

    lr = cfg.data.lr
    items = [x.strip() for x in lr.split(",")] if isinstance(lr, str) else [str(x) for x in lr]
    out: list[str] = []
    for item in items:
        if item.upper() in MR_SETS:
            out += [s.name for s in mr_specs(item.upper())]
        elif item:
            out.append(schema.lr(item).name.split("/", 1)[1])
    if not out:
        raise ConfigError(f"the run's data.lr {lr!r} names no LR spec")
    return out


def predict_store(pred: Predictor, store, split: str = "test", batch_size: int = 32, limit: int = 0,
                  lr: str | None = None) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """``(indices, lr uint8, sr uint8, hr uint8)`` batches over a split, in store order (``lr``: which LR
    array, default the run's first)."""
    from facesr.metrics.sources import store_batches

    seen = 0
    for b in store_batches(store, split, lr or pred.lr_spec, batch_size=batch_size):
        idx, lr8, hr = b["index"], b["lr"], b["hr"]
        if limit:
            k = min(len(idx), limit - seen)
            idx, lr8, hr = idx[:k], lr8[:k], hr[:k]
        yield idx, lr8, pred.predict_uint8(lr8, batch_size=batch_size), hr
        seen += len(idx)
        if limit and seen >= limit:
            break


def predict_arrays(pred: Predictor, store, split: str = "test", batch_size: int = 32,
                   limit: int = 0) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, lr, sr, hr)``: a whole split super-resolved, uint8 stacks in store order."""
    from facesr.data.store import FaceStore

    st = store if isinstance(store, FaceStore) else FaceStore.open(store, snapshot="latest")
    parts = list(predict_store(pred, st, split, batch_size, limit))
    ids = st.ids[np.concatenate([p[0] for p in parts])].tolist()
    return ids, *(np.concatenate([p[k] for p in parts]) for k in (1, 2, 3))


def evaluate_run(pred: Predictor, store, split: str | None = None, protocols=("dic",), extras=(), *,
                 lr: str | list[str] | None = None, batch_size: int = 32, limit: int = 0, grid_n: int = 8,
                 sr_dir: str | os.PathLike | None = None, **kwargs) -> tuple[str, dict]:
    """Score a run on a store split with the one evaluator (:func:`facesr.metrics.evaluate.evaluate`),
    bicubic of the same LR as the baseline; ``(split, {lr_spec: EvalResult})``, one result per input
    resolution.

    ``split`` None: ``test`` when the store has one, else ``val``. ``lr``: the LR arrays to score (a spec,
    a list, or ``"all"`` for every ``lr/*`` array of the store); default the run's own specs — one for most
    runs, several for a multi-resolution run. ``sr_dir``: write the SR faces as ``<id>.png`` there (one
    sub-folder per resolution when there are several). ``kwargs`` go to ``evaluate`` (``weights_dir``,
    ``lpips_rand``, ``landmarker``, ``cache``).
    """
    from facesr.data import schema
    from facesr.data.store import FaceStore
    from facesr.metrics.evaluate import evaluate
    from facesr.metrics.sources import default_split, store_batches, store_lr_specs

    st = store if isinstance(store, FaceStore) else FaceStore.open(store, snapshot="latest")
    split = split or default_split(st)
    have = store_lr_specs(st)
    if lr == "all":
        specs = have
    else:
        specs = [schema.lr(s).name.split("/", 1)[1] for s in ([lr] if isinstance(lr, str) else lr or pred.lr_specs)]
    missing = [s for s in specs if s not in have]
    if missing or not specs:
        raise StoreIncompleteError(f"{getattr(st, 'path', st)} has no LR array {', '.join(missing) or '(none)'}",
                                   hint=f"LR arrays here: {', '.join(have) or 'none'}; add one with "
                                        "`facesr data prepare --lr …`", name=missing)
    parsing = "regions" in extras and schema.PARSING.name in st
    kwargs.setdefault("cache", {})
    results = {}
    for spec in specs:
        out = None if sr_dir is None else (Path(sr_dir) / spec if len(specs) > 1 else Path(sr_dir))
        batches = store_batches(st, split, spec, batch_size=batch_size, parsing=parsing)
        res = evaluate(pred.predict, batches, protocols, extras, limit=limit, grid_n=grid_n, device=pred.device,
                       sr_dir=out, **kwargs)
        res.settings = {"input": f"{spec} [{split}, {len(res.ids)} images]", **res.settings}
        results[spec] = res
    return split, results
