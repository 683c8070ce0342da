"""LPIPS (Zhang et al. 2018) through the ``lpips`` package, offline.

The package's linear calibration layers ship inside its wheel; the VGG/AlexNet trunk is what torchvision
would download. Here the trunk is built random (``pnet_rand=True``, so nothing is fetched) and then
filled from the local torchvision file (``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth``, see
:mod:`facesr.metrics.backbones`). A missing file is a WeightsMissingError; ``pnet_rand=True`` keeps the random
trunk — meaningless values, for plumbing tests only, never for reported numbers.

Inputs: ``(N, 3, H, W)`` tensors in [0, 1] (mapped to [-1, 1] internally). Reported as ``lpips[vgg]`` /
``lpips[alex]`` (lower is better).
"""

from __future__ import annotations

import os

import numpy as np

NETS = ("alex", "vgg")
_ARCH = {"alex": "alexnet", "vgg": "vgg16"}


def build_lpips(net: str = "alex", *, pnet_rand: bool = False, weights_dir: str | os.PathLike | None = None):
    """A frozen, eval-mode ``lpips.LPIPS`` with the ImageNet trunk loaded from local files."""
    if net not in NETS:
        from facesr.errors import ConfigError

        raise ConfigError(f"unknown LPIPS net {net!r}", hint=f"one of {', '.join(NETS)}")
    import warnings

    import lpips

    from facesr.metrics.backbones import load_features

    with warnings.catch_warnings():  # lpips still passes torchvision's deprecated ``pretrained=``
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    if not pnet_rand:
        features = load_features(_ARCH[net], weights_dir=weights_dir,
                                 alternative="LPIPS(pnet_rand=True) (random trunk; tests only)")
        for i in range(1, model.net.N_slices + 1):
            for name, module in getattr(model.net, f"slice{i}").named_children():
                module.load_state_dict(features[int(name)].state_dict())
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


class LPIPSMetric:
    """Per-image LPIPS of uint8 RGB batches (numpy) or [0, 1] tensors; ``column`` names the trunk."""

    def __init__(self, net: str = "alex", *, pnet_rand: bool = False, device: str = "cpu",
                 weights_dir: str | os.PathLike | None = None, batch_size: int = 32) -> None:
        self.net = net
        self.device = device
        self.batch_size = batch_size
        self.model = build_lpips(net, pnet_rand=pnet_rand, weights_dir=weights_dir).to(device)
        self.column = f"lpips[{net}{'-rand' if pnet_rand else ''}]"

    def torch(self, sr, hr):
        """``(N,)`` LPIPS of two ``(N, 3, H, W)`` tensors in [0, 1] (gradients flow to ``sr``)."""
        return self.model(sr, hr, normalize=True).flatten()

    def __call__(self, sr: np.ndarray, hr: np.ndarray) -> np.ndarray:
        """``(N,)`` LPIPS of uint8 ``(N, H, W, 3)`` RGB arrays."""
        import torch

        out = []
        with torch.no_grad():
            for i in range(0, len(sr), self.batch_size):
                a, b = (torch.from_numpy(np.ascontiguousarray(x[i : i + self.batch_size])).to(self.device)
                        .permute(0, 3, 1, 2).float().div(255.0) for x in (sr, hr))
                out.append(self.torch(a, b).cpu().numpy().astype(np.float64))
        return np.concatenate(out) if out else np.zeros(0)


__all__ = ["NETS", "LPIPSMetric", "build_lpips"]
