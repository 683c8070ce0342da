"""Validation during training: the one evaluator (:func:`facesr.metrics.evaluate.evaluate`) on the val split,
the run's criterion, and the picture grid.

PSNR/SSIM under ``val.protocol``, LPIPS-VGG when ``val.lpips`` (a random trunk with ``pretrained: false``,
the column then says ``-rand``), the PIL-bicubic baseline on the same images once per run, and the first
``val.grid_n`` samples for the grid (:func:`facesr.data.visualize.comparison_grid`). Scoring is on uint8
RGB, so a validation number equals ``facesr eval`` of the same images saved as PNG.

Seed-000 criterion (lower is better)::

    1.5·LPIPS + 0.8·max(0, 0.02 − SSIM) + 0.2·max(0, 20 − PSNR)

with PSNR/SSIM under ``val.protocol`` (the released code used its own RGB metrics). The SSIM and PSNR
terms vanish once SSIM > 0.02 and PSNR > 20 dB (the paper: "truncated once they exceed thresholds"), so
the criterion is driven by LPIPS. Without LPIPS the criterion is the rest, which is 0 for any sensible
model; ties are then broken by PSNR: the monitored score is ``criterion − 0.01·PSNR``. ``psnr`` / ``ssim``
criteria monitor ``−PSNR`` / ``−SSIM``. The score feeds ReduceLROnPlateau, early stopping and ``best``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from facesr.train.config import TrainConfig

__all__ = ["Validation", "Validator", "criterion_seed000", "score"]


def criterion_seed000(psnr: float, ssim: float, lpips: float | None) -> float:
    """Seed 000's validation criterion (lower is better); LPIPS None = leave its term out."""
    c = 0.8 * max(0.0, 0.02 - ssim) + 0.2 * max(0.0, 20.0 - psnr)
    if lpips is not None:
        c += 1.5 * lpips
    return c


def score(criterion: str, psnr: float, ssim: float, lpips: float | None) -> tuple[float, float]:
    """``(criterion value, monitored score)``; the score is lower-is-better (see the module docstring)."""
    if criterion == "seed000":
        crit = criterion_seed000(psnr, ssim, lpips)
        return crit, crit if lpips is not None else crit - 0.01 * psnr
    if criterion == "psnr":
        return psnr, -psnr
    return ssim, -ssim


@dataclass
class Validation:
    """One validation's numbers (means over ``images``), the bicubic baseline's and the grid picture."""

    protocol: str
    images: int
    psnr: float
    ssim: float
    lpips: float | None
    criterion: float
    score: float
    bicubic: dict[str, float] = field(default_factory=dict)
    grid: np.ndarray | None = None

    @property
    def finite(self) -> bool:
        return all(math.isfinite(v) for v in (self.psnr, self.ssim, self.score))

    def ensure_finite(self, epoch: int, step: int) -> None:
        """A NaN / inf validation means the weights diverged: TrainingError (the caller saves nothing)."""
        if not self.finite:
            from facesr.errors import TrainingError

            raise TrainingError(f"validation at epoch {epoch} (step {step}) is not finite (psnr[{self.protocol}] "
                                f"{self.psnr}): the model diverged",
                                hint="lower --set optim.lr, or --set optim.grad_clip=1.0; the last checkpoint is "
                                     "from before the divergence")

    def row(self, **extra: Any) -> dict[str, Any]:
        """The ``metrics.csv`` row: ``extra`` (epoch, step, kind …) then the named metrics."""
        p = self.protocol
        head = {k: extra[k] for k in ("epoch", "step", "kind") if k in extra}
        tail = {k: v for k, v in extra.items() if k not in head}
        return {**head, "images": self.images,
                f"psnr[{p}]": self.psnr, f"ssim[{p}]": self.ssim,
                "lpips": self.lpips if self.lpips is not None else float("nan"),
                "criterion": self.criterion, "score": self.score,
                f"bicubic_psnr[{p}]": self.bicubic.get(f"psnr[{p}]", float("nan")),
                f"bicubic_ssim[{p}]": self.bicubic.get(f"ssim[{p}]", float("nan")), **tail}


class Validator:
    """``validator(net, baseline=…, grid=…)`` → :class:`Validation`, on rank 0. LPIPS networks are built at
    the first validation and kept (the evaluator's ``cache``)."""

    def __init__(self, cfg: TrainConfig, batches, device: torch.device, autocast: Callable[[], Any],
                 weights_dir=None) -> None:
        from facesr.metrics.protocols import get_protocol

        self.cfg = cfg
        self.batches = batches
        self.device = device
        self.autocast = autocast
        self.protocol = get_protocol(cfg.val.protocol).name
        self.extras = ("lpips-vgg",) if cfg.val.lpips else ()
        self.cache: dict = {}
        self.weights_dir = weights_dir

    @torch.no_grad()
    def __call__(self, net: torch.nn.Module, *, baseline: bool, grid: bool) -> Validation:
        from facesr.metrics.evaluate import BICUBIC, evaluate
        from facesr.models import sr_of

        bad = []  # the evaluator scores uint8 images, where NaN / inf outputs would pass as finite garbage

        def predict(lr: torch.Tensor) -> torch.Tensor:
            with self.autocast():
                sr = sr_of(net(lr)).float()
            bad.append(~torch.isfinite(sr).all())
            return sr

        v, p = self.cfg.val, self.protocol
        was = net.training
        net.eval()
        try:
            res = evaluate(predict, self.batches, (p,), self.extras, baseline=baseline, limit=self.cfg.data.val_limit,
                           grid_n=v.grid_n if grid else 0, device=self.device, cache=self.cache,
                           lpips_rand=not self.cfg.pretrained, weights_dir=self.weights_dir)
        finally:
            net.train(was)
        m = res.means()
        if bool(torch.stack(bad).any()):
            m[f"psnr[{p}]"] = float("nan")  # non-finite outputs: the model diverged (Validation.ensure_finite)
        lp = next((val for k, val in m.items() if k.startswith("lpips[")), None)
        crit, sc = score(v.criterion, m[f"psnr[{p}]"], m[f"ssim[{p}]"], lp)
        bic = res.means(BICUBIC) if baseline and BICUBIC in res.baselines else {}
        picture = None
        if grid and res.samples:
            from facesr.data.visualize import comparison_grid

            picture = comparison_grid(res.samples, n=v.grid_n)
        return Validation(p, len(res.ids), m[f"psnr[{p}]"], m[f"ssim[{p}]"], lp, crit, sc,
                          {k: bic[k] for k in (f"psnr[{p}]", f"ssim[{p}]") if k in bic}, picture)
