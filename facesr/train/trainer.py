"""The training loop: a preset's model, losses and optimiser over a store, with exact resume.

Run folder (``out``):

=======================  ==================================================================
``config.yaml``          the resolved :class:`~facesr.train.config.TrainConfig`
``run.json``             store path and attributes, world size, versions
``steps.csv``            one row per optimizer step (loss and its terms, lr, samples/s)
``metrics.csv``          one row per validation (PSNR/SSIM under ``val.protocol``, LPIPS, criterion,
                         bicubic baseline, lr)
``tb/``                  TensorBoard events
``grids/epoch-NNN.png``  validation grid, one row per image: LR (nearest ×s) | SR | HR
``checkpoints/last``     after every epoch (and every ``checkpoint.every_steps`` steps, and at a budget stop)
``checkpoints/best``     the best validation so far
=======================  ==================================================================

One optimizer step (``_step``): forward under ``torch.autocast`` (``amp``: fp16 + GradScaler on CUDA by
default; bf16 or off on CPU), the weighted loss terms (:class:`Objective`), a finiteness check (all ranks
agree), backward, optional gradient clipping, ``scaler.step``; for GAN presets then one discriminator step
(RaHinge) on the same batch with the generator output detached — generator first with the discriminator
frozen, as in BasicSR / MRRGAN's code; then the EMA update. A non-finite loss skips the step (no weight,
optimizer or scaler change), counts it, and after ``nan_patience`` in a row raises :class:`TrainingError`.

Exact resume (the rule): a checkpoint records ``epoch`` and ``batch``, the number of batches of that
epoch already trained on. The loader's order is a pure function of ``(seed, epoch, rank, world size,
num_workers)`` (:mod:`facesr.data.loader`), so resuming sets the epoch, draws and discards ``batch``
batches (reading them, not training on them), and only then restores the RNG states saved in the
checkpoint; the next batch and every random number after it are those of the uninterrupted run. Rows
of ``steps.csv`` / ``metrics.csv`` after the checkpoint's step are dropped (they are re-run), and
TensorBoard is reopened with ``purge_step``. Exactness needs the same world size, ``num_workers``,
device and thread count; a validation at a budget stop is logged (``kind=final``) but does not feed the
scheduler, early stopping or ``best``, so a stopped-and-resumed run follows the uninterrupted one.
SIGINT / SIGTERM (Ctrl-C; SLURM's notice before it kills a job) stop the run at the next step boundary
with a checkpoint of that step (reason ``interrupted``, no final validation), so nothing is lost; every
DDP rank stops at the same step.

Validation (rank 0, every ``val.every`` epochs and at the end): PSNR/SSIM under ``val.protocol``
(:func:`facesr.metrics.protocols.psnr_ssim_torch`), LPIPS when ``val.lpips``, and once per run the
bicubic baseline on the same images. Seed-000 criterion (lower is better)::

    1.5·LPIPS + 0.8·max(0, 0.02 − SSIM) + 0.2·max(0, 20 − PSNR)

with PSNR/SSIM under ``val.protocol`` (the released code used its own RGB metrics). The SSIM and PSNR
terms vanish once SSIM > 0.02 and PSNR > 20 dB (the paper: "truncated once they exceed thresholds"), so
the criterion is driven by LPIPS. Without LPIPS (``val.lpips: false``) the run says so and the criterion
is the rest, which is 0 for any sensible model; ties are then broken by PSNR: the monitored score is
``criterion − 0.01·PSNR`` (used by ReduceLROnPlateau, early stopping and ``best``).

Nothing here prints: progress goes to a :class:`Reporter` (the CLI passes a rich one).
"""

from __future__ import annotations

import json
import math
import os
import platform
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facesr.errors import ConfigError, FacesrError, WeightsError
from facesr.train import checkpoint as ckpt
from facesr.train import distributed as dist
from facesr.train.config import TrainConfig, dump_yaml
from facesr.train.ema import EMA
from facesr.train.logging import RunLog

__all__ = ["Objective", "Reporter", "TrainResult", "Trainer", "TrainingError", "criterion_seed000", "train"]


class TrainingError(FacesrError):
    """Training cannot go on (diverged, nothing to train on)."""


# ------------------------------------------------------------------------------------------ reporting
class Reporter:
    """Receives progress events; this base class ignores them (the library never prints)."""

    def start(self, *, total_steps: int, first_step: int, steps_per_epoch: int, info: dict) -> None: ...

    def step(self, row: dict[str, Any]) -> None: ...

    def validation(self, row: dict[str, Any]) -> None: ...

    def message(self, text: str) -> None: ...

    def end(self, result: TrainResult) -> None: ...


@dataclass
class TrainState:
    """Everything about the loop's position that a checkpoint must restore (``state.json``)."""

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


