"""Training losses of the five seed papers, as plain functions plus ``nn.Module`` wrappers in ``LOSSES``.

Ranges: every image argument is ``(N, 3, H, W)`` in [0, 1] unless a docstring says otherwise; models that
work in [-1, 1] convert at their boundary, so losses never see model-specific ranges. Reductions: means
over the batch. Registry names (``LOSSES.build(name, **kw)`` → ``nn.Module``):

=====================  =========================================================================================
``mse``, ``l1``         pixel losses (seed 000 eq. 2 L_pix; W-Net eq. 24; MRRNet eq. 7; UFVNet eq. 11)
``heatmap_l1``          seed 000 eq. 1 *as released*: per-sample min-max, H^1.3, w = 0.1 + 0.9 H, detached,
                        Σ w|sr − hr| / Σ w per sample, batch mean; uniform weights when the map is flat
``vgg_perceptual``      VGG16 relu1_2/2_2/3_3 MSE (seed 000), VGG19 relu1_2 … conv5_4 L1 at 224 (MRRNet eq. 10)
``lpips``               frozen LPIPS (seed 000 L_lpips)
``parsing_mse``         W-Net eq. 25
``key_region``          W-Net eqs. 27–28 (MSE + perceptual inside eyes, eyebrows, nose, mouth masks)
``rahinge_g/_d``        MRRNet eqs. 9 / 8 (relativistic average hinge)
``ufvnet_weight_ce``    UFVNet eq. 12 (soft-target cross-entropy of the weight regressor)
recipes                 ``seed000`` (eq. 2 as released, ramp :func:`seed000_ramp`), ``wnet`` (eq. 29), ``ufvnet``
                        (eq. 13), ``pixel-l1``, ``mrrgan`` (eq. 11 as released), ``mrrgan-paper`` (eqs. 8-11)
=====================  =========================================================================================

Each paper's loss is one :class:`Recipe` in :data:`RECIPES` (term → loss name, weight, builder options, a
the pixel range; an epoch ramp; the discriminator's loss for GANs): the single source of that
loss. :class:`PaperLoss` evaluates a recipe; the composite names above are ``PaperLoss`` of their recipe,
and the trainer's objective (:mod:`facesr.train.objective`) builds the same ``PaperLoss`` from the run's
``loss.recipe`` plus any per-term override. Every loss module names its arguments in ``inputs`` (``sr``,
``hr``, ``heatmap``, ``classes``, ``parsing_sr``, ``parsing_hr``, ``logits``, ``target``, ``d_real``,
``d_fake``), so a recipe is evaluated without knowing which loss is which.

ImageNet trunks are read from the weights directory or ``$TORCH_HOME/hub/checkpoints``
(``vgg16-397923af.pth``, ``vgg19-dcbb9e9d.pth``, ``vgg16_features-amdegroot-88682ab5.pth``; see
:mod:`facesr.train.perceptual` for which trunk each preset feeds and how); nothing is downloaded.
``pretrained=False`` builds a random trunk — for tests only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesr.metrics.backbones import IMAGENET_MEAN, IMAGENET_STD  # noqa: F401  (re-exported)
from facesr.registry import Registry
from facesr.train.perceptual import VGG_PRESETS, VGG_TRUNKS, VGGPerceptual  # noqa: F401  (re-exported)

LOSSES: Registry[nn.Module] = Registry("loss")


# -- pixel -----------------------------------------------------------------------------------------------
@LOSSES.register("mse")
class MSELoss(nn.MSELoss):
    """Mean squared error over every element (W-Net eq. 24: 1/(CHW)‖·‖², batch mean)."""

    inputs = ("sr", "hr")


@LOSSES.register("l1")
class L1Loss(nn.L1Loss):
    """Mean absolute error over every element (MRRNet eq. 7, UFVNet eq. 11)."""

    inputs = ("sr", "hr")


# -- seed 000 heatmap loss -------------------------------------------------------------------------------
def heatmap_weights(heatmap: torch.Tensor, gamma: float = 1.3, floor: float = 0.1, eps: float = 1e-8) -> torch.Tensor:
    """Detached per-pixel weights ``(N, 1, H, W)`` from ``(N, H, W)`` / ``(N, 1, H, W)`` heatmaps.

    Per sample: min-max to [0, 1], ``H ** gamma``, ``w = floor + (1 - floor) H``; a flat map (max − min
    ≤ eps, e.g. no detection) gives uniform weights.
    """
    h = heatmap.detach()
    if not h.is_floating_point():
        h = h.float()
    if h.dim() == 3:
        h = h[:, None]
    if h.dim() != 4 or h.shape[1] != 1:
        raise ValueError(f"heatmap must be (N, H, W) or (N, 1, H, W), got {tuple(heatmap.shape)}")
    flat = h.flatten(1)
    lo, hi = flat.min(1).values.view(-1, 1, 1, 1), flat.max(1).values.view(-1, 1, 1, 1)
    span = hi - lo
    norm = torch.where(span > eps, (h - lo) / span.clamp_min(eps), torch.ones_like(h))
    return floor + (1.0 - floor) * norm.pow(gamma)


def heatmap_l1(sr: torch.Tensor, hr: torch.Tensor, heatmap: torch.Tensor, gamma: float = 1.3, floor: float = 0.1) -> torch.Tensor:
    """Seed 000 eq. 1 as coded: mean over samples of Σ w|sr − hr| / Σ w (w broadcast over channels).

    The paper's eq. 1 normalises by the sum of weights over all pixels of the batch; the released code
    normalises per sample, which is what this computes (the two agree for batch size 1).
    """
    w = heatmap_weights(heatmap, gamma, floor).to(sr.dtype).expand_as(sr)
    per_sample = (w * (sr - hr).abs()).flatten(1).sum(1) / w.flatten(1).sum(1)
    return per_sample.mean()


@LOSSES.register("heatmap_l1")
class HeatmapL1Loss(nn.Module):
    inputs = ("sr", "hr", "heatmap")

    def __init__(self, gamma: float = 1.3, floor: float = 0.1) -> None:
        super().__init__()
        self.gamma, self.floor = gamma, floor

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        return heatmap_l1(sr, hr, heatmap, self.gamma, self.floor)


# -- perceptual (facesr/train/perceptual.py: layer presets, trunks and their input conventions) -------------
LOSSES.register("vgg_perceptual")(VGGPerceptual)


@LOSSES.register("lpips")
class LPIPSLoss(nn.Module):
    """Frozen LPIPS (linear layers and trunk), batch mean; [0, 1] inputs. ``pnet_rand`` for tests only."""

    inputs = ("sr", "hr")

    def __init__(self, net: str = "vgg", *, pnet_rand: bool = False, weights_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        from facesr.metrics.lpips import build_lpips

        self.model = build_lpips(net, pnet_rand=pnet_rand, weights_dir=weights_dir)

    def train(self, mode: bool = True):
        return super().train(False)

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return self.model(sr, hr, normalize=True).mean()


# -- W-Net -----------------------------------------------------------------------------------------------
def parsing_mse(parsing_sr: torch.Tensor, parsing_hr: torch.Tensor) -> torch.Tensor:
    """W-Net eq. 25: 1/(CHW)‖Parsing_SR − Parsing_HR‖², batch mean."""
    return F.mse_loss(parsing_sr, parsing_hr)


@LOSSES.register("parsing_mse")
class ParsingMSELoss(nn.Module):
    inputs = ("parsing_sr", "parsing_hr")

    def forward(self, parsing_sr: torch.Tensor, parsing_hr: torch.Tensor) -> torch.Tensor:
        return parsing_mse(parsing_sr, parsing_hr)


KEY_REGIONS = {"eyebrows": 2, "eyes": 3, "nose": 4, "mouth": 5}  # facesr class ids (metrics.regions)


def region_masks(classes: torch.Tensor, regions=tuple(KEY_REGIONS)) -> dict[str, torch.Tensor]:
    """``{region: (N, 1, H, W) float 0/1 mask}`` from ``(N, H, W)`` integer class maps."""
    return {r: (classes == KEY_REGIONS[r]).unsqueeze(1).float() for r in regions}


def masked_mse(sr: torch.Tensor, hr: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-sample MSE over the mask's pixels (all channels), batch mean; 0 for an empty mask."""
    m = mask.to(sr.dtype).expand_as(sr)
    num = (m * (sr - hr) ** 2).flatten(1).sum(1)
    den = m.flatten(1).sum(1)
    return torch.where(den > 0, num / den.clamp_min(1.0), torch.zeros_like(num)).mean()


