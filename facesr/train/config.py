"""Training configuration: frozen dataclasses, one commented defaults file, presets per paper.

Resolution order (later wins): ``presets/defaults.yaml`` → ``presets/<preset>.yaml`` → ``overrides``
(``--set section.key=value`` on the CLI). Every key is checked against the dataclasses below; an unknown
key is a :class:`~facesr.errors.ConfigError` with a close-match hint (``optim.lr`` for ``optim.lrr``).
Values given as strings (the CLI) are parsed with ``yaml.safe_load`` (never ``eval``) and then coerced to
the field's type; a value of the wrong type is a ConfigError naming the key.

Configs are immutable: :func:`replace` returns a new one. ``to_dict`` / :func:`from_dict` round-trip
exactly (the run folder's ``config.yaml`` is ``to_dict`` of the resolved config, and ``--resume`` reads it
back).
"""

from __future__ import annotations

import difflib
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from facesr.errors import ConfigError

PRESET_PACKAGE = "facesr.train.presets"


@dataclass(frozen=True)
class ModelConfig:
    name: str = "unet_light"
    args: dict = field(default_factory=dict)  # keyword overrides for facesr.models.build(name, **args)
    discriminator: str = ""  # GAN discriminator name ("" = no GAN)
    discriminator_args: dict = field(default_factory=dict)
    init: str = ""  # a run folder or .safetensors file to initialise the whole generator from
    init_parts: dict = field(default_factory=dict)  # submodule prefix → run/.safetensors, e.g. UFVNet stage 2:
    # {anchors.0: runs/anchor16, anchors.1: runs/anchor32, anchors.2: runs/anchor64}


@dataclass(frozen=True)
class AugmentConfig:
    hflip: float = 0.0  # probability of a horizontal flip (HR, LR and priors together)
    rot90: bool = False  # BasicSR use_rot: vertical flip and transpose, each with probability 0.5
    rescale: tuple[float, ...] = ()  # [lo, hi]: rescale the HR by U(lo, hi), re-crop, LR made on the fly
    rescale_mode: str = "mrrnet"  # mrrnet (its celeba_dataset.py Scale) | zoom (a square window, enlarge only)


@dataclass(frozen=True)
class DataConfig:
    lr: str = "bicubic-pil_16"
    priors: tuple[str, ...] = ("heatmap",)
    train_split: str = "train"
    val_split: str = "val"
    batch_size: int = 64
    val_batch_size: int = 64
    val_limit: int = 256  # images of the val split used per validation (0 = all)
    num_workers: int = 0
    drop_last: bool = True
    heatmap_preset: str = ""  # the store's priors/heatmap must be of this preset ("" = any); seed 000: released
    augment: AugmentConfig = field(default_factory=AugmentConfig)


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 1e-4
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 0.0  # max grad norm (0 = off)
    accumulate: int = 1  # batches per optimizer step (gradient accumulation): effective batch = batch × this × ranks
    d_lr: float = 4e-4  # discriminator (GAN presets)
    d_betas: tuple[float, float] = (0.9, 0.99)


@dataclass(frozen=True)
class SchedConfig:
    name: str = "none"  # none | plateau | step | multistep
    interval: str = "epoch"  # step / multistep count step_size and milestones in: epoch | step (optimizer steps)
    discriminator: bool = False  # also step the discriminator's lr (GAN; MRRGAN's released code: no)
    factor: float = 0.5  # plateau
    patience: int = 6  # plateau, in validations
    step_size: int = 4  # step, in epochs
    gamma: float = 0.7  # step / multistep
    milestones: tuple[int, ...] = ()  # multistep, in epochs (or steps: interval)
    min_lr: float = 0.0