@dataclass(frozen=True)
class TrainResult:
    out: Path
    state: dict
    reason: str  # epochs | early_stop | budget_steps | budget_time | interrupted | finished
    last_validation: dict | None


# --------------------------------------------------------------------------------------------- losses
def criterion_seed000(psnr: float, ssim: float, lpips: float | None) -> float:
    """Seed 000's validation criterion (lower is better); LPIPS None = leave its term out."""
    c = 0.8 * max(0.0, 0.02 - ssim) + 0.2 * max(0.0, 20.0 - psnr)
    if lpips is not None:
        c += 1.5 * lpips
    return c


def _losses():
    from facesr.train import losses

    return losses


class Objective(nn.Module):
    """The preset's weighted loss terms (:mod:`facesr.train.losses`). ``forward(output, batch)`` → ``{name: raw
    value}``; :meth:`total` combines them with the (ramped) weights.

    Terms and what they need: ``mse``/``l1`` (hr), ``heatmap`` (hr, heatmap; seed 000 eq. 1), ``perceptual``
    (hr; frozen VGG, layers by ``perceptual_preset``), ``lpips`` (hr; frozen LPIPS-VGG), ``parsing`` (model
    output ``parsing`` vs the binary skin map of ``priors/parsing``; W-Net eq. 25), ``key_region`` (hr,
    parsing classes; W-Net eqs. 27-28), ``weight_ce`` (model output ``weight_logits`` vs the eq. 4 target of
    the batch's LR/HR size ratio; UFVNet eq. 12), ``gan`` (added by the trainer from the discriminator).

    ``pixel_range: -1_1`` scales mse by 4 and l1/heatmap by 2, i.e. computes them as on [-1, 1] images like
    seed 000's released code, so its weights (MSE 1, heatmap 2.0 beside perceptual 0.02, LPIPS 0.15) keep
    their balance. ``ramp: seed000`` multiplies perceptual / heatmap / LPIPS by the released epoch ramp
    (:func:`facesr.train.losses.seed000_ramp`, as factors of its base weights) at ``epoch / ramp_epochs``.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        from facesr.train import losses as L

        lc = cfg.loss
        self.cfg = lc
        self.weights = {
            k: float(getattr(lc, k))
            for k in ("mse", "l1", "heatmap", "perceptual", "lpips", "parsing", "key_region", "weight_ce", "gan")
            if float(getattr(lc, k)) != 0.0
        }
        if not set(self.weights) - {"gan"}:
            raise ConfigError("every loss weight is 0", hint="set one, e.g. --set loss.l1=1")
        self.scale = {"mse": 4.0, "l1": 2.0, "heatmap": 2.0} if lc.pixel_range == "-1_1" else {}
        self.mods = nn.ModuleDict()
        if "heatmap" in self.weights:
            self.mods["heatmap"] = L.LOSSES.build("heatmap_l1", gamma=lc.heatmap_gamma, floor=lc.heatmap_floor)
        if "perceptual" in self.weights:
            self.mods["perceptual"] = L.LOSSES.build("vgg_perceptual", preset=lc.perceptual_preset,
                                                     pretrained=cfg.pretrained)
        if "lpips" in self.weights:
            self.mods["lpips"] = L.LOSSES.build("lpips", net="vgg", pnet_rand=not cfg.pretrained)
        if "key_region" in self.weights:
            per = L.VGGPerceptual("wnet", pretrained=cfg.pretrained) if lc.key_region_perceptual else None
            self.mods["key_region"] = L.LOSSES.build("key_region", perceptual=per)
        self._ramp = L.seed000_ramp if lc.ramp == "seed000" else None
        self._base = dict(L.SEED000_WEIGHTS)
        self._L = L

    def ramp(self, epoch: int) -> dict[str, float]:
        """Multipliers of the configured weights at ``epoch`` (empty: no ramp)."""
        if self._ramp is None:
            return {}
        eff = self._ramp(epoch, self.cfg.ramp_epochs)
        return {k: eff[k] / self._base[k] for k in ("perceptual", "heatmap", "lpips")}

    def forward(self, output, batch: dict) -> dict[str, torch.Tensor]:
        L = self._L
        sr = _sr(output).float()
        hr = batch["hr"]
        terms: dict[str, torch.Tensor] = {}
        for name in self.weights:
            if name == "mse":
                terms[name] = F.mse_loss(sr, hr)
            elif name == "l1":
                terms[name] = F.l1_loss(sr, hr)
            elif name == "heatmap":
                terms[name] = self.mods[name](sr, hr, _need(batch, "heatmap", name))
            elif name in ("perceptual", "lpips"):
                terms[name] = self.mods[name](sr, hr)
            elif name == "key_region":
                terms[name] = self.mods[name](sr, hr, _need(batch, "parsing", name))
            elif name == "parsing":
                pred = _need(output, "parsing", name, "model output").float()
                skin = (_need(batch, "parsing", name) == 1).float().unsqueeze(1)
                if skin.shape[-2:] != pred.shape[-2:]:
                    skin = F.interpolate(skin, size=pred.shape[-2:], mode="bilinear", align_corners=False)
                terms[name] = L.parsing_mse(pred, skin.expand_as(pred))
            elif name == "weight_ce":
                logits = _need(output, "weight_logits", name, "model output").float()
                from facesr.models.ufvnet import anchor_target_weights

                target = anchor_target_weights([batch["lr"].shape[-1]]).to(logits.device).expand(len(logits), -1)
                terms[name] = L.ufvnet_weight_ce(logits, target)
        return terms

    def total(self, terms: dict[str, torch.Tensor], epoch: int) -> torch.Tensor:
        ramp = self.ramp(epoch)
        total = None
        for name, value in terms.items():
            w = self.weights[name] * float(ramp.get(name, 1.0)) * self.scale.get(name, 1.0)
            if w == 0.0:
                continue
            total = value.float() * w if total is None else total + value.float() * w
        if total is None:  # every term ramped to 0 (cannot happen with a pixel term)
            total = sum(v.float() * 0.0 for v in terms.values())
        return total


def _need(d, key: str, term: str, where: str = "batch"):
    if not isinstance(d, dict) or key not in d:
        hint = (f"add {key!r} to data.priors" if where == "batch" else "use a model that outputs it, or set the "
                f"loss weight loss.{term}=0")
        raise ConfigError(f"loss term {term!r} needs {key!r} in the {where}", hint=hint)
    return d[key]


def _sr(out):
    from facesr.models import sr_of

    return sr_of(out)


# ------------------------------------------------------------------------------------------- helpers
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def resolve_device(name: str, info: dist.DistInfo) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", info.local_rank if info.enabled else torch.cuda.current_device())
        return torch.device("cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} requested but CUDA is not available", hint="use --set device=cpu")
    if dev.type == "cuda" and info.enabled and dev.index is None:
        dev = torch.device("cuda", info.local_rank)
    return dev


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]


def lr_size(spec: str) -> int:
    """LR side of a store LR spec (``bicubic-pil_16`` → 16)."""
    from facesr.data.degrade import LRSpec

    return LRSpec.parse(spec.split("/", 1)[-1]).size


def bicubic_up(lr: torch.Tensor, size: int) -> torch.Tensor:
    """The bicubic baseline of the literature's tables: PIL bicubic ×s of the (uint8) LR
    (:func:`facesr.data.degrade.upscale_back`), as a ``(B, 3, size, size)`` uint8 tensor on ``lr``'s device."""
    from facesr.data.degrade import upscale_back

    lr8 = (lr.detach().clamp(0, 1) * 255.0 + 0.5).floor().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    up = np.stack([upscale_back(x, size) for x in lr8])
    return torch.from_numpy(up).permute(0, 3, 1, 2).to(lr.device)