def key_region_loss(sr: torch.Tensor, hr: torch.Tensor, classes: torch.Tensor, perceptual: nn.Module | None = None,
                    regions=tuple(KEY_REGIONS)) -> torch.Tensor:
    """W-Net eqs. 27–28: Σ over eyes, eyebrows, nose, mouth of L_mse^r + L_per^r.

    L_mse^r is the MSE inside the region (per-sample mean over its pixels); L_per^r is ``perceptual`` on
    the images multiplied by the 0/1 region mask (skipped when ``perceptual`` is None). ``classes`` are
    ``(N, H, W)`` facesr class maps of the HR.
    """
    total = sr.new_zeros(())
    for mask in region_masks(classes, regions).values():
        total = total + masked_mse(sr, hr, mask)
        if perceptual is not None:
            m = mask.to(sr.dtype)
            total = total + perceptual(sr * m, hr * m)
    return total


@LOSSES.register("key_region")
class KeyRegionLoss(nn.Module):
    """W-Net eqs. 27-28; ``perceptual``: a module, or ``perceptual_preset`` (a VGG preset) to build one."""

    inputs = ("sr", "hr", "classes")

    def __init__(self, perceptual: nn.Module | None = None, *, perceptual_preset: str | None = None,
                 pretrained: bool = True, weights_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        if perceptual is None and perceptual_preset:
            perceptual = VGGPerceptual(perceptual_preset, pretrained=pretrained, weights_dir=weights_dir)
        self.perceptual = perceptual

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return key_region_loss(sr, hr, classes, self.perceptual)


# -- MRRNet: relativistic average hinge ------------------------------------------------------------------
def rahinge_d_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """MRRNet eq. 8: E[max(0, 1 − (D(x_h) − E D(x_g)))] + E[max(0, 1 + (D(x_g) − E D(x_h)))].

    Expectations over every element of the score maps (batch and spatial positions).
    """
    return F.relu(1.0 - (d_real - d_fake.mean())).mean() + F.relu(1.0 + (d_fake - d_real.mean())).mean()


def rahinge_g_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """MRRNet eq. 9: the discriminator's loss with the roles swapped."""
    return F.relu(1.0 + (d_real - d_fake.mean())).mean() + F.relu(1.0 - (d_fake - d_real.mean())).mean()


@LOSSES.register("rahinge_d")
class RaHingeDLoss(nn.Module):
    """Eq. 8 × ``scale`` (MRRNet's released ``RaHingeGANLoss`` returns it halved: ``scale=0.5``)."""

    inputs = ("d_real", "d_fake")

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = float(scale)

    def forward(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        return self.scale * rahinge_d_loss(d_real, d_fake)


@LOSSES.register("rahinge_g")
class RaHingeGLoss(RaHingeDLoss):
    """Eq. 9 × ``scale`` (released: 0.5)."""

    def forward(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        return self.scale * rahinge_g_loss(d_real, d_fake)


# -- UFVNet ----------------------------------------------------------------------------------------------
def ufvnet_weight_ce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """UFVNet eq. 12: soft-target cross-entropy −Σ_k W_GT,k log softmax(logits)_k, batch mean.

    ``target``: eq. 4's weights, :func:`facesr.models.ufvnet.anchor_target_weights`.

    The paper writes L_CE(W_GT − W); read as the cross-entropy between the ground-truth weight vector
    (eq. 4, a distribution) and the regressor's prediction, here given as logits.
    """
    return -(target * F.log_softmax(logits, dim=1)).sum(1).mean()


@LOSSES.register("ufvnet_weight_ce")
class UFVNetWeightCE(nn.Module):
    inputs = ("logits", "target")

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ufvnet_weight_ce(logits, target)


# -- seed 000 ramp ---------------------------------------------------------------------------------------
def seed000_factors(epoch: float, total: int = 200) -> dict[str, float]:
    """The released seed 000 ramp: multipliers of the recipe's base weights at ``epoch``.

    ``t = epoch / total``. t ≤ 0.30: perceptual factor 0 → 1, heatmap 0.6 → 1, LPIPS 0. 0.30 < t ≤ 0.85:
    perceptual 1, heatmap 1, LPIPS 0 → 1. t > 0.85: heatmap 1 → 0.75 (reached at t = 1), LPIPS 1. All
    ramps linear.
    """
    t = min(max(epoch / total, 0.0), 1.0)
    if t <= 0.30:
        perc, heat, lp = t / 0.30, 0.6 + 0.4 * t / 0.30, 0.0
    elif t <= 0.85:
        perc, heat, lp = 1.0, 1.0, (t - 0.30) / 0.55
    else:
        perc, heat, lp = 1.0, 1.0 - 0.25 * (t - 0.85) / 0.15, 1.0
    return {"mse": 1.0, "perceptual": perc, "heatmap": heat, "lpips": lp}


RAMPS: dict[str, Callable[[float, int], dict[str, float]]] = {"seed000": seed000_factors}
#: fixed factors that compute a [0, 1]-range pixel term as on [-1, 1] images (seed 000's released code)
PIXEL_SCALE = {"-1_1": {"mse": 4.0, "l1": 2.0, "heatmap_l1": 2.0}, "0_1": {}}


# -- recipes: each paper's loss, once ---------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """One weighted term: ``weight × LOSSES.build(loss, **kwargs)(inputs…)``."""

    loss: str
    weight: float = 1.0
    kwargs: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Recipe:
    """A paper's loss: terms by name, the pixel range its weights assume, an epoch ramp, the D loss (GANs)."""

    name: str
    terms: Mapping[str, Term]
    pixel_range: str = "0_1"  # -1_1: pixel terms as on [-1, 1] images (PIXEL_SCALE)
    ramp: str = ""  # a RAMPS name: per-term multipliers by epoch
    disc: Term | None = None  # the discriminator's loss (GAN recipes)
    source: str = ""

    def factors(self, epoch: float, total: int = 200) -> dict[str, float]:
        return RAMPS[self.ramp](epoch, total) if self.ramp else {}

    def weight(self, name: str, epoch: float = 0.0, total: int = 200) -> float:
        """The effective multiplier of term ``name``'s raw value at ``epoch``."""
        t = self.terms[name]
        pix = PIXEL_SCALE[self.pixel_range].get(t.loss, 1.0)
        return t.weight * pix * float(self.factors(epoch, total).get(name, 1.0))


#: the default builder of each term name (a recipe or a ``loss.<term>`` override starts from these)
TERMS: dict[str, Term] = {
    "mse": Term("mse"), "l1": Term("l1"), "heatmap": Term("heatmap_l1"),
    "perceptual": Term("vgg_perceptual", kwargs={"preset": "seed000"}), "lpips": Term("lpips"),
    "parsing": Term("parsing_mse"), "key_region": Term("key_region", kwargs={"perceptual_preset": "wnet"}),
    "gan": Term("rahinge_g"), "weight_ce": Term("ufvnet_weight_ce"),
}
_MRRNET_LAYERS = (1 / 32, 1 / 16, 1 / 8, 1 / 4, 1.0)  # released models/loss.py PCPLoss.weights

RECIPES: dict[str, Recipe] = {r.name: r for r in (
    Recipe("seed000", {"mse": Term("mse", 1.0), "perceptual": Term("vgg_perceptual", 0.02, {"preset": "seed000"}),
                       "heatmap": Term("heatmap_l1", 2.0), "lpips": Term("lpips", 0.15)},
           pixel_range="-1_1", ramp="seed000", source="seed 000 eq. 2 as released (notebook weights and ramp)"),
    Recipe("wnet", {"mse": Term("mse", 1.0), "parsing": Term("parsing_mse", 1.0),
                    "key_region": Term("key_region", 0.5, {"perceptual_preset": "wnet"})},
           source="W-Net eq. 29, λpixel 1, λpar 1, λkey 0.5 (§4.2)"),
    Recipe("ufvnet", {"l1": Term("l1", 1.0), "weight_ce": Term("ufvnet_weight_ce", 0.1)},
           source="UFVNet eq. 13, α 0.1"),
    Recipe("pixel-l1", {"l1": Term("l1", 1.0)}, source="L1 only: MRRNet eq. 7, UFVNet stage 1, GVTNet yml pixel_opt"),
    Recipe("mrrgan", {"l1": Term("l1", 1.0), "gan": Term("rahinge_g", 0.01, {"scale": 0.5}),
                      "perceptual": Term("vgg_perceptual", 0.01, {"preset": "mrrnet", "layer_weights": _MRRNET_LAYERS})},
           pixel_range="-1_1", disc=Term("rahinge_d", 1.0, {"scale": 0.5}),
           source="SYLan2019/MRRNet mrrnet_model.py + loss.py: L1 on [-1, 1], RaHinge G and D halved, VGG 1/32…1"),
    Recipe("mrrgan-paper", {"l1": Term("l1", 1.0), "gan": Term("rahinge_g", 0.01),
                            "perceptual": Term("vgg_perceptual", 0.01, {"preset": "mrrnet"})},
           disc=Term("rahinge_d", 1.0), source="MRRNet eqs. 8-11 as written: unweighted eq. 10, unhalved RaHinge, [0, 1]"),
)}


def seed000_ramp(epoch: float, total: int = 200) -> dict[str, float]:
    """Effective weights of the released seed 000 loss at ``epoch``: the ``seed000`` recipe's base weights
    (MSE 1, perceptual 0.02, heatmap 2.0, LPIPS 0.15) × :func:`seed000_factors`."""
    terms = RECIPES["seed000"].terms
    return {k: terms[k].weight * f for k, f in seed000_factors(epoch, total).items()}


def build_term(term: Term, *, pretrained: bool = True, weights_dir: str | os.PathLike | None = None) -> nn.Module:
    """``LOSSES.build(term.loss, **term.kwargs)`` plus the trunk options the loss takes (pretrained, weights)."""
    import inspect

    params = inspect.signature(LOSSES.get(term.loss)).parameters
    extra: dict[str, Any] = {}
    if "pretrained" in params:
        extra["pretrained"] = pretrained
    if "pnet_rand" in params:
        extra["pnet_rand"] = not pretrained
    if "weights_dir" in params and weights_dir is not None:
        extra["weights_dir"] = weights_dir
    return LOSSES.build(term.loss, **{**extra, **dict(term.kwargs)})


class PaperLoss(nn.Module):
    """A :class:`Recipe` evaluated: ``parts(inputs)`` → raw term values, ``combine(parts, epoch)`` → total.

    ``inputs`` maps the names in each loss's ``inputs`` to tensors (any ``Mapping``; the trainer's is lazy).
    ``modules`` replaces built term modules (tests, shared trunks); a plain function takes ``(sr, hr)``.
    ``evaluate_zero=False`` skips terms whose effective weight is 0 at that epoch (the ramp's early epochs).
    """

    def __init__(self, recipe: Recipe, *, pretrained: bool = True, weights_dir: str | os.PathLike | None = None,
                 modules: Mapping[str, Callable] | None = None, total_epochs: int = 200,
                 evaluate_zero: bool = True) -> None:
        super().__init__()
        self.recipe = recipe
        self.total_epochs = total_epochs
        self.evaluate_zero = evaluate_zero
        given = dict(modules or {})
        self.terms = nn.ModuleDict({n: build_term(t, pretrained=pretrained, weights_dir=weights_dir)
                                    for n, t in recipe.terms.items() if n not in given})
        self._given = given

    def module(self, name: str) -> Callable:
        return self._given[name] if name in self._given else self.terms[name]

    def parts(self, inputs: Mapping[str, Any], epoch: float = 0.0) -> dict[str, torch.Tensor]:
        out = {}
        for name in self.recipe.terms:
            if not self.evaluate_zero and self.recipe.weight(name, epoch, self.total_epochs) == 0.0:
                continue
            fn = self.module(name)
            out[name] = fn(*(inputs[k] for k in getattr(fn, "inputs", ("sr", "hr"))))
        return out

    def combine(self, parts: Mapping[str, torch.Tensor], epoch: float = 0.0) -> torch.Tensor:
        total = None
        for name, value in parts.items():
            w = self.recipe.weight(name, epoch, self.total_epochs)
            if w != 0.0:
                total = value.float() * w if total is None else total + value.float() * w
        return total if total is not None else sum(v.float() * 0.0 for v in parts.values())

    def forward(self, inputs: Mapping[str, Any], epoch: float = 0.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        parts = self.parts(inputs, epoch)
        return self.combine(parts, epoch), parts


for _name, _recipe in RECIPES.items():  # LOSSES.build("wnet", pretrained=False) → PaperLoss(RECIPES["wnet"], …)
    LOSSES.register(_name)(functools.partial(PaperLoss, _recipe))


__all__ = [
    "LOSSES",
    "PaperLoss",
    "RECIPES",
    "Recipe",
    "TERMS",
    "Term",
    "VGGPerceptual",
    "LPIPSLoss",
    "build_term",
    "heatmap_l1",
    "heatmap_weights",
    "key_region_loss",
    "parsing_mse",
    "rahinge_d_loss",
    "rahinge_g_loss",
    "seed000_factors",
    "seed000_ramp",
    "ufvnet_weight_ce",
]
