"""Frozen VGG feature losses: which layers (``preset``) of which trunk (``trunk``), fed how.

Layer presets (:data:`VGG_PRESETS`):

* ``seed000`` — VGG16 ``features[:4], [4:9], [9:16]`` (relu1_2, relu2_2, relu3_3), MSE each, summed (the
  released notebook's ``VGGPerceptualLoss``).
* ``mrrnet`` — VGG19 relu1_2, relu2_2, relu3_4, relu4_4, conv5_4 (cuts 4, 9, 18, 27, 35), L1, input resized
  to 224 (MRRNet eq. 10 and its released ``PCPFeat``).
* ``wnet`` — W-Net eq. 26 names "the k-th layer of VGG-19" without k; facesr's choice: relu3_4
  (``features[:18]``), MSE — deep enough for texture, still 32×32 at 128 px so small parts survive.

Trunks (:data:`VGG_TRUNKS`; ``trunk=""`` takes the preset's default):

* ``standard`` — torchvision's ``IMAGENET1K_V1`` file (``vgg16-397923af.pth`` / ``vgg19-dcbb9e9d.pth``) fed
  [0, 1] images normalised by the ImageNet mean/std, the convention that file was trained with. The default
  of ``mrrnet`` and ``wnet`` (MRRNet's code loads ``vgg19(pretrained=True)``, which is this file).
* ``notebook`` — seed 000 as released: ``VGG16_Weights.IMAGENET1K_FEATURES`` (``vgg16_features-amdegroot-
  88682ab5.pth``), yet fed the ImageNet-mean/std input of ``IMAGENET1K_V1``, with the images clamped to range
  first, exactly as the notebook's ``_prep`` does. That file was trained on RGB 0–255 minus the mean, so the
  notebook's features are about 255 × 0.226 ≈ 58× smaller than the trunk expects; its perceptual weight (0.02)
  was tuned on that scale, which is why it is the ``seed000`` default.
* ``features`` — the same ``IMAGENET1K_FEATURES`` file in its own convention: RGB in 0–255 minus
  (0.48235, 0.45882, 0.40784) × 255 (torchvision's transform for those weights). VGG16 only.

Nothing is downloaded (:mod:`facesr.metrics.backbones`); ``pretrained=False`` leaves the trunk random (tests).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from facesr.errors import ConfigError
from facesr.metrics.backbones import IMAGENET_MEAN, IMAGENET_STD, load_features

__all__ = ["FEATURES_MEAN", "VGGPerceptual", "VGG_PRESETS", "VGG_TRUNKS"]

VGG_PRESETS = {
    "seed000": dict(arch="vgg16", cuts=(4, 9, 16), criterion="mse", resize=None, trunk="notebook"),
    "mrrnet": dict(arch="vgg19", cuts=(4, 9, 18, 27, 35), criterion="l1", resize=224, trunk="standard"),
    "wnet": dict(arch="vgg19", cuts=(18,), criterion="mse", resize=None, trunk="standard"),
}

#: torchvision's mean for ``IMAGENET1K_FEATURES`` (its std is 1/255: inputs are 0–255 minus mean × 255)
FEATURES_MEAN = (0.48235, 0.45882, 0.40784)

#: trunk → (weights file key in ``backbones.TRUNK_FILES``; None = the preset's arch, input mean, input scale,
#: clamp to [0, 1] first). The input fed to the trunk is ``(x − mean) · scale`` per channel.
VGG_TRUNKS: dict[str, tuple[str | None, tuple[float, ...], tuple[float, ...], bool]] = {
    "standard": (None, IMAGENET_MEAN, tuple(1.0 / s for s in IMAGENET_STD), False),
    "notebook": ("vgg16_features", IMAGENET_MEAN, tuple(1.0 / s for s in IMAGENET_STD), True),
    "features": ("vgg16_features", FEATURES_MEAN, (255.0, 255.0, 255.0), False),
}


class VGGPerceptual(nn.Module):
    """Σ over layers of ``layer_weight · criterion(φ_l(sr), φ_l(hr))`` on [0, 1] images (see the module doc).

    ``layer_weights`` multiplies each layer's term (MRRNet's released ``PCPLoss``: 1/32, 1/16, 1/8, 1/4, 1;
    None = 1 each, as eq. 10 writes it). A missing trunk file is a WeightsMissingError naming it.
    """

    inputs = ("sr", "hr")

    def __init__(self, preset: str = "seed000", *, trunk: str = "", pretrained: bool = True,
                 layer_weights: Sequence[float] | None = None, weights_dir: str | os.PathLike | None = None) -> None:
        super().__init__()
        if preset not in VGG_PRESETS:
            raise ConfigError(f"unknown VGG preset {preset!r}", hint=f"one of {', '.join(VGG_PRESETS)}")
        cfg = VGG_PRESETS[preset]
        trunk = trunk or cfg["trunk"]
        if trunk not in VGG_TRUNKS:
            raise ConfigError(f"unknown VGG trunk {trunk!r}", hint=f"one of {', '.join(VGG_TRUNKS)}")
        file_key, mean, scale, self.clamp = VGG_TRUNKS[trunk]
        if file_key is not None and cfg["arch"] != "vgg16":
            raise ConfigError(f"trunk {trunk!r} is a VGG16 file; preset {preset!r} uses {cfg['arch']}",
                              hint="use trunk 'standard' with this preset")
        self.preset, self.trunk = preset, trunk
        features = load_features(file_key or cfg["arch"], pretrained=pretrained, weights_dir=weights_dir,
                                 alternative="VGGPerceptual(pretrained=False) (random trunk; tests only)")
        starts = (0, *cfg["cuts"][:-1])
        self.slices = nn.ModuleList(features[a:b] for a, b in zip(starts, cfg["cuts"]))
        self.layer_weights = tuple(float(w) for w in layer_weights) if layer_weights is not None else None
        if self.layer_weights is not None and len(self.layer_weights) != len(self.slices):
            raise ConfigError(f"VGG preset {preset!r} has {len(self.slices)} layers, got {len(self.layer_weights)} "
                              "layer weights")
        self.criterion = F.mse_loss if cfg["criterion"] == "mse" else F.l1_loss
        self.resize = cfg["resize"]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1), persistent=False)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def train(self, mode: bool = True):  # the trunk stays in eval mode
        return super().train(False)

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """[0, 1] images → the trunk's input."""
        if self.clamp:
            x = x.clamp(0.0, 1.0)
        if self.resize and x.shape[-1] != self.resize:
            x = F.interpolate(x, size=(self.resize, self.resize), mode="bilinear", align_corners=False)
        return (x - self.mean) * self.scale

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.prepare(x)
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            target = self.features(hr)
        weights = self.layer_weights or (1.0,) * len(target)
        return sum(w * self.criterion(a, b) for w, a, b in zip(weights, self.features(sr), target))