@dataclass(frozen=True)
class LossConfig:
    recipe: str = ""  # a paper's loss from facesr/train/losses.py RECIPES ("" = only the weights set below)
    # per-term weights: None = the recipe's, 0 = off, else replaces the recipe's weight
    mse: float | None = None
    l1: float | None = None
    heatmap: float | None = None  # seed-000 heatmap-weighted L1 (eq. 1)
    heatmap_gamma: float = 1.3
    heatmap_floor: float = 0.1
    perceptual: float | None = None
    perceptual_preset: str = ""  # "" = the recipe's | seed000 | mrrnet | wnet (VGG layers)
    perceptual_trunk: str = ""  # "" = the preset's | notebook | features | standard (facesr/train/perceptual.py)
    pixel_range: str = ""  # "" = the recipe's | 0_1 | -1_1: mse ×4, l1/heatmap ×2, as if on [-1, 1] images
    lpips: float | None = None
    parsing: float | None = None  # W-Net parsing MSE
    key_region: float | None = None  # W-Net key-region loss
    key_region_perceptual: bool = True  # W-Net eq. 28: add the VGG term (preset wnet) inside each region
    parsing_target: str = "lr"  # W-Net §4.2: lr (the HR binary map bicubic-downsampled to the LR size, brought to
    # the prediction's grid) | hr (the HR binary map itself); facesr/train/targets.py
    gan: float | None = None  # RaHinge generator term (needs model.discriminator)
    weight_ce: float | None = None  # UFVNet weight-regressor cross-entropy (alpha)
    ramp: str = ""  # "" = the recipe's | none | seed000
    ramp_epochs: int = 200  # seed000 ramp: t = epoch / ramp_epochs
    d_input: str = "updated"  # GAN: D trains on the updated G's output (MRRNet released) | same (this step's, detached)


@dataclass(frozen=True)
class EmaConfig:
    decay: float = 0.0  # 0 = off; GVTNet uses 0.999
    every: int = 1  # update every N optimizer steps


@dataclass(frozen=True)
class ValConfig:
    every: int = 1  # validate every N epochs
    grid_every: int = 1  # write a grid PNG every N epochs
    grid_n: int = 8
    protocol: str = "dic"
    lpips: bool = True  # compute LPIPS at validation (needs the VGG trunk unless --no-pretrained)
    criterion: str = "seed000"  # seed000 | psnr | ssim
    early_stop: int = 15  # stop after N validations without improvement (0 = off)
    min_delta: float = 0.0  # an improvement must beat the best by more than this (seed 000's notebook: 1e-4)


@dataclass(frozen=True)
class CheckpointConfig:
    every_steps: int = 0  # also save `last` every N optimizer steps (0 = only at epoch ends)
    keep_best: bool = True


@dataclass(frozen=True)
class TrainConfig:
    preset: str = ""
    seed: int = 42
    epochs: int = 100
    max_steps: int = 0  # stop after this many optimizer steps in total (0 = no limit)
    max_minutes: float = 0.0  # stop (and save) after this wall time in this process (0 = no limit)
    amp: str = "auto"  # auto (fp16 on CUDA, off on CPU) | off | fp16 | bf16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = True
    log_every: int = 10  # rich progress / TensorBoard every N steps (the step CSV gets every step)
    nan_patience: int = 5  # abort after this many non-finite losses in a row (and on a non-finite validation)
    pretrained: bool = True  # VGG/LPIPS trunks from the weights dir; False = random trunks (tests only)
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    sched: SchedConfig = field(default_factory=SchedConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    ema: EmaConfig = field(default_factory=EmaConfig)
    val: ValConfig = field(default_factory=ValConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)


_CHOICES = {
    "amp": ("auto", "off", "fp16", "bf16"),
    "sched.name": ("none", "plateau", "step", "multistep"),
    "sched.interval": ("epoch", "step"),
    "data.augment.rescale_mode": ("mrrnet", "zoom"),
    "loss.ramp": ("", "none", "seed000"),
    "loss.perceptual_preset": ("", "seed000", "mrrnet", "wnet"),
    "loss.pixel_range": ("", "0_1", "-1_1"),
    "loss.d_input": ("updated", "same"),
    "loss.parsing_target": ("lr", "hr"),
    "val.criterion": ("seed000", "psnr", "ssim"),
}


# ------------------------------------------------------------------------------------------ public API
def list_presets() -> list[str]:
    """Preset names shipped in ``facesr/train/presets`` (``defaults`` excluded)."""
    root = resources.files(PRESET_PACKAGE)
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".yaml") and p.name != "defaults.yaml")


def preset_text(name: str) -> str:
    root = resources.files(PRESET_PACKAGE)
    path = root / f"{name}.yaml"
    if not path.is_file():
        names = list_presets()
        close = difflib.get_close_matches(name, names, n=1)
        raise ConfigError(
            f"unknown preset {name!r}",
            hint=f"did you mean {close[0]!r}?" if close else f"presets: {', '.join(names)}",
        )
    return path.read_text()


