"""ImageNet trunks (VGG16, VGG19, AlexNet) for LPIPS and perceptual losses, loaded from local files only.

A trunk's file is looked up by its torchvision name, first in the facesr weights directory
(:mod:`facesr.weights`), then in torch's hub cache ``$TORCH_HOME/hub/checkpoints`` where torchvision
would have put it. Nothing is downloaded: a missing file is a :class:`~facesr.errors.WeightsMissingError`
naming the file, the places searched and the offline alternative (random trunk, tests only).
"""

from __future__ import annotations

import os
from pathlib import Path

from facesr.errors import WeightsMissingError
from facesr.weights import ENV_VAR, find_weight, weights_dir

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

TRUNK_FILES = {
    "vgg16": "vgg16-397923af.pth",  # IMAGENET1K_V1
    "vgg16_features": "vgg16_features-amdegroot-88682ab5.pth",  # IMAGENET1K_FEATURES (seed 000's notebook)
    "vgg19": "vgg19-dcbb9e9d.pth",  # IMAGENET1K_V1
    "alexnet": "alexnet-owt-7be5be79.pth",
}


def _hub_checkpoints() -> Path:
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def find_trunk(arch: str, explicit_dir: str | os.PathLike | None = None) -> Path | None:
    """Local path of ``arch``'s torchvision weights (weights dir, then the torch hub cache), or None."""
    filename = TRUNK_FILES[arch]
    path = find_weight(filename, explicit_dir)
    if path is None:
        cand = _hub_checkpoints() / filename
        path = cand if cand.is_file() else None
    return path


def require_trunk(arch: str, *, alternative: str, explicit_dir: str | os.PathLike | None = None) -> Path:
    path = find_trunk(arch, explicit_dir)
    if path is None:
        filename = TRUNK_FILES[arch]
        raise WeightsMissingError(
            f"{arch} ImageNet weights {filename!r} not found in {weights_dir(explicit_dir)} "
            f"nor in {_hub_checkpoints()}",
            hint=f"copy the file into either (or pass --weights-dir / set ${ENV_VAR}); offline alternative: "
            f"{alternative}",
        )
    return path


def load_features(arch: str, *, pretrained: bool = True, weights_dir: str | os.PathLike | None = None,
                  alternative: str = "pretrained=False (random trunk; tests only)"):
    """The ``features`` ``nn.Sequential`` of a torchvision ``arch``, ImageNet weights loaded if asked."""
    import torch
    import torchvision

    if arch.startswith("vgg"):
        # Only the convolutional trunk is built: the 120M-parameter classifier is never used here, and its
        # random init alone takes seconds.
        from torchvision.models.vgg import cfgs, make_layers

        features = make_layers(cfgs[{"vgg16": "D", "vgg16_features": "D", "vgg19": "E"}[arch]])
    else:
        features = getattr(torchvision.models, arch)(weights=None).features
    if pretrained:
        path = require_trunk(arch, alternative=alternative, explicit_dir=weights_dir)
        state = torch.load(path, map_location="cpu", weights_only=True)
        features.load_state_dict({k[len("features."):]: v for k, v in state.items() if k.startswith("features.")})
    return features


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "TRUNK_FILES", "find_trunk", "load_features", "require_trunk"]
