"""The parts of a run, built from its config: networks, optimizers and schedulers, data, augmentation, the step.

Schedulers: ``plateau`` steps on the validation score (generator only); ``step`` / ``multistep`` step at
every epoch end, or after every optimizer step with ``sched.interval: step`` (GVTNet's MultiStepLR at
iteration 700k); the discriminator's lr follows only with ``sched.discriminator: true`` (MRRGAN's released
code schedules the generator alone).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from facesr.errors import ConfigError, WeightsMissingError
from facesr.train import distributed as dist
from facesr.train.config import TrainConfig
from facesr.train.ema import EMA

__all__ = ["Nets", "Optim", "amp_dtype", "checkpoint_sets", "deterministic", "make_augment", "make_data", "make_nets", "make_optim", "make_step",
           "scheduler"]


def amp_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    if amp == "auto":
        return torch.float16 if device.type == "cuda" else None
    return {"off": None, "fp16": torch.float16, "bf16": torch.bfloat16}[amp]


@dataclass
class Nets:
    model: nn.Module
    disc: nn.Module | None
    ema: EMA | None
    objective: Any
    net: nn.Module  # model, DDP-wrapped under torchrun
    dnet: nn.Module | None


def deterministic(cfg: TrainConfig, device: torch.device) -> None:
    """``cfg.deterministic`` on CUDA: deterministic kernels (warn where none exists). CPU kernels are
    deterministic already, and ``use_deterministic_algorithms`` imports the compiler stack (~10 s)."""
    if cfg.deterministic and device.type == "cuda":
        import os

        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True


def make_nets(cfg: TrainConfig, device: torch.device, info: dist.DistInfo, *, init: bool = True,
              message=lambda text: None, weights_dir=None) -> Nets:
    """The generator (initialised from ``model.init`` / ``init_parts`` when ``init``), discriminator, EMA and
    objective, DDP-wrapped under torchrun."""
    from facesr import models
    from facesr.train.objective import Objective
    from facesr.train.state import load_init

    model = models.build(cfg.model.name, **cfg.model.args).to(device)
    if init and (cfg.model.init or cfg.model.init_parts):
        miss, unexp = load_init(model, cfg.model.init, cfg.model.init_parts)
        sources = [cfg.model.init] if cfg.model.init else []
        sources += [f"{k} ← {v}" for k, v in cfg.model.init_parts.items()]
        message(f"initialised from {', '.join(sources)} ({miss} missing, {unexp} unexpected keys)")
    disc = None
    if cfg.model.discriminator:
        disc = models.build(cfg.model.discriminator, **cfg.model.discriminator_args).to(device)
    ema = EMA(model, cfg.ema.decay) if cfg.ema.decay > 0 else None
    try:
        objective = Objective(cfg, weights_dir).to(device)
    except WeightsMissingError as exc:
        hint = (f"{exc.hint}; or train without the VGG-based terms: --set loss.perceptual=0 --set loss.lpips=0 "
                "--set val.lpips=false")
        raise WeightsMissingError(str(exc), hint=hint) from None
    if objective.needs_disc and disc is None:
        raise ConfigError(f"loss recipe {objective.recipe.name!r} has a GAN term but model.discriminator is empty",
                          hint="--set model.discriminator=mrrgan_d, or --set loss.gan=0")
    net, dnet = model, disc
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [device.index] if device.type == "cuda" else None
        net = DDP(model, device_ids=ids)
        dnet = DDP(disc, device_ids=ids) if disc is not None else None
    return Nets(model, disc, ema, objective, net, dnet)


def scheduler(cfg: TrainConfig, opt):
    s = cfg.sched
    if opt is None or s.name == "none":
        return None
    if s.name == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt, mode="min", factor=s.factor, patience=s.patience, threshold=1e-4, threshold_mode="abs",
            min_lr=s.min_lr)
    if s.name == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=s.step_size, gamma=s.gamma)
    return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(s.milestones), gamma=s.gamma)


@dataclass
class Optim:
    opt: torch.optim.Optimizer
    dopt: torch.optim.Optimizer | None
    sched: Any
    dsched: Any
    scaler: Any
    dscaler: Any


def make_optim(cfg: TrainConfig, nets: Nets, amp: torch.dtype | None, device: torch.device) -> Optim:
    o = cfg.optim
    opt = torch.optim.Adam(nets.model.parameters(), lr=o.lr, betas=o.betas, eps=o.eps, weight_decay=o.weight_decay)
    dopt = None
    if nets.disc is not None:
        dopt = torch.optim.Adam(nets.disc.parameters(), lr=o.d_lr, betas=o.d_betas, eps=o.eps)
    follow = cfg.sched.discriminator and cfg.sched.name != "plateau"  # plateau watches the generator's score
    return Optim(opt, dopt, scheduler(cfg, opt), scheduler(cfg, dopt) if follow else None,
                 torch.amp.GradScaler(device.type, enabled=amp == torch.float16),
                 torch.amp.GradScaler(device.type, enabled=amp == torch.float16))


def checkpoint_sets(nets: Nets, o: Optim) -> tuple[dict[str, Any], dict[str, Any]]:
    """(weight sets → safetensors, training states → train_state): what a checkpoint saves and restores."""
    weights = {"model": nets.model, "ema": nets.ema, "disc": nets.disc}
    states = {"optimizer": o.opt, "scaler": o.scaler, "scheduler": o.sched, "d_scheduler": o.dsched,
              "d_optimizer": o.dopt, "d_scaler": o.dscaler if o.dopt is not None else None}
    return ({k: v for k, v in weights.items() if v is not None}, {k: v for k, v in states.items() if v is not None})


def make_augment(cfg: TrainConfig):
    """``f(batch, epoch) → batch`` (float batch on the device, same keys) from ``data.augment`` (:mod:`facesr.data.augment`), or None when it is off."""
    a = cfg.data.augment
    if not (a.hflip or a.rot90 or a.rescale):
        return None
    try:
        from facesr.data import augment
    except ImportError:
        raise ConfigError("data.augment is set, but this facesr has no facesr.data.augment module yet",
                          hint="--set data.augment.hflip=0 --set data.augment.rot90=false "
                               "--set data.augment.rescale=[]") from None
    return augment.from_config(a, seed=cfg.seed, lr=cfg.data.lr)


def _batch_hook(cfg: TrainConfig):
    """Augmentation, then the on-the-fly targets (W-Net's LR parsing map, facesr/train/targets.py)."""
    aug = make_augment(cfg)
    if "parsing" not in cfg.data.priors or cfg.loss.parsing_target != "lr":
        return aug
    from facesr.train.targets import with_lr_parsing

    return with_lr_parsing(aug)


def make_data(cfg: TrainConfig, store, info: dist.DistInfo):
    """``(train dataset, its loader, val dataset or None (ranks > 0), optimizer steps per epoch)``."""
    from facesr.data.loader import StoreDataset, StoreEvalDataset
    from facesr.errors import TrainingError

    from facesr.train.inference import run_lr_specs

    d = cfg.data
    specs = run_lr_specs(cfg)  # several (UFVNet MR8): one size per batch, facesr/train/multires.py; val on the first
    train_ds = StoreDataset(store, d.train_split, lr=specs[0], priors=tuple(d.priors), shuffle=True, seed=cfg.seed,
                            rank=info.rank, world_size=info.world_size, batch_size=d.batch_size, drop_last=d.drop_last)
    per_rank = train_ds.per_rank()
    batches = per_rank // d.batch_size if d.drop_last else -(-per_rank // d.batch_size)
    steps = batches // cfg.optim.accumulate
    if steps < 1:
        raise TrainingError(
            f"split {d.train_split!r} gives {per_rank} samples per rank, fewer than one step of "
            f"{d.batch_size} × {cfg.optim.accumulate} (batch × accumulate)",
            hint="lower --set data.batch_size or optim.accumulate, or use a bigger store")
    val_ds = None
    if info.is_main:
        val_ds = StoreEvalDataset(store, d.val_split, lr=specs[0], priors=(), batch_size=d.val_batch_size, rank=0,
                                  world_size=1)
    loader = train_ds.loader(num_workers=d.num_workers)
    if len(specs) > 1:
        from facesr.train.multires import MultiResLoader

        loader = MultiResLoader(loader, train_ds, store, specs, cfg.seed)
    return train_ds, loader, val_ds, steps


def make_step(cfg: TrainConfig, nets: Nets, optim: Optim, *, to_float, device, autocast, info: dist.DistInfo,
              flag_device):
    from facesr.train.step import GANStep, SRStep

    kw = dict(net=nets.net, model=nets.model, objective=nets.objective, opt=optim.opt, scaler=optim.scaler,
              to_float=to_float, augment=_batch_hook(cfg), device=device, autocast=autocast, grad_clip=cfg.optim.grad_clip,
              world_size=info.world_size, flag_device=flag_device)
    if nets.disc is None:
        return SRStep(**kw)
    return GANStep(disc=nets.disc, dnet=nets.dnet, d_loss=nets.objective.disc_loss,
                   dopt=optim.dopt, dscaler=optim.dscaler, d_input=cfg.loss.d_input, **kw)
