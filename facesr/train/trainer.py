"""The training loop: epochs of optimizer steps over a store, validation, checkpoints, budgets and signals.

Run folder (``out``; locked by :class:`~facesr.train.runlock.RunLock` while a training writes it):

=======================  ==================================================================
``config.yaml``          the resolved :class:`~facesr.train.config.TrainConfig`
``run.json``             store path, snapshot id and attributes, world size, versions
``steps.csv``            one row per optimizer step (loss and its terms, lr, samples/s)
``metrics.csv``          one row per validation (:mod:`facesr.train.validate`)
``tb/``                  TensorBoard events
``grids/epoch-NNN.png``  validation grid (:func:`facesr.data.visualize.comparison_grid`)
``checkpoints/last``     after every epoch (and every ``checkpoint.every_steps`` steps, and at a stop)
``checkpoints/best``     the best validation so far
=======================  ==================================================================

Parts: the loss in :mod:`~facesr.train.objective`, one step in :mod:`~facesr.train.step`, building them in
:mod:`~facesr.train.build`, validation in :mod:`~facesr.train.validate`, position, RNG and the exact-resume
rule in :mod:`~facesr.train.state`, checkpoint files in :mod:`~facesr.train.checkpoint`, budgets and
signals in :mod:`~facesr.train.stops`.

Stops: ``epochs`` / ``early_stop`` finish the run; ``max_steps`` / ``max_minutes`` stop it with a checkpoint
and a final validation (``kind=final``, which feeds neither the scheduler, early stopping nor ``best``, so
a stopped-and-resumed run follows the uninterrupted one); a signal stops it with a checkpoint only. A
non-finite loss skips its step, ``nan_patience`` in a row — or a non-finite validation — raises
:class:`~facesr.errors.TrainingError` before anything diverged is saved. Nothing here prints: progress
goes to a :class:`Reporter`; tests observe or slow the steps through ``on_step``.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable
from pathlib import Path

import torch

from facesr.errors import ConfigError
from facesr.runtime import lr_size, resolve_device
from facesr.train import checkpoint as ckpt
from facesr.train import distributed as dist
from facesr.train.build import amp_dtype, checkpoint_sets, deterministic, make_data, make_nets, make_optim, make_step
from facesr.train.config import TrainConfig, dump_yaml
from facesr.train.logging import Reporter, RunLog, TrainResult, write_run_files
from facesr.train.runlock import RunLock
from facesr.train.state import TrainState, restore, save_checkpoint, seed_everything, set_rng_state
from facesr.train.step import StepResult
from facesr.train.stops import Stops
from facesr.train.validate import Validator

__all__ = ["Reporter", "TrainResult", "Trainer", "train"]


class Trainer:
    """Build everything for one run (:mod:`facesr.train.build`); :meth:`fit` trains.

    ``on_step(raw_batches, result)`` is called after every optimizer step (tests record or slow steps);
    ``weights_dir``: where the VGG / LPIPS trunks are (default: :mod:`facesr.weights`' search order).
    """

    def __init__(self, cfg: TrainConfig, store, out: str | os.PathLike, *, resume: bool = False,
                 reporter: Reporter | None = None, on_step: Callable[[list, StepResult], None] | None = None,
                 weights_dir: str | os.PathLike | None = None) -> None:
        from facesr.data.store import FaceStore

        self.cfg, self.out, self.on_step, self.weights_dir = cfg, Path(out), on_step, weights_dir
        self.reporter = reporter or Reporter()
        self.info = dist.setup()
        self.main = self.info.is_main
        self.device = resolve_device(cfg.device, self.info.local_rank if self.info.enabled else None)
        self.amp = amp_dtype(cfg.amp, self.device)
        self.lock = RunLock(self.out).acquire() if self.main else None
        try:
            self.resume_from: Path | None = None
            if resume:
                self.resume_from, passed = ckpt.for_resume(self.out)
                for note in passed:
                    self.reporter.message(f"skipping a damaged checkpoint: {note}")
            elif ckpt.exists(self.out):
                raise ConfigError(f"{self.out} already holds a run",
                                  hint="pass --resume to continue it, or choose another --out")
            self.store = store if isinstance(store, FaceStore) else FaceStore.open(store, snapshot="latest")
            self._build(cfg, resume)
        except BaseException:
            self.close()
            raise

    def _build(self, cfg: TrainConfig, resume: bool) -> None:
        deterministic(cfg, self.device)
        seed_everything(cfg.seed)
        self.nets = n = make_nets(cfg, self.device, self.info, init=not resume, message=self.reporter.message,
                                  weights_dir=self.weights_dir)
        self.model, self.disc, self.ema = n.model, n.disc, n.ema
        self.optim = make_optim(cfg, n, self.amp, self.device)
        from facesr.train.inference import run_lr_specs

        self.lr_size = lr_size(run_lr_specs(cfg)[0])  # multi-resolution (data.lr: MR8): the validation size
        from facesr.train.recipe import check_heatmap_preset

        check_heatmap_preset(cfg, self.store, self.reporter.message)  # seed 000: the maps its weights were tuned on
        self.train_ds, self.train_loader, val_ds, self.steps_per_epoch = make_data(cfg, self.store, self.info)
        self.step = make_step(cfg, n, self.optim, to_float=self.train_ds.to_float, device=self.device,
                              autocast=self._autocast, info=self.info, flag_device=self._flag_device)
        self.validator = Validator(cfg, val_ds, self.device, self._autocast, self.weights_dir) if self.main else None
        self.state = TrainState()
        self.log: RunLog | None = None

    def _save(self, name: str = "last") -> None:
        if self.main:
            weights, states = checkpoint_sets(self.nets, self.optim)
            facts = {"world_size": self.info.world_size, "model": self.cfg.model.name,
                     "model_args": dict(self.cfg.model.args), "lr_spec": self.cfg.data.lr, "lr_size": self.lr_size}
            save_checkpoint(self.out / "checkpoints" / name, weights=weights, states=states, train=self.state,
                            facts=facts)

    @property
    def _amp_name(self) -> str:
        return str(self.amp).replace("torch.", "") if self.amp else "off"

    def _autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp or torch.float32, enabled=self.amp is not None)

    def _flag_device(self):
        import torch.distributed as tdist

        return self.device if tdist.get_backend() == "nccl" else torch.device("cpu")

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def fit(self) -> TrainResult:
        try:
            return self._fit()
        finally:
            self.close()

    def _fit(self) -> TrainResult:
        cfg, rng = self.cfg, None
        if self.resume_from is not None:
            weights, states = checkpoint_sets(self.nets, self.optim)
            self.state, saved, rng = restore(self.resume_from, weights=weights, states=states)
            if saved.get("world_size", 1) != self.info.world_size:
                self.reporter.message(f"resuming a {saved.get('world_size')}-process run on {self.info.world_size}: "
                                      "the data order differs from an uninterrupted run")
        if self.main:
            write_run_files(self.out, dump_yaml(cfg), self.store, world_size=self.info.world_size,
                            device=str(self.device), amp=self._amp_name)
            (self.out / "grids").mkdir(exist_ok=True)
            # a fresh run starts at step 0: rows left by an attempt killed before its first checkpoint go too
            self.log = RunLog(self.out, resume_step=self.state.step)
        dist.barrier()
        if self.main and not cfg.val.lpips and cfg.val.criterion == "seed000":
            self.reporter.message("LPIPS is off at validation: the seed-000 criterion uses the SSIM and PSNR terms "
                                  "only (ties broken by PSNR: score = criterion - 0.01*PSNR)")
        total = cfg.epochs * self.steps_per_epoch
        self.reporter.start(total_steps=min(total, cfg.max_steps) if cfg.max_steps else total,
                            first_step=self.state.step, steps_per_epoch=self.steps_per_epoch,
                            info={"device": str(self.device), "amp": self._amp_name, "world_size": self.info.world_size,
                                  "model": cfg.model.name, "params": sum(p.numel() for p in self.model.parameters())})
        if self.state.finished == "epochs" and self.state.epoch < cfg.epochs:
            self.state.finished = ""  # resumed with more epochs
        if self.state.finished:
            self.reporter.message(f"the run has already finished ({self.state.finished}); nothing to do")
            return self._finish("finished", None)
        with Stops(cfg.max_steps, cfg.max_minutes, self.reporter.message, self._flag_device) as stops:
            return self._loop(rng, stops)

    def _loop(self, rng, stops: Stops) -> TrainResult:
        """The epochs, from ``self.state`` (``rng``: RNG states to restore after a mid-epoch skip)."""
        cfg, t0, reason, last_val, stop = self.cfg, time.monotonic(), "epochs", None, None
        k = cfg.optim.accumulate
        self.nets.net.train()
        if self.disc is not None:
            self.nets.dnet.train()
        while self.state.epoch < cfg.epochs:
            epoch = self.state.epoch
            self.train_ds.set_epoch(epoch)
            it = iter(self.train_loader)
            for _ in itertools.islice(it, self.state.batch):  # resume mid-epoch: skip what was trained on
                pass
            if rng is not None:
                set_rng_state(rng)
                rng = None
            win_t = time.monotonic()
            for _ in range(self.state.batch // k, self.steps_per_epoch):
                stop = stops.check(self.state.step)
                batches = list(itertools.islice(it, k)) if not stop else []
                if len(batches) < k:
                    break
                res = self._one_step(batches, epoch)
                if self.main:
                    now = time.monotonic()
                    row = {"step": self.state.step, "epoch": epoch, "batch": self.state.batch, "loss": res.loss,
                           **res.terms, "lr": self.optim.opt.param_groups[0]["lr"], "skipped": self.state.skipped,
                           "samples_per_s": round(res.samples * self.info.world_size / max(now - win_t, 1e-9), 2),
                           "time": round(now - t0, 3)}
                    self.log.step(row, scalars=self.state.step % max(cfg.log_every, 1) == 0)
                    self.reporter.step(row)
                    win_t = now
                if cfg.checkpoint.every_steps and self.state.step % cfg.checkpoint.every_steps == 0:
                    self._save("last")
                if self.on_step is not None:
                    self.on_step(batches, res)
            if stop:
                break
            self.state.epoch += 1
            self.state.batch = 0
            self._sched_step("epoch")
            last_epoch = self.state.epoch >= cfg.epochs
            early = False
            if self.state.epoch % max(cfg.val.every, 1) == 0 or last_epoch:
                last_val, early = self._validate_and_track()
            self.state.finished = "early_stop" if early else ("epochs" if last_epoch else "")
            reason = "early_stop" if early else reason
            self._save("last")  # one save per epoch end, the outcome included
            if early:
                break
        else:
            if self.state.finished != "epochs":  # resumed at or past the last epoch (e.g. with fewer epochs)
                self.state.finished = "epochs"
                self._save("last")
        if stop:
            reason = stop
            if self.main and stop != "interrupted":  # a signalled job may have seconds left: save only
                last_val = self._validate(kind="final")  # first: a diverged model is not saved
                self.log.validation(last_val)
                self.reporter.validation(last_val)
            self._save("last")
        dist.barrier()
        return self._finish(reason, last_val)

    def _one_step(self, batches: list, epoch: int) -> StepResult:
        res = self.step(batches, epoch)
        self.state.batch += len(batches)
        self.state.count_step(res.skipped, self.cfg.nan_patience, res.terms)
        if not res.skipped:
            self._sched_step("step")
            if self.ema is not None and self.state.step % max(self.cfg.ema.every, 1) == 0:
                self.ema.update(self.model)
        return res

    def _sched_step(self, interval: str) -> None:
        if self.cfg.sched.name in ("step", "multistep") and self.cfg.sched.interval == interval:
            for s in (self.optim.sched, self.optim.dsched):
                if s is not None:
                    s.step()

    def _finish(self, reason: str, last_val) -> TrainResult:
        result = TrainResult(self.out, self.state.to_json(), reason, last_val)
        if self.log is not None:
            self.log.close()
        self.reporter.end(result)
        return result

    def _validate_and_track(self) -> tuple[dict | None, bool]:
        row = self._validate(kind="val") if self.main else None
        score = dist.broadcast(row["score"] if row else None)
        if self.optim.sched is not None and self.cfg.sched.name == "plateau":
            self.optim.sched.step(score)
        improved = self.state.track(score, self.cfg.val.min_delta)
        if self.main:
            row["best"] = bool(improved)
            self.log.validation(row)
            self.reporter.validation(row)
        if improved and self.cfg.checkpoint.keep_best:
            self._save("best")
        early = bool(self.cfg.val.early_stop and self.state.bad >= self.cfg.val.early_stop)
        if early and self.main:
            self.reporter.message(f"early stop: {self.state.bad} validations without improvement "
                                  f"(best epoch {self.state.best_epoch})")
        return row, early

    def _validate(self, kind: str) -> dict:
        """Rank 0: one validation row; a non-finite one means the weights diverged: stop before saving them."""
        from facesr.data.images import write_png

        grid = kind == "final" or self.state.epoch % max(self.cfg.val.grid_every, 1) == 0
        v = self.validator(self.ema.module if self.ema is not None else self.model,
                           baseline=not self.state.bicubic, grid=grid)
        v.ensure_finite(self.state.epoch, self.state.step)
        if v.bicubic:
            self.state.bicubic = v.bicubic
        v.bicubic = self.state.bicubic
        row = v.row(epoch=self.state.epoch, step=self.state.step, kind=kind,
                    lr=self.optim.opt.param_groups[0]["lr"], best=False)
        if v.grid is not None:
            write_png(self.out / "grids" / f"epoch-{self.state.epoch:03d}{'-final' if kind == 'final' else ''}.png",
                      v.grid)
            self.log.image("val/grid", v.grid, self.state.step)
        return row


def train(cfg: TrainConfig, store, out, *, resume: bool = False, reporter: Reporter | None = None,
          on_step: Callable[[list, StepResult], None] | None = None,
          weights_dir: str | os.PathLike | None = None) -> TrainResult:
    """Train one run (see :class:`Trainer`); under torchrun every process calls this."""
    return Trainer(cfg, store, out, resume=resume, reporter=reporter, on_step=on_step, weights_dir=weights_dir).fit()