def load_config(
    preset: str | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
    *,
    base: Mapping[str, Any] | None = None,
) -> TrainConfig:
    """Resolve defaults → preset (a name or a path to a YAML file) → overrides into a :class:`TrainConfig`.

    ``base``: a full config dict used instead of defaults + preset (``--resume`` passes the run's config).
    ``overrides``: ``"a.b=value"`` strings (YAML-parsed) or a mapping of dotted keys to values.
    """
    if base is not None:
        data = _deepcopy(dict(base))
    else:
        data = _yaml(preset_text("defaults"), "defaults.yaml") or {}
        if preset:
            if preset.endswith((".yaml", ".yml")) and Path(preset).is_file():
                text, where, name = Path(preset).read_text(), preset, Path(preset).stem
            else:
                text, where, name = preset_text(preset), f"preset {preset}", preset
            layer = _yaml(text, where) or {}
            if isinstance(layer, dict):
                layer.pop("recipe", None)  # the preset's recipe card (facesr/train/recipe.py), not a setting
            _merge(data, layer, where)
            data["preset"] = name
    for key, value in _override_items(overrides):
        _set_dotted(data, key, value)
    return from_dict(data)


def from_dict(data: Mapping[str, Any]) -> TrainConfig:
    """Build a TrainConfig from a (possibly partial) nested dict; unknown keys → ConfigError."""
    return _build(TrainConfig, data, "")


def to_dict(cfg) -> dict:
    """Plain nested dict (tuples as lists) that :func:`from_dict` reads back to an equal config."""
    out = {}
    for f in fields(cfg):
        v = getattr(cfg, f.name)
        if is_dataclass(v):
            v = to_dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, dict):
            v = _deepcopy(v)
        out[f.name] = v
    return out


def dump_yaml(cfg: TrainConfig) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def replace(cfg: TrainConfig, **dotted: Any) -> TrainConfig:
    """A copy of ``cfg`` with dotted keys replaced (``replace(cfg, **{"optim.lr": 1e-3})``)."""
    data = to_dict(cfg)
    for key, value in dotted.items():
        _set_dotted(data, key, value)
    return from_dict(data)


def keys() -> list[str]:
    """Every valid dotted key."""
    out: list[str] = []

    def walk(cls, prefix):
        for f in fields(cls):
            t = _hints(cls)[f.name]
            if is_dataclass(t):
                walk(t, f"{prefix}{f.name}.")
            else:
                out.append(prefix + f.name)

    walk(TrainConfig, "")
    return out


# ------------------------------------------------------------------------------------------ internals
def _yaml(text: str, where: str):
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{where} is not valid YAML: {exc}") from None


def _override_items(overrides) -> list[tuple[str, Any]]:
    if isinstance(overrides, Mapping):
        return list(overrides.items())
    items = []
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not KEY=VALUE", hint="e.g. --set optim.lr=2e-4")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        items.append((key, value))
    return items


def _hint(name: str, known: Iterable[str]) -> str:
    known = list(known)
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.5)
    if close:
        return f"did you mean {close[0]!r}?"
    if len(known) <= 12:
        return f"known keys: {', '.join(known)}"
    return "every key, with its default and meaning: facesr/train/presets/defaults.yaml, or `facesr train --show-config`"


def _set_dotted(data: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    cls = TrainConfig
    node = data
    for i, part in enumerate(parts):
        hints = _hints(cls)
        prefix = ".".join(parts[:i])
        if part not in hints:
            full = [k for k in keys() if k.startswith(prefix + ".")] if prefix else keys()
            raise ConfigError(f"unknown config key {key!r}", hint=_hint(key, full))
        t = hints[part]
        last = i == len(parts) - 1
        if last:
            node[part] = value
        elif is_dataclass(t):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"config key {'.'.join(parts[: i + 1])!r} must be a mapping")
            cls = t
        elif _origin(t) is dict:  # model.args.width=16: free-form mapping
            node = node.setdefault(part, {})
            for sub in parts[i + 1 : -1]:
                node = node.setdefault(sub, {})
            node[parts[-1]] = value
            return
        else:
            raise ConfigError(f"config key {'.'.join(parts[: i + 1])!r} has no sub-keys (in {key!r})")


def _merge(dst: dict, src: Mapping, where: str, cls=TrainConfig, prefix: str = "") -> None:
    """Merge ``src`` into ``dst`` section by section; a free-form mapping (``model.args``) is replaced whole."""
    if not isinstance(src, Mapping):
        raise ConfigError(f"{where}: expected a mapping at {prefix or 'top level'}")
    hints = _hints(cls)
    for k, v in src.items():
        section = hints.get(k)
        if is_dataclass(section) and isinstance(v, Mapping) and isinstance(dst.get(k), dict):
            _merge(dst[k], v, where, section, f"{prefix}{k}.")
        else:
            dst[k] = _deepcopy(v)


