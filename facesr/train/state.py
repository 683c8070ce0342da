"""The loop's position (:class:`TrainState`), the RNG states, and saving / restoring a checkpoint of a run.

Exact resume (the rule): a checkpoint records ``epoch`` and ``batch``, the number of batches of that
epoch already trained on. The loader's order is a pure function of ``(seed, epoch, rank, world size,
num_workers)`` (:mod:`facesr.data.loader`), so resuming sets the epoch, draws and discards ``batch``
batches (reading them, not training on them), and only then restores the RNG states saved in the
checkpoint (:func:`set_rng_state`); the next batch and every random number after it are those of the
uninterrupted run. Exactness needs the same world size, ``num_workers``, device and thread count.

What a checkpoint holds (:mod:`facesr.train.checkpoint` writes the folder): the weight sets
(``model``/``ema``/``disc`` → safetensors), the training states (optimizer, scaler, schedulers and the RNG
→ ``train_state.safetensors`` + ``.json``, :mod:`facesr.train.safestate`) and ``state.json``
(:class:`TrainState` plus run facts). :func:`save_checkpoint` and :func:`restore` take the same two
mappings, so what is saved is what is restored.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facesr.errors import CheckpointError, ConfigError
from facesr.train import checkpoint as ckpt

__all__ = ["TrainState", "load_init", "load_into", "restore", "rng_state", "save_checkpoint", "seed_everything",
           "set_rng_state"]


@dataclass
class TrainState:
    """Everything about the loop's position that a checkpoint must restore (``state.json`` → ``train``)."""

    epoch: int = 0  # current epoch (0-based)
    step: int = 0  # optimizer steps done in total
    batch: int = 0  # batches of ``epoch`` already consumed
    best: float | None = None  # best monitored score (lower is better)
    best_epoch: int = -1
    bad: int = 0  # validations since the best one
    skipped: int = 0  # non-finite steps skipped in total
    nan_streak: int = 0
    finished: str = ""  # "" (running or stopped for budget) | epochs | early_stop
    bicubic: dict = field(default_factory=dict)  # baseline metrics on the val images

    def to_json(self) -> dict:
        return dict(self.__dict__)

    def count_step(self, skipped: bool, patience: int, terms: Mapping[str, float]) -> None:
        """One optimizer step done; a skipped (non-finite) one counts toward ``patience`` in a row, after
        which the run stops with a TrainingError."""
        self.step += 1
        if not skipped:
            self.nan_streak = 0
            return
        self.skipped += 1
        self.nan_streak += 1
        if self.nan_streak >= max(patience, 1):
            from facesr.errors import TrainingError

            raise TrainingError(f"{self.nan_streak} non-finite losses in a row at step {self.step} (epoch "
                                f"{self.epoch}; last terms {dict(terms)})",
                                hint="lower --set optim.lr, try --set amp=off, or --set optim.grad_clip=1.0")

    def track(self, score: float, min_delta: float = 0.0) -> bool:
        """Record a validation's monitored score (lower is better); True when it beats the best so far by more
        than ``min_delta`` (``val.min_delta``; seed 000's notebook: 1e-4), else one more bad validation."""
        improved = self.best is None or score < self.best - min_delta
        if improved:
            self.best, self.best_epoch, self.bad = score, self.epoch, 0
        else:
            self.bad += 1
        return improved

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TrainState:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# ------------------------------------------------------------------------------------------------ RNG
def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    try:
        version, internal, gauss = state["python"]
        random.setstate((int(version), tuple(int(v) for v in internal), gauss))
        np.random.set_state(tuple(state["numpy"]))
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"the checkpoint's RNG state cannot be restored ({exc})",
                              hint="resume from another checkpoint") from None


