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
``wnet``                W-Net eq. 29 (λ_pixel 1, λ_par 1, λ_key 0.5)
``rahinge_g/_d``        MRRNet eqs. 9 / 8 (relativistic average hinge)
``ufvnet_weight_ce``    UFVNet eq. 12 (soft-target cross-entropy of the weight regressor)
``ufvnet``              UFVNet eq. 13 (L1 + α CE, α = 0.1)
``seed000``             seed 000 eq. 2 with the released weights and epoch ramp (:func:`seed000_ramp`)
=====================  =========================================================================================

ImageNet trunks are read from the weights directory or ``$TORCH_HOME/hub/checkpoints``
(``vgg16-397923af.pth``, ``vgg19-dcbb9e9d.pth``; see :mod:`facesr.metrics.backbones`); nothing is
downloaded. ``pretrained=False`` builds a random trunk — for tests only.
"""

from __future__ import annotations

import os

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesr.registry import Registry

LOSSES: Registry[nn.Module] = Registry("loss")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# -- pixel -----------------------------------------------------------------------------------------------
@LOSSES.register("mse")
class MSELoss(nn.MSELoss):
    """Mean squared error over every element (W-Net eq. 24: 1/(CHW)‖·‖², batch mean)."""


@LOSSES.register("l1")
class L1Loss(nn.L1Loss):
    """Mean absolute error over every element (MRRNet eq. 7, UFVNet eq. 11)."""


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
    def __init__(self, gamma: float = 1.3, floor: float = 0.1) -> None:
        super().__init__()
        self.gamma, self.floor = gamma, floor

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, heatmap: torch.Tensor) -> torch.Tensor:
        return heatmap_l1(sr, hr, heatmap, self.gamma, self.floor)


# -- perceptual ------------------------------------------------------------------------------------------
VGG_PRESETS = {
    # seed 000 released: VGG16 features[:4], [4:9], [9:16] = relu1_2, relu2_2, relu3_3; MSE each, summed.
    "seed000": dict(arch="vgg16", cuts=(4, 9, 16), criterion="mse", resize=None),
    # MRRNet: VGG19 relu1_2, relu2_2, relu3_4, relu4_4, conv5_4 (features indices 3, 8, 17, 26, 34); L1; 224.
    "mrrnet": dict(arch="vgg19", cuts=(4, 9, 18, 27, 35), criterion="l1", resize=224),
    # W-Net eq. 26 names "the k-th layer of VGG-19" without k; facesr's choice: relu3_4 (features[:18]),
    # MSE = 1/(C_k H_k W_k)‖·‖² — deep enough for texture, still 32×32 at 128 px so small parts survive.
    "wnet": dict(arch="vgg19", cuts=(18,), criterion="mse", resize=None),
}


@LOSSES.register("vgg_perceptual")
class VGGPerceptual(nn.Module):
    """Frozen VGG feature loss: Σ over layers of criterion(φ_l(sr), φ_l(hr)), ImageNet-normalised [0, 1] input.

    ``preset`` picks the layers (``seed000``, ``mrrnet``, ``wnet``; see :data:`VGG_PRESETS`).
    ``pretrained=False`` leaves the trunk random (tests only); otherwise the torchvision file must be in
    the weights directory or ``$TORCH_HOME`` or a WeightsError names it.
    """

    def __init__(self, preset: str = "seed000", *, pretrained: bool = True,
                 weights_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        if preset not in VGG_PRESETS:
            from facesr.errors import ConfigError

            raise ConfigError(f"unknown VGG preset {preset!r}", hint=f"one of {', '.join(VGG_PRESETS)}")
        from facesr.metrics.backbones import load_features

        cfg = VGG_PRESETS[preset]
        self.preset = preset
        features = load_features(cfg["arch"], pretrained=pretrained, weights_dir=weights_dir,
                                 alternative="VGGPerceptual(pretrained=False) (random trunk; tests only)")
        starts = (0, *cfg["cuts"][:-1])
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, cfg["cuts"]))
        self.criterion = F.mse_loss if cfg["criterion"] == "mse" else F.l1_loss
        self.resize = cfg["resize"]
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # the trunk stays in eval mode
        return super().train(False)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.resize and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        x = (x - self.mean) / self.std
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        return sum(self.criterion(a, b) for a, b in zip(self.features(sr), target))


@LOSSES.register("lpips")
class LPIPSLoss(nn.Module):
    """Frozen LPIPS (linear layers and trunk), batch mean; [0, 1] inputs. ``pnet_rand`` for tests only."""

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
    def __init__(self, perceptual: nn.Module | None = None) -> None:
        super().__init__()
        self.perceptual = perceptual

    def forward(self, sr: torch.Tensor, hr: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return key_region_loss(sr, hr, classes, self.perceptual)


@LOSSES.register("wnet")
class WNetLoss(nn.Module):
    """W-Net eq. 29: λ_pixel L_mse + λ_par L_parsing + λ_key L_key → ``(total, parts)``."""

    def __init__(self, perceptual: nn.Module | None = None, lambda_pixel: float = 1.0, lambda_par: float = 1.0,
                 lambda_key: float = 0.5) -> None:
        super().__init__()
        self.key = KeyRegionLoss(perceptual)
        self.weights = {"mse": lambda_pixel, "parsing": lambda_par, "key": lambda_key}

    def forward(self, sr, hr, parsing_sr, parsing_hr, classes):
        parts = {"mse": F.mse_loss(sr, hr), "parsing": parsing_mse(parsing_sr, parsing_hr),
                 "key": self.key(sr, hr, classes)}
        return sum(self.weights[k] * v for k, v in parts.items()), parts


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
    def forward(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        return rahinge_d_loss(d_real, d_fake)


@LOSSES.register("rahinge_g")
class RaHingeGLoss(nn.Module):
    def forward(self, d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
        return rahinge_g_loss(d_real, d_fake)


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
    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ufvnet_weight_ce(logits, target)


@LOSSES.register("ufvnet")
class UFVNetLoss(nn.Module):
    """UFVNet eq. 13: L1(sr, hr) + α CE(weights), α = 0.1 → ``(total, parts)``."""

    def __init__(self, alpha: float = 0.1) -> None:
        super().__init__()
        self.alpha = alpha

    def forward(self, sr, hr, logits, target):
        parts = {"l1": F.l1_loss(sr, hr), "weight_ce": ufvnet_weight_ce(logits, target)}
        return parts["l1"] + self.alpha * parts["weight_ce"], parts


# -- seed 000 composite ----------------------------------------------------------------------------------
SEED000_WEIGHTS = {"mse": 1.0, "perceptual": 0.02, "heatmap": 2.0, "lpips": 0.15}


def seed000_ramp(epoch: float, total: int = 200) -> dict[str, float]:
    """Effective weights of the released seed 000 loss at ``epoch`` (base weight × ramp factor).

    ``t = epoch / total``. t ≤ 0.30: perceptual factor 0 → 1, heatmap 0.6 → 1, LPIPS 0. 0.30 < t ≤ 0.85:
    perceptual 1, heatmap 1, LPIPS 0 → 1. t > 0.85: heatmap 1 → 0.75 (reached at t = 1), LPIPS 1. All
    ramps linear; base weights MSE 1, perceptual 0.02, heatmap 2.0, LPIPS 0.15.
    """
    t = min(max(epoch / total, 0.0), 1.0)
    if t <= 0.30:
        perc, heat, lp = t / 0.30, 0.6 + 0.4 * t / 0.30, 0.0
    elif t <= 0.85:
        perc, heat, lp = 1.0, 1.0, (t - 0.30) / 0.55
    else:
        perc, heat, lp = 1.0, 1.0 - 0.25 * (t - 0.85) / 0.15, 1.0
    f = {"mse": 1.0, "perceptual": perc, "heatmap": heat, "lpips": lp}
    return {k: SEED000_WEIGHTS[k] * f[k] for k in SEED000_WEIGHTS}


def composite_seed000(sr, hr, heatmap, weights: dict[str, float], perceptual: nn.Module | None = None,
                      lpips: nn.Module | None = None):
    """Seed 000 eq. 2 → ``(total, parts)``; ``weights`` from :func:`seed000_ramp`.

    As released, the pixel terms are computed on [-1, 1] images (MSE ×4 and heatmap-L1 ×2 relative to
    [0, 1]) while the perceptual and LPIPS terms see [0, 1]; inputs here are [0, 1] and the scaling is
    applied so the released weights keep their meaning. Terms whose weight is 0 are not evaluated;
    a term with a non-zero weight and no module is an error.
    """
    parts = {"mse": 4.0 * F.mse_loss(sr, hr), "heatmap": 2.0 * heatmap_l1(sr, hr, heatmap)}
    for name, module in (("perceptual", perceptual), ("lpips", lpips)):
        if weights.get(name, 0.0):
            if module is None:
                raise ValueError(f"seed000 loss: weight {name}={weights[name]} but no {name} module")
            parts[name] = module(sr, hr)
    total = sum(weights[k] * v for k, v in parts.items())
    return total, parts


@LOSSES.register("seed000")
class Seed000Loss(nn.Module):
    """The released seed 000 composite with its epoch ramp; ``forward(sr, hr, heatmap, epoch)``."""

    def __init__(self, *, total_epochs: int = 200, pretrained: bool = True, lpips_net: str = "vgg",
                 weights_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        self.total_epochs = total_epochs
        self.perceptual = VGGPerceptual("seed000", pretrained=pretrained, weights_dir=weights_dir)
        self.lpips = LPIPSLoss(lpips_net, pnet_rand=not pretrained, weights_dir=weights_dir)

    def forward(self, sr, hr, heatmap, epoch: float):
        return composite_seed000(sr, hr, heatmap, seed000_ramp(epoch, self.total_epochs), self.perceptual, self.lpips)


__all__ = [
    "LOSSES",
    "VGGPerceptual",
    "LPIPSLoss",
    "composite_seed000",
    "heatmap_l1",
    "heatmap_weights",
    "key_region_loss",
    "parsing_mse",
    "rahinge_d_loss",
    "rahinge_g_loss",
    "seed000_ramp",
    "ufvnet_weight_ce",
]