def _build(cls, data: Mapping[str, Any], prefix: str):
    if not isinstance(data, Mapping):
        raise ConfigError(f"config section {prefix.rstrip('.') or 'root'!r} must be a mapping, got {data!r}")
    hints = _hints(cls)
    unknown = [k for k in data if k not in hints]
    if unknown:
        k = unknown[0]
        raise ConfigError(f"unknown config key {prefix + str(k)!r}", hint=_hint(prefix + str(k), [prefix + h for h in hints]))
    kwargs = {}
    for name, value in data.items():
        t = hints[name]
        key = prefix + name
        if is_dataclass(t):
            kwargs[name] = _build(t, value or {}, key + ".")
        else:
            kwargs[name] = _coerce(value, t, key)
            if key in _CHOICES and kwargs[name] not in _CHOICES[key]:
                raise ConfigError(f"{key} must be one of {_CHOICES[key]}, got {kwargs[name]!r}",
                                  hint=_hint(str(kwargs[name]), _CHOICES[key]))
            _check_number(key, kwargs[name])
    try:
        return cls(**kwargs)
    except TypeError as exc:  # pragma: no cover - guarded above
        raise ConfigError(f"bad config section {prefix!r}: {exc}") from None


#: numbers that must be > 0 (every other number of the config must be finite and >= 0)
_POSITIVE = frozenset({"optim.lr", "optim.eps", "data.batch_size", "data.val_batch_size", "epochs", "log_every",
                       "val.every", "ema.every", "loss.ramp_epochs", "optim.accumulate"})


def _check_number(key: str, value) -> None:
    """Config numbers are finite and non-negative (learning rates, weights, counts); some strictly positive."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    if not math.isfinite(value) or value < 0 or (key in _POSITIVE and value == 0):
        need = "a positive" if key in _POSITIVE else "a finite, non-negative"
        raise ConfigError(f"config key {key!r} must be {need} number, got {value!r}")


def _origin(t):
    return typing.get_origin(t) or t


def _coerce(value, t, key):
    origin = _origin(t)
    if origin in (typing.Union, types.UnionType):  # `float | None`: None / null / "" keep the default meaning
        args = [a for a in typing.get_args(t) if a is not type(None)]
        return None if value is None or value == "" else _coerce(value, args[0], key)
    bad = ConfigError(f"config key {key!r} expects {getattr(t, '__name__', t)}, got {value!r}")
    if origin is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            return value.lower() in ("true", "yes", "on", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise bad
    if origin in (int, float):
        # a bool is an int to Python but never a number here; an int key takes only whole floats (3.0)
        if isinstance(value, bool) or (origin is int and isinstance(value, float) and not value.is_integer()):
            raise bad
        if isinstance(value, (int, float, str)):
            try:
                return origin(value)
            except ValueError:
                raise bad from None
        raise bad
    if origin is str:
        if value is None:
            return ""
        if isinstance(value, bool):  # YAML 1.1 reads a bare off/on/no/yes as a bool
            return "on" if value else "off"
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise bad
    if origin is tuple:
        args = typing.get_args(t)
        if isinstance(value, str):
            value = [v for v in value.split(",") if v.strip()] if value else []
        if value is None:
            value = []
        if not isinstance(value, (list, tuple)):
            value = [value]
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], key) for v in value)
        if len(value) != len(args):
            raise ConfigError(f"config key {key!r} expects {len(args)} values, got {value!r}")
        return tuple(_coerce(v, a, key) for v, a in zip(value, args))
    if origin is dict:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise bad
        return _deepcopy(dict(value))
    return value  # pragma: no cover


_HINTS: dict = {}


def _hints(cls) -> dict:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _deepcopy(v):
    import copy

    return copy.deepcopy(v)


__all__ = [
    "AugmentConfig",
    "CheckpointConfig",
    "DataConfig",
    "EmaConfig",
    "LossConfig",
    "ModelConfig",
    "OptimConfig",
    "SchedConfig",
    "TrainConfig",
    "ValConfig",
    "dump_yaml",
    "from_dict",
    "keys",
    "list_presets",
    "load_config",
    "replace",
    "to_dict",
]

