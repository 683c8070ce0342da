"""Run checkpoints: ``RUN/checkpoints/{last,best}/``, written atomically.

One checkpoint is a folder:

=====================  ==========================================================================
``model.safetensors``  generator weights (plain state dict of the unwrapped model)
``ema.safetensors``    EMA weights, when the preset uses EMA
``disc.safetensors``   discriminator weights, GAN presets only
``state.json``         epoch, step, step-in-epoch, best criterion, early-stop counters, config digest
``train_state.pt``     optimizer / scheduler / GradScaler / RNG states (``torch.save``; small: Adam
                       moments are the only large part, 2× the model)
=====================  ==========================================================================

Atomicity: the folder is written as ``<name>.tmp`` (every file flushed and fsynced, ``state.json`` last),
then ``<name>`` is renamed to ``<name>.old``, ``<name>.tmp`` to ``<name>``, and ``<name>.old`` removed.
Each rename is atomic (POSIX ``rename``), so after a kill at any instant either ``<name>`` or
``<name>.old`` is a complete checkpoint; :func:`resolve` picks ``<name>``, else ``<name>.old``. A
``.tmp`` folder is never read.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from facesr.errors import ConfigError

STATE = "state.json"
TRAIN_STATE = "train_state.pt"
WEIGHTS = {"model": "model.safetensors", "ema": "ema.safetensors", "disc": "disc.safetensors"}


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _tensors(state_dict: dict) -> dict[str, torch.Tensor]:
    # clone: safetensors refuses tensors that share storage (tied weights, views)
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in state_dict.items() if torch.is_tensor(v)}


def save(
    folder: str | os.PathLike,
    *,
    weights: dict[str, dict],
    state: dict[str, Any],
    train_state: dict[str, Any] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write a checkpoint folder atomically (see module docstring). ``weights``: name → state dict
    (names from :data:`WEIGHTS`)."""
    final = Path(folder)
    tmp = final.with_name(final.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    meta = {"format": "pt", **{k: str(v) for k, v in (metadata or {}).items()}}
    for name, sd in weights.items():
        if name not in WEIGHTS:
            raise ValueError(f"unknown weight set {name!r}")
        path = tmp / WEIGHTS[name]
        save_file(_tensors(sd), str(path), metadata=meta)
        _fsync_file(path)
    if train_state is not None:
        path = tmp / TRAIN_STATE
        torch.save(train_state, path)
        _fsync_file(path)
    path = tmp / STATE
    path.write_text(json.dumps(state, indent=2, sort_keys=True))
    _fsync_file(path)
    return _swap_in(tmp, final)


def _swap_in(tmp: Path, final: Path) -> Path:
    """Replace ``final`` by the complete folder ``tmp``; at every instant ``final`` or ``.old`` is whole."""
    old = final.with_name(final.name + ".old")
    _fsync_dir(tmp)
    if final.exists():  # else an earlier swap was cut short and .old is the one whole copy: keep it
        if old.exists():
            shutil.rmtree(old)
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    if old.exists():
        shutil.rmtree(old)
    return final


def is_complete(folder: Path) -> bool:
    return (folder / STATE).is_file() and (folder / WEIGHTS["model"]).is_file()


def resolve(folder: str | os.PathLike) -> Path | None:
    """The complete checkpoint at ``folder`` (or its ``.old`` twin after an interrupted swap), else None."""
    folder = Path(folder)
    for cand in (folder, folder.with_name(folder.name + ".old")):
        if cand.is_dir() and is_complete(cand):
            return cand
    return None


def find(run_or_ckpt: str | os.PathLike, which: str = "best") -> Path:
    """Checkpoint folder from a run folder (``which``: best, falling back to last; or last) or a
    checkpoint folder given directly."""
    p = Path(run_or_ckpt)
    direct = resolve(p)
    if direct is not None:
        return direct
    order = {"best": ("best", "last"), "last": ("last",)}.get(which)
    if order is None:
        raise ConfigError(f"unknown checkpoint {which!r}", hint="use 'best' or 'last'")
    for name in order:
        found = resolve(p / "checkpoints" / name)
        if found is not None:
            return found
    raise ConfigError(
        f"no checkpoint in {p}",
        hint="pass a run folder written by `facesr train --out RUN` (it holds checkpoints/last)",
    )


def load_state(folder: Path) -> dict:
    return json.loads((Path(folder) / STATE).read_text())


def load_weights(folder: Path, name: str = "model") -> dict[str, torch.Tensor] | None:
    path = Path(folder) / WEIGHTS[name]
    return load_file(str(path)) if path.is_file() else None


def load_generator(folder: Path, prefer_ema: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """``(state dict, "ema" | "model")``: the generator weights to use, EMA ones when the run has them."""
    sd = load_weights(folder, "ema") if prefer_ema else None
    if sd is not None:
        return sd, "ema"
    return load_weights(folder, "model"), "model"


def load_train_state(folder: Path, map_location="cpu") -> dict | None:
    path = Path(folder) / TRAIN_STATE
    if not path.is_file():
        return None
    return torch.load(path, map_location=map_location, weights_only=False)


__all__ = ["STATE", "TRAIN_STATE", "WEIGHTS", "find", "is_complete", "load_generator", "load_state",
           "load_train_state", "load_weights", "resolve", "save"]