def grid_image(lr: torch.Tensor, sr: torch.Tensor, hr: torch.Tensor) -> np.ndarray:
    """uint8 (n·H, 3·W, 3): one row per image, LR (nearest ×s) | SR | HR."""
    size = hr.shape[-1]
    up = F.interpolate(lr.float(), size=(size, size), mode="nearest")
    rows = torch.cat([up, sr.float().clamp(0, 1), hr.float()], dim=3)  # (n, 3, H, 3W)
    img = torch.cat(list(rows), dim=1)  # (3, nH, 3W)
    return (img.clamp(0, 1) * 255.0 + 0.5).floor().to(torch.uint8).permute(1, 2, 0).cpu().numpy()


def _load_state(path: str) -> dict[str, torch.Tensor]:
    """Generator weights of a run folder (best, EMA when it has one) or of a .safetensors file."""
    from safetensors.torch import load_file

    p = Path(path)
    if p.is_dir():
        return ckpt.load_generator(ckpt.find(p, "best"))[0]
    if p.suffix == ".safetensors" and p.is_file():
        return load_file(str(p))
    raise ConfigError(f"model.init {path!r} is neither a run folder nor a .safetensors file")


def _load_init(model: nn.Module, whole: str, parts: Mapping[str, str]) -> tuple[int, int]:
    """Load ``whole`` into the model, then each of ``parts`` (prefix → path) into its submodule.

    Returns (missing, unexpected) key counts over the model: modules no source covers keep their
    initialisation (UFVNet stage 2: the regressor, fusion block and decoder).
    """
    sd = dict(_load_state(whole)) if whole else {}
    for prefix, path in parts.items():
        sd.update({f"{prefix}.{k}": v for k, v in _load_state(path).items()})
    res = _load_into(model, sd, "model.init", strict=False)
    return len(res.missing_keys), len(res.unexpected_keys)


