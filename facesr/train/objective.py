"""The run's loss: the recipe named by ``loss.recipe`` (:data:`facesr.train.losses.RECIPES`, the single source
of each paper's loss) with the run's per-term overrides, evaluated on a model output and a batch.

Overrides (``--set loss.<term>=w``): a weight replaces the recipe's (0 removes the term; a term the recipe
lacks is added with its default builder, :data:`~facesr.train.losses.TERMS`); ``loss.perceptual_preset``, ``perceptual_trunk``,
``loss.pixel_range`` and ``loss.ramp`` replace the recipe's when set; ``loss.heatmap_gamma`` /
``heatmap_floor`` / ``key_region_perceptual`` configure their terms. ``loss.recipe: ""`` starts from no term.

Inputs: every loss names its arguments (``inputs``); :class:`Inputs` computes each name on first use from
the model output and the batch (:data:`PROVIDERS`), so a term needing a prior the batch lacks is a
one-line ConfigError naming the fix. The GAN step adds ``d_real`` / ``d_fake`` (the discriminator's scores).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from facesr.errors import ConfigError
from facesr.train import losses as L
from facesr.train.config import LossConfig, TrainConfig

__all__ = ["Inputs", "Objective", "PROVIDERS", "recipe_for"]


def _sr(output, batch):
    from facesr.models import sr_of

    return sr_of(output).float()


def _from(where: str, key: str, hint: str) -> Callable:
    def get(output, batch):
        d = output if where == "model output" else batch
        if not isinstance(d, dict) or key not in d:
            raise ConfigError(f"the loss needs {key!r} in the {where}", hint=hint)
        return d[key]

    return get


_prior = {k: _from("batch", k, f"add {k!r} to data.priors") for k in ("heatmap", "parsing")}
_out = {k: _from("model output", k, "use a model that outputs it, or set its loss weight to 0")
        for k in ("parsing", "weight_logits")}


def _parsing_hr(output, batch):
    """W-Net eq. 25's target: the binary skin map (class 1), at the size of the predicted parsing map."""
    pred = _out["parsing"](output, batch)
    if "lr_parsing" in batch:  # §4.2's LR target (facesr/train/targets.py), on the prediction's grid as I^d is
        from facesr.models.layers import resize_to

        lr = batch["lr_parsing"].to(pred.device, torch.float32)
        return resize_to(lr, pred.shape[-1], mode="bicubic").clamp(0, 1).expand_as(pred)
    skin = (_prior["parsing"](output, batch) == 1).float().unsqueeze(1)
    if skin.shape[-2:] != pred.shape[-2:]:
        skin = F.interpolate(skin, size=pred.shape[-2:], mode="bilinear", align_corners=False)
    return skin.expand_as(pred)


def _target(output, batch):
    """UFVNet eq. 4: the anchor weights of the batch's LR side."""
    from facesr.models.ufvnet import anchor_target_weights

    logits = _out["weight_logits"](output, batch)
    return anchor_target_weights([batch["lr"].shape[-1]]).to(logits.device).expand(len(logits), -1)


#: input name → f(model output, batch)
PROVIDERS: dict[str, Callable[[Any, dict], Any]] = {
    "sr": _sr,
    "hr": lambda o, b: b["hr"],
    "heatmap": _prior["heatmap"],
    "classes": _prior["parsing"],
    "parsing_sr": lambda o, b: _out["parsing"](o, b).float(),
    "parsing_hr": _parsing_hr,
    "logits": lambda o, b: _out["weight_logits"](o, b).float(),
    "target": _target,
}


class Inputs(Mapping):
    """The loss inputs of one step, each computed once on first use; ``extra`` supplies the rest."""

    def __init__(self, output, batch: dict, extra: Mapping[str, Any] | None = None) -> None:
        self.output, self.batch = output, batch
        self._cache: dict[str, Any] = dict(extra or {})

    def __getitem__(self, key: str):
        if key not in self._cache:
            if key not in PROVIDERS:
                raise ConfigError(f"the loss needs {key!r}, which this step does not provide",
                                  hint="GAN terms need model.discriminator")
            self._cache[key] = PROVIDERS[key](self.output, self.batch)
        return self._cache[key]

    def __iter__(self) -> Iterator[str]:
        return iter(PROVIDERS)

    def __len__(self) -> int:
        return len(PROVIDERS)


def recipe_for(lc: LossConfig) -> L.Recipe:
    """The recipe of ``lc.recipe`` with ``lc``'s overrides applied (see the module docstring)."""
    if lc.recipe and lc.recipe not in L.RECIPES:
        close = difflib.get_close_matches(lc.recipe, L.RECIPES, n=1)
        raise ConfigError(f"unknown loss recipe {lc.recipe!r}",
                          hint=f"did you mean {close[0]!r}?" if close else f"recipes: {', '.join(L.RECIPES)}")
    base = L.RECIPES[lc.recipe] if lc.recipe else L.Recipe("custom", {})
    terms = dict(base.terms)
    for name, default in L.TERMS.items():
        w = getattr(lc, name)
        if w is None:
            continue
        if float(w) == 0.0:
            terms.pop(name, None)
        else:
            terms[name] = replace(terms.get(name, default), weight=float(w))
    options = {"heatmap": {"gamma": lc.heatmap_gamma, "floor": lc.heatmap_floor},
               "perceptual": {k: v for k, v in (("preset", lc.perceptual_preset), ("trunk", lc.perceptual_trunk)) if v},
               "key_region": {} if lc.key_region_perceptual else {"perceptual_preset": None}}
    for name, kw in options.items():
        if name in terms and kw:
            terms[name] = replace(terms[name], kwargs={**terms[name].kwargs, **kw})
    ramp = {"": base.ramp, "none": ""}.get(lc.ramp, lc.ramp)
    return replace(base, terms=terms, pixel_range=lc.pixel_range or base.pixel_range, ramp=ramp)


class Objective(nn.Module):
    """``forward(output, batch, extra)`` → raw term values ``{name: tensor}``; :meth:`total` weights them
    (ramp included) at an epoch. ``disc_loss``: the discriminator's loss (the recipe's, else eq. 8)."""

    def __init__(self, cfg: TrainConfig, weights_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.recipe = recipe_for(cfg.loss)
        if not set(self.recipe.terms) - {"gan"}:
            raise ConfigError("every loss weight is 0", hint="set one, e.g. --set loss.l1=1 or --set loss.recipe=pixel-l1")
        self.loss = L.PaperLoss(self.recipe, pretrained=cfg.pretrained, weights_dir=weights_dir,
                                total_epochs=cfg.loss.ramp_epochs)
        self.needs_disc = any(t.loss.startswith("rahinge") for t in self.recipe.terms.values())
        self.disc_loss = L.build_term(self.recipe.disc or L.Term("rahinge_d"))  # used only with a discriminator

    @property
    def weights(self) -> dict[str, float]:
        """Base weight of each term (before the ramp and the pixel-range scale)."""
        return {k: t.weight for k, t in self.recipe.terms.items()}

    def ramp(self, epoch: float) -> dict[str, float]:
        """Ramp multipliers at ``epoch`` (empty: no ramp)."""
        return self.recipe.factors(epoch, self.loss.total_epochs)

    def forward(self, output, batch: dict, extra: Mapping[str, Any] | None = None) -> dict[str, torch.Tensor]:
        return self.loss.parts(Inputs(output, batch, extra))

    def total(self, terms: Mapping[str, torch.Tensor], epoch: float) -> torch.Tensor:
        return self.loss.combine(terms, epoch)
