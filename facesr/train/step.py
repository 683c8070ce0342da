"""One optimizer step: :class:`SRStep` (a generator and its objective) and :class:`GANStep` (then the
discriminator), each returning a :class:`StepResult`.

SR step, on ``optim.accumulate`` consecutive batches (1: plain): for each batch, forward under
``torch.autocast`` (``amp``), the objective's terms (:mod:`facesr.train.objective`), ``total / accumulate``,
a finiteness check that every DDP rank agrees on, backward (DDP syncs gradients on the last batch only);
then optional gradient clipping and one ``scaler.step``. A non-finite loss on any batch of any rank skips
the whole step: gradients are dropped and no weight, optimizer or scaler state changes. The trainer counts
skips (``nan_patience``).

GAN step (MRRGAN, as ``SYLan2019/MRRNet`` ``optimize_parameters``): the generator step above with the
discriminator frozen, its scores ``d_real``/``d_fake`` feeding the recipe's ``gan`` term; then one
discriminator step with the recipe's D loss on ``hr`` against the generator's output — by default the
*updated* generator's (``loss.d_input: updated``, one more no-grad forward: the released ``backward_D``
re-runs ``netG``), or this step's output detached (``same``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from facesr.train import distributed as dist

__all__ = ["GANStep", "SRStep", "StepResult"]


@dataclass
class StepResult:
    """``loss``: the weighted total (mean over ranks and accumulated batches; NaN when skipped);
    ``terms``: raw term values of this rank (``d_loss`` for GANs); ``samples``: images this rank used."""

    loss: float
    terms: dict[str, float] = field(default_factory=dict)
    samples: int = 0
    skipped: bool = False


class SRStep:
    """``step(raw_batches, epoch)`` → :class:`StepResult`; see the module docstring."""

    def __init__(self, *, net: nn.Module, model: nn.Module, objective, opt: torch.optim.Optimizer, scaler,
                 to_float: Callable, device: torch.device, autocast: Callable[[], Any], grad_clip: float = 0.0,
                 world_size: int = 1, flag_device: Callable[[], torch.device] | None = None,
                 augment: Callable[[dict, int], dict] | None = None) -> None:
        self.net, self.model, self.objective, self.opt, self.scaler = net, model, objective, opt, scaler
        self.to_float, self.device, self.autocast, self.augment = to_float, device, autocast, augment
        self.grad_clip, self.world_size = grad_clip, world_size
        self.flag_device = flag_device or (lambda: torch.device("cpu"))

    def extra(self, out, batch: dict) -> dict[str, torch.Tensor]:
        """Loss inputs beyond the output and the batch (the GAN step adds the discriminator's scores)."""
        return {}

    def _agree(self, total: torch.Tensor) -> tuple[bool, float]:
        """(every rank finite, mean loss over ranks): one all-reduce under DDP."""
        check = torch.stack([torch.isfinite(total).float(), total.detach().float().nan_to_num(0.0)])
        if dist.active():
            import torch.distributed as tdist

            check = check.to(self.flag_device())
            tdist.all_reduce(check)
        finite_ranks, loss_sum = check.tolist()
        return finite_ranks == self.world_size, loss_sum / self.world_size

    def generator(self, raws: Sequence[dict], epoch: int) -> tuple[StepResult, list[tuple[dict, Any]]]:
        """Forward, backward and step of the generator; also returns each batch with its output."""
        k = len(raws)
        loss, sums, samples, kept = 0.0, {}, 0, []
        for i, raw in enumerate(raws):
            batch = self.to_float(raw, self.device)
            if self.augment is not None:  # data.augment: the same transform for HR, LR and priors of a sample
                batch = self.augment(batch, epoch)
            sync = i == k - 1 or not hasattr(self.net, "no_sync")
            with contextlib.nullcontext() if sync else self.net.no_sync():
                with self.autocast():
                    out = self.net(batch["lr"])
                    terms = self.objective(out, batch, self.extra(out, batch))
                # loss ramps count epochs from 1, as the seed-000 notebook's loop (`epoch` here is 0-based)
                total = self.objective.total(terms, epoch + 1) / k
                finite, value = self._agree(total)
                # one device sync for every term, not one per term
                values = dict(zip(terms, torch.stack([v.detach().float() for v in terms.values()]).tolist()))
                for name, v in values.items():
                    sums[name] = sums.get(name, 0.0) + v / k
                if not finite:
                    self.opt.zero_grad(set_to_none=True)
                    return StepResult(float("nan"), values, samples + int(batch["lr"].shape[0]), True), kept
                self.scaler.scale(total).backward()
            loss += value
            samples += int(batch["lr"].shape[0])
            kept.append((batch, out))
        if self.grad_clip > 0:
            self.scaler.unscale_(self.opt)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.grad_clip)
        self.scaler.step(self.opt)
        self.scaler.update()
        self.opt.zero_grad(set_to_none=True)
        return StepResult(loss, sums, samples), kept

    def __call__(self, raws: Sequence[dict], epoch: int) -> StepResult:
        return self.generator(raws, epoch)[0]


class GANStep(SRStep):
    """:class:`SRStep`, then one discriminator step (see the module docstring)."""

    def __init__(self, *, disc: nn.Module, dnet: nn.Module, d_loss: nn.Module, dopt: torch.optim.Optimizer,
                 dscaler, d_input: str = "updated", **kw: Any) -> None:
        super().__init__(**kw)
        self.disc, self.dnet, self.d_loss, self.dopt, self.dscaler = disc, dnet, d_loss, dopt, dscaler
        self.d_input = d_input

    def _train_d(self, flag: bool) -> None:
        for p in self.disc.parameters():
            p.requires_grad_(flag)

    def extra(self, out, batch: dict) -> dict[str, torch.Tensor]:
        from facesr.models import sr_of

        self._train_d(False)  # the generator's step must not touch D (as the released network_grad_set)
        if not self.objective.needs_disc:  # loss.gan=0: D still trains, but G's loss does not use it
            return {}
        return {"d_real": self.disc(batch["hr"]), "d_fake": self.disc(sr_of(out))}

    def __call__(self, raws: Sequence[dict], epoch: int) -> StepResult:
        from facesr.models import sr_of

        res, kept = self.generator(raws, epoch)
        res.terms["d_loss"] = float("nan")  # keeps the CSV columns fixed when the step is skipped
        if res.skipped:
            return res
        self._train_d(True)
        d_total = 0.0
        for i, (batch, out) in enumerate(kept):
            if self.d_input == "updated":
                with torch.no_grad(), self.autocast():
                    fake = sr_of(self.model(batch["lr"]))
            else:
                fake = sr_of(out).detach()
            sync = i == len(kept) - 1 or not hasattr(self.dnet, "no_sync")
            with contextlib.nullcontext() if sync else self.dnet.no_sync():
                with self.autocast():
                    d = self.d_loss(self.dnet(batch["hr"]), self.dnet(fake)) / len(kept)
                self.dscaler.scale(d).backward()
            d_total += float(d.detach().float().item())
        self.dscaler.step(self.dopt)
        self.dscaler.update()
        self.dopt.zero_grad(set_to_none=True)
        res.terms["d_loss"] = d_total
        return res