# ---------------------------------------------------------------------------------- save / restore
def save_checkpoint(folder: Path, *, weights: Mapping[str, Any], states: Mapping[str, Any], train: TrainState,
                    facts: Mapping[str, Any]) -> Path:
    """Write checkpoint ``folder``: ``weights`` (name → module with ``state_dict``), ``states`` (name → object
    with ``state_dict``: optimizer, scaler, scheduler), the RNG, ``train`` and run ``facts`` (model, LR …)."""
    ts: dict[str, Any] = {name: obj.state_dict() for name, obj in states.items()}
    ts["rng"] = rng_state()
    state = {"train": train.to_json(), **facts, "saved": time.strftime("%Y-%m-%dT%H:%M:%S")}
    meta = {"model": str(facts.get("model", "")), "step": train.step, "epoch": train.epoch}
    return ckpt.save(folder, weights={k: v.state_dict() for k, v in weights.items()}, state=state,
                     train_state=ts, metadata=meta)


def restore(folder: Path, *, weights: Mapping[str, Any], states: Mapping[str, Any]) -> tuple[TrainState, dict, dict | None]:
    """Load ``folder`` into ``weights`` / ``states`` (as :func:`save_checkpoint` names them).

    Returns ``(train state, state.json, RNG state or None)``; the RNG is restored by the caller once the
    resumed epoch's consumed batches are skipped. The generator is required; EMA and discriminator weights
    and each training state are loaded when the checkpoint has them.
    """
    saved = ckpt.load_state(folder)
    if not isinstance(saved.get("train"), dict):
        raise CheckpointError(f"{folder / ckpt.STATE} has no training position", hint="resume from another checkpoint")
    for name, obj in weights.items():
        sd = ckpt.load_weights(folder, name)
        if sd is not None or name == "model":
            load_into(obj, sd, f"--resume: the {name} weights of {folder}",
                      hint="resume with the run's own model settings (drop --model and --set model.*)")
    ts = ckpt.load_train_state(folder) or {}
    for name, obj in states.items():
        if name in ts:
            try:
                obj.load_state_dict(ts[name])
            except (KeyError, TypeError, ValueError, RuntimeError) as exc:
                raise CheckpointError(f"--resume: the {name} state of {folder} does not fit ({exc})",
                                      hint="resume with the run's own settings") from None
    return TrainState.from_json(saved["train"]), saved, ts.get("rng")


# --------------------------------------------------------------------------------- initialisation
def load_into(module, sd: Mapping[str, torch.Tensor] | None, what: str, *, strict: bool = True,
              hint: str | None = None):
    """``module.load_state_dict(sd)``, a mismatch being the user's ConfigError rather than a traceback."""
    if sd is None:
        raise CheckpointError(f"{what}: the weight file is missing", hint=hint)
    try:
        return module.load_state_dict(sd, strict=strict)
    except RuntimeError as exc:  # shape or key mismatch: the weights come from another architecture or config
        raise ConfigError(f"{what}: weights do not fit {type(module).__name__}: {str(exc).splitlines()[-1].strip()}",
                          hint=hint) from None


def _load_source(path: str) -> dict[str, torch.Tensor]:
    """Generator weights of a run folder (best, EMA when it has one) or of a .safetensors file."""
    p = Path(path)
    if p.is_dir():
        return ckpt.load_generator(ckpt.find(p, "best"))[0]
    if p.suffix == ".safetensors" and p.is_file():
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(f"{p} is not a readable safetensors file ({exc})", path=str(p)) from None
    raise ConfigError(f"model.init {path!r} is neither a run folder nor a .safetensors file")


def load_init(model: nn.Module, whole: str, parts: Mapping[str, str]) -> tuple[int, int]:
    """Load ``whole`` into the model, then each of ``parts`` (prefix → path) into its submodule.

    Returns (missing, unexpected) key counts over the model: modules no source covers keep their
    initialisation (UFVNet stage 2: the regressor, fusion block and decoder).
    """
    sd = dict(_load_source(whole)) if whole else {}
    for prefix, path in parts.items():
        sd.update({f"{prefix}.{k}": v for k, v in _load_source(path).items()})
    res = load_into(model, sd, "model.init", strict=False)
    return len(res.missing_keys), len(res.unexpected_keys)