def _load_into(module: nn.Module | EMA, sd: Mapping[str, torch.Tensor], what: str, *, strict: bool = True,
               hint: str | None = None):
    """``module.load_state_dict(sd)``, a mismatch being the user's ConfigError rather than a traceback."""
    try:
        return module.load_state_dict(sd, strict=strict)
    except RuntimeError as exc:  # shape or key mismatch: the weights come from another architecture or config
        raise ConfigError(f"{what}: weights do not fit {type(module).__name__}: {str(exc).splitlines()[-1].strip()}",
                          hint=hint) from None


# ---------------------------------------------------------------------------------------------- trainer
class Trainer:
    """Build everything for one run; :meth:`fit` trains. See the module docstring for the rules."""

    def __init__(
        self,
        cfg: TrainConfig,
        store,
        out: str | os.PathLike,
        *,
        resume: bool = False,
        reporter: Reporter | None = None,
    ) -> None:
        from facesr.data.store import FaceStore

        self.cfg = cfg
        self.out = Path(out)
        self.reporter = reporter or Reporter()
        self.info = dist.setup()
        self.main = self.info.is_main
        self.store = store if isinstance(store, FaceStore) else FaceStore.open(store)
        self.device = resolve_device(cfg.device, self.info)
        self.amp = amp_dtype(cfg.amp, self.device)
        self.resume_from: Path | None = None

        last = ckpt.resolve(self.out / "checkpoints" / "last")
        if resume:
            if last is None:
                raise ConfigError(f"--resume: no checkpoint in {self.out}/checkpoints/last",
                                  hint="start the run without --resume")
            self.resume_from = last
        elif last is not None:
            raise ConfigError(f"{self.out} already holds a run",
                              hint="pass --resume to continue it, or choose another --out")

        if cfg.deterministic and self.device.type == "cuda":
            # CPU kernels are deterministic already (and use_deterministic_algorithms imports the
            # compiler stack, ~10 s); on CUDA pick deterministic kernels, warn where none exists.
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True
        _seed_everything(cfg.seed)

        from facesr import models

        self.model = models.build(cfg.model.name, **cfg.model.args).to(self.device)
        if (cfg.model.init or cfg.model.init_parts) and not resume:
            miss, unexp = _load_init(self.model, cfg.model.init, cfg.model.init_parts)
            sources = [cfg.model.init] if cfg.model.init else []
            sources += [f"{k} ← {v}" for k, v in cfg.model.init_parts.items()]
            self.reporter.message(f"initialised from {', '.join(sources)} ({miss} missing, {unexp} unexpected keys)")
        self.disc = None
        if cfg.model.discriminator:
            self.disc = models.build(cfg.model.discriminator, **cfg.model.discriminator_args).to(self.device)
        elif cfg.loss.gan:
            raise ConfigError("loss.gan is set but model.discriminator is empty",
                              hint="--set model.discriminator=mrrgan_d, or --set loss.gan=0")
        self.ema = EMA(self.model, cfg.ema.decay) if cfg.ema.decay > 0 else None
        try:
            self.objective = Objective(cfg).to(self.device)
            self.lpips_metric = None
            if cfg.val.lpips and self.main:
                self.lpips_metric = _lpips_metric(cfg.pretrained, self.device)
        except WeightsError as exc:
            raise WeightsError(
                str(exc),
                hint=(f"{exc.hint}; or train without the VGG-based terms: "
                      "--set loss.perceptual=0 --set loss.lpips=0 --set val.lpips=false"),
            ) from None

        self.net: nn.Module = self.model
        self.dnet = self.disc
        if self.info.enabled:
            from torch.nn.parallel import DistributedDataParallel as DDP

            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = DDP(self.model, device_ids=ids)
            if self.disc is not None:
                self.dnet = DDP(self.disc, device_ids=ids)

        o = cfg.optim
        self.opt = torch.optim.Adam(self.model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps,
                                    weight_decay=o.weight_decay)
        self.dopt = None
        if self.disc is not None:
            self.dopt = torch.optim.Adam(self.disc.parameters(), lr=o.d_lr, betas=o.d_betas, eps=o.eps)
        self.sched = _scheduler(cfg, self.opt)
        # plateau steps on the generator's score only; the discriminator keeps its lr
        self.dsched = _scheduler(cfg, self.dopt) if cfg.sched.name != "plateau" else None
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)
        self.dscaler = torch.amp.GradScaler(self.device.type, enabled=self.amp == torch.float16)

        from facesr.data.loader import StoreDataset, StoreEvalDataset

        d = cfg.data
        self.lr_size = lr_size(d.lr)
        self.train_ds = StoreDataset(
            self.store, d.train_split, lr=d.lr, priors=tuple(d.priors), shuffle=True, seed=cfg.seed,
            rank=self.info.rank, world_size=self.info.world_size, batch_size=d.batch_size,
            drop_last=d.drop_last, raw=True,
        )
        if self.train_ds.per_rank() < d.batch_size and d.drop_last:
            raise TrainingError(
                f"split {d.train_split!r} gives {self.train_ds.per_rank()} samples per rank, fewer than one batch "
                f"of {d.batch_size}", hint="lower --set data.batch_size or use a bigger store")
        self.train_loader = self.train_ds.loader(num_workers=d.num_workers)
        self.val_ds = None
        if self.main:
            self.val_ds = StoreEvalDataset(self.store, d.val_split, lr=d.lr, priors=(), batch_size=d.val_batch_size,
                                           rank=0, world_size=1, raw=True)
        self.steps_per_epoch = (self.train_ds.per_rank() // d.batch_size if d.drop_last
                                else math.ceil(self.train_ds.per_rank() / d.batch_size))
        self.state = TrainState()
        self.log: RunLog | None = None

    # ---------------------------------------------------------------------------------------- setup
    def _write_run_files(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "config.yaml").write_text(dump_yaml(self.cfg))
        run = {
            "store": str(self.store.path) if self.store.path is not None else None,
            "store_attrs": {k: v for k, v in self.store.attrs.items() if isinstance(v, (str, int, float, bool))},
            "world_size": self.info.world_size,
            "torch": torch.__version__,
            "python": platform.python_version(),
            "device": str(self.device),
            "amp": self._amp_name,
        }
        from facesr import __version__

        run["facesr"] = __version__
        (self.out / "run.json").write_text(json.dumps(run, indent=2))

    def _restore(self, folder: Path) -> dict | None:
        saved = ckpt.load_state(folder)
        self.state = TrainState(**{k: v for k, v in saved["train"].items() if k in TrainState.__dataclass_fields__})
        if saved.get("world_size", 1) != self.info.world_size:
            self.reporter.message(
                f"resuming a {saved.get('world_size')}-process run on {self.info.world_size}: "
                "the data order differs from an uninterrupted run")
        for name, obj in self._weight_sets().items():
            sd = ckpt.load_weights(folder, name)
            if sd is not None or name == "model":  # the generator is required, EMA / discriminator optional
                _load_into(obj, sd, f"--resume: the {name} weights of {folder}",
                           hint="resume with the run's own model settings (drop --model and --set model.*)")
        ts = ckpt.load_train_state(folder, map_location=self.device) or {}
        for name, obj in self._train_states().items():
            if name in ts:
                obj.load_state_dict(ts[name])
        return ts.get("rng")

    def _weight_sets(self) -> dict[str, Any]:
        """What a checkpoint holds as safetensors (names of :data:`checkpoint.WEIGHTS`); save and restore share it."""
        sets = {"model": self.model, "ema": self.ema, "disc": self.disc}
        return {k: v for k, v in sets.items() if v is not None}

    def _train_states(self) -> dict[str, Any]:
        """What ``train_state.pt`` holds besides the RNG states; save and restore share it."""
        states = {"optimizer": self.opt, "scaler": self.scaler, "scheduler": self.sched, "d_scheduler": self.dsched}
        if self.dopt is not None:
            states.update(d_optimizer=self.dopt, d_scaler=self.dscaler)
        return {k: v for k, v in states.items() if v is not None}

    @property
    def _amp_name(self) -> str:
        return str(self.amp).replace("torch.", "") if self.amp else "off"

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None)

    def _save(self, name: str = "last") -> None:
        if not self.main:
            return
        weights = {name: obj.state_dict() for name, obj in self._weight_sets().items()}
        ts: dict[str, Any] = {name: obj.state_dict() for name, obj in self._train_states().items()}
        ts["rng"] = _rng_state()
        state = {
            "train": self.state.to_json(),
            "world_size": self.info.world_size,
            "model": self.cfg.model.name,
            "lr_spec": self.cfg.data.lr,
            "lr_size": self.lr_size,
            "saved": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        meta = {"model": self.cfg.model.name, "step": self.state.step, "epoch": self.state.epoch}
        ckpt.save(self.out / "checkpoints" / name, weights=weights, state=state, train_state=ts, metadata=meta)

    # -------------------------------------------------------------------------------------------- fit
    def fit(self) -> TrainResult:
        cfg = self.cfg
        rng = None
        if self.resume_from is not None:
            rng = self._restore(self.resume_from)
        if self.main:
            self._write_run_files()
            (self.out / "grids").mkdir(exist_ok=True)
            # a fresh run starts at step 0: rows left by an attempt killed before its first checkpoint go too
            self.log = RunLog(self.out, resume_step=self.state.step)
        dist.barrier()
        if self.main and self.lpips_metric is None and cfg.val.criterion == "seed000":
            self.reporter.message(
                "LPIPS is off at validation: the seed-000 criterion uses the SSIM and PSNR terms only "
                "(ties broken by PSNR: score = criterion - 0.01*PSNR)")
        total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps:
            total_steps = min(total_steps, cfg.max_steps)
        self.reporter.start(total_steps=total_steps, first_step=self.state.step, steps_per_epoch=self.steps_per_epoch,
                            info={"device": str(self.device), "amp": self._amp_name, "world_size": self.info.world_size,
                                  "model": cfg.model.name, "params": sum(p.numel() for p in self.model.parameters())})
        if self.state.finished == "epochs" and self.state.epoch < cfg.epochs:
            self.state.finished = ""  # resumed with more epochs
        if self.state.finished:
            self.reporter.message(f"the run has already finished ({self.state.finished}); nothing to do")
            return self._finish("finished", None)
        restore_signals = self._catch_stop_signals()
        try:
            return self._loop(rng)
        finally:
            restore_signals()

    def _loop(self, rng) -> TrainResult:
        """The epochs, from ``self.state`` (``rng``: RNG states to restore after a mid-epoch skip)."""
        cfg = self.cfg
        t0 = time.monotonic()
        reason = "epochs"
        last_val = None
        self.net.train()
        if self.disc is not None:
            self.dnet.train()
        delay = float(os.environ.get("FACESR_DEBUG_STEP_DELAY", "0") or 0)  # test hook: slow steps down
        stop_reason = None
        while self.state.epoch < cfg.epochs:
            epoch = self.state.epoch
            self.train_ds.set_epoch(epoch)
            it = iter(self.train_loader)
            for _ in range(self.state.batch):  # resume mid-epoch: skip what was trained on
                next(it)
            if rng is not None:
                _set_rng_state(rng)
                rng = None
            win_t, win_n = time.monotonic(), 0
            for batch in it:
                stop_reason = self._budget(t0)
                if stop_reason:
                    break
                loss, terms, n = self._step(batch, epoch)
                self.state.batch += 1
                win_n += n * self.info.world_size
                if self.main:
                    now = time.monotonic()
                    row = {"step": self.state.step, "epoch": epoch, "batch": self.state.batch, "loss": loss, **terms,
                           "lr": self.opt.param_groups[0]["lr"], "skipped": self.state.skipped,
                           "samples_per_s": round(win_n / max(now - win_t, 1e-9), 2),
                           "time": round(now - t0, 3)}
                    self.log.step(row, scalars=self.state.step % max(cfg.log_every, 1) == 0)
                    self.reporter.step(row)
                    win_t, win_n = now, 0
                every = cfg.checkpoint.every_steps
                if every and self.state.step % every == 0:
                    self._save("last")
                if delay:
                    time.sleep(delay)
            if stop_reason:
                break
            # epoch end
            self.state.epoch += 1
            self.state.batch = 0
            if self.sched is not None and cfg.sched.name in ("step", "multistep"):
                self.sched.step()
                if self.dsched is not None:
                    self.dsched.step()
            last_epoch = self.state.epoch >= cfg.epochs
            early = False
            if self.state.epoch % max(cfg.val.every, 1) == 0 or last_epoch:
                last_val, early = self._validate_and_track()
            if early:
                self.state.finished = reason = "early_stop"
            elif last_epoch:
                self.state.finished = "epochs"
            self._save("last")  # one save per epoch end, the outcome included
            if early:
                break
        else:
            if self.state.finished != "epochs":  # resumed at or past the last epoch (e.g. with fewer epochs)
                self.state.finished = "epochs"
                self._save("last")
        if stop_reason:
            reason = stop_reason
            self._save("last")
            if self.main and stop_reason != "interrupted":  # a signalled job may have seconds left: save only
                last_val = self._validate(kind="final")
                self.log.validation(last_val)
                self.reporter.validation(last_val)
        dist.barrier()
        return self._finish(reason, last_val)

    def _finish(self, reason: str, last_val) -> TrainResult:
        result = TrainResult(self.out, self.state.to_json(), reason, last_val)
        if self.log is not None:
            self.log.close()
        self.reporter.end(result)
        return result

    def _budget(self, t0: float) -> str | None:
        cfg = self.cfg
        if cfg.max_steps and self.state.step >= cfg.max_steps:
            return "budget_steps"
        if self._stop_signal is not None:
            code = 2
        elif cfg.max_minutes and (time.monotonic() - t0) >= cfg.max_minutes * 60.0:
            code = 1
        else:
            code = 0
        if dist.active():  # ranks stop at the same step (a signal may reach only some); tiny next to the grads
            code = int(dist.max_value(code, device=self._flag_device()))
        return (None, "budget_time", "interrupted")[code]

    def _catch_stop_signals(self):
        """SIGINT / SIGTERM (Ctrl-C, SLURM's warning before a kill) stop the run at the next step boundary
        with a checkpoint, so a resume loses nothing; a second SIGINT interrupts at once."""
        import signal
        import threading

        self._stop_signal: str | None = None
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum, frame):
            if self._stop_signal is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self._stop_signal = signal.Signals(signum).name
            self.reporter.message(f"{self._stop_signal}: saving a checkpoint at the end of this step "
                                  "(Ctrl-C again to abort now)")

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, old in previous.items():
                signal.signal(sig, old)

        return restore

    def _flag_device(self):
        import torch.distributed as tdist

        return self.device if tdist.get_backend() == "nccl" else torch.device("cpu")

    # ------------------------------------------------------------------------------------------- step
    def _step(self, raw_batch: dict, epoch: int) -> tuple[float, dict[str, float], int]:
        cfg = self.cfg
        batch = self.train_ds.to_float(raw_batch, self.device)
        lr, hr = batch["lr"], batch["hr"]
        with self._autocast():
            out = self.net(lr)
            terms = self.objective(out, batch)
            if self.disc is not None and cfg.loss.gan:
                dmod = dist.unwrap(self.dnet)
                for p in dmod.parameters():
                    p.requires_grad_(False)
                sr = _sr(out)
                terms["gan"] = _losses().rahinge_g_loss(dmod(hr), dmod(sr))
        total = self.objective.total(terms, epoch)
        check = torch.stack([torch.isfinite(total).float(), total.detach().float().nan_to_num(0.0)])
        if dist.active():  # all ranks skip or step together
            import torch.distributed as tdist

            check = check.to(self._flag_device())
            tdist.all_reduce(check)
        finite_ranks, loss_sum = check.tolist()
        finite = finite_ranks == self.info.world_size
        loss_value = loss_sum / self.info.world_size
        n = int(lr.shape[0])
        # one device sync for every term, not one per term
        term_values = dict(zip(terms, torch.stack([v.detach().float() for v in terms.values()]).tolist()))
        if self.disc is not None:
            term_values["d_loss"] = float("nan")  # filled in below; keeps the CSV columns fixed
        if not finite:
            self.opt.zero_grad(set_to_none=True)
            self.state.skipped += 1
            self.state.nan_streak += 1
            self.state.step += 1
            if self.state.nan_streak >= max(cfg.nan_patience, 1):
                raise TrainingError(
                    f"{self.state.nan_streak} non-finite losses in a row at step {self.state.step} "
                    f"(epoch {epoch}; last terms {term_values})",
                    hint="lower --set optim.lr, try --set amp=off, or --set optim.grad_clip=1.0")
            return float("nan"), term_values, n
        self.state.nan_streak = 0
        self.scaler.scale(total).backward()
        if cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.optim.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        if self.disc is not None:
            dmod = dist.unwrap(self.dnet)
            for p in dmod.parameters():
                p.requires_grad_(True)
            with self._autocast():
                d_loss = _losses().rahinge_d_loss(self.dnet(hr), self.dnet(_sr(out).detach()))
            self.dscaler.scale(d_loss).backward()
            self.dscaler.step(self.dopt)
            self.dscaler.update()
            self.dopt.zero_grad(set_to_none=True)
            term_values["d_loss"] = float(d_loss.detach().float().item())
        self.state.step += 1
        if self.ema is not None and self.state.step % max(cfg.ema.every, 1) == 0:
            self.ema.update(self.model)
        return loss_value, term_values, n

    # ------------------------------------------------------------------------------------- validation
    def _validate_and_track(self) -> tuple[dict | None, bool]:
        row = self._validate(kind="val") if self.main else None
        score = row["score"] if row else None
        score = dist.broadcast(score)
        early = False
        if self.sched is not None and self.cfg.sched.name == "plateau":
            self.sched.step(score)
        improved = self.state.best is None or score < self.state.best
        if improved:
            self.state.best, self.state.best_epoch, self.state.bad = score, self.state.epoch, 0
        else:
            self.state.bad += 1
        if self.main:
            row["best"] = bool(improved)
            self.log.validation(row)
            self.reporter.validation(row)
        if improved and self.cfg.checkpoint.keep_best:
            self._save("best")
        if self.cfg.val.early_stop and self.state.bad >= self.cfg.val.early_stop:
            early = True
            if self.main:
                self.reporter.message(
                    f"early stop: {self.state.bad} validations without improvement (best epoch {self.state.best_epoch})")
        return row, early

    @torch.no_grad()
    def _validate(self, kind: str) -> dict:
        from facesr.metrics.protocols import get_protocol, psnr_ssim_torch

        cfg = self.cfg
        proto = get_protocol(cfg.val.protocol).name
        net = self.ema.module if self.ema is not None else self.model
        was = net.training
        net.eval()
        limit = cfg.data.val_limit
        need_bicubic = not self.state.bicubic
        write_grid = kind == "final" or self.state.epoch % max(cfg.val.grid_every, 1) == 0
        ps, ss, lp, bps, bss = [], [], [], [], []
        grid = []
        seen = 0
        for raw in self.val_ds:
            b = self.val_ds.to_float(raw, self.device)
            lr, hr = b["lr"], b["hr"]
            if limit and seen + len(lr) > limit:
                lr, hr = lr[: limit - seen], hr[: limit - seen]
            with self._autocast():
                sr = _sr(net(lr)).float().clamp(0, 1)
            m = psnr_ssim_torch(sr, hr, proto)
            ps.append(m[f"psnr[{proto}]"].cpu())
            ss.append(m[f"ssim[{proto}]"].cpu())
            if self.lpips_metric is not None:
                lp.append(self.lpips_metric(sr, hr).reshape(-1).float().cpu())
            if need_bicubic:
                bm = psnr_ssim_torch(bicubic_up(lr, hr.shape[-1]), hr, proto)
                bps.append(bm[f"psnr[{proto}]"].cpu())
                bss.append(bm[f"ssim[{proto}]"].cpu())
            k = cfg.val.grid_n - sum(len(g[0]) for g in grid) if write_grid else 0
            if k > 0:
                grid.append((lr[:k].cpu(), sr[:k].cpu(), hr[:k].cpu()))
            seen += len(lr)
            if limit and seen >= limit:
                break
        if was:
            net.train()
        psnr = float(torch.cat(ps).mean())
        ssim = float(torch.cat(ss).mean())
        lpips_v = float(torch.cat(lp).mean()) if lp else None
        if need_bicubic:
            self.state.bicubic = {f"psnr[{proto}]": float(torch.cat(bps).mean()),
                                  f"ssim[{proto}]": float(torch.cat(bss).mean())}
        if cfg.val.criterion == "seed000":
            crit = criterion_seed000(psnr, ssim, lpips_v)
            score = crit if lpips_v is not None else crit - 0.01 * psnr
        elif cfg.val.criterion == "psnr":
            crit, score = psnr, -psnr
        else:
            crit, score = ssim, -ssim
        row = {
            "epoch": self.state.epoch, "step": self.state.step, "kind": kind, "images": seen,
            f"psnr[{proto}]": psnr, f"ssim[{proto}]": ssim,
            "lpips": lpips_v if lpips_v is not None else float("nan"),
            "criterion": crit, "score": score,
            f"bicubic_psnr[{proto}]": self.state.bicubic.get(f"psnr[{proto}]", float("nan")),
            f"bicubic_ssim[{proto}]": self.state.bicubic.get(f"ssim[{proto}]", float("nan")),
            "lr": self.opt.param_groups[0]["lr"], "best": False,
        }
        if grid:
            from facesr.data.images import write_png

            lr_g = torch.cat([g[0] for g in grid])
            sr_g = torch.cat([g[1] for g in grid])
            hr_g = torch.cat([g[2] for g in grid])
            img = grid_image(lr_g, sr_g, hr_g)
            name = f"epoch-{self.state.epoch:03d}{'-final' if kind == 'final' else ''}.png"
            write_png(self.out / "grids" / name, img)
            if self.log is not None:
                self.log.image("val/grid", img, self.state.step)
        return row


def _scheduler(cfg: TrainConfig, opt):
    s = cfg.sched
    if opt is None or s.name == "none":
        return None
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=s.factor, patience=s.patience, threshold=1e-4, threshold_mode="abs",
            min_lr=s.min_lr)
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma)
    if s.name == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(s.milestones), gamma=s.gamma)
    raise ConfigError(f"unknown scheduler {s.name!r}")  # pragma: no cover - config validates


def _lpips_metric(pretrained: bool, device):
    """LPIPS-VGG as a validation metric (:mod:`facesr.metrics.lpips`): ``f(sr, hr)`` on [0, 1] → (N,).
    ``pretrained=False``: random trunk (plumbing tests only; the values mean nothing)."""
    from facesr.metrics.lpips import build_lpips

    model = build_lpips("vgg", pnet_rand=not pretrained).to(device)
    return lambda sr, hr: model(sr, hr, normalize=True).flatten()


def train(cfg: TrainConfig, store, out, *, resume: bool = False, reporter: Reporter | None = None) -> TrainResult:
    """Train one run (see :class:`Trainer`); under torchrun every process calls this."""
    trainer = Trainer(cfg, store, out, resume=resume, reporter=reporter)
    return trainer.fit()

