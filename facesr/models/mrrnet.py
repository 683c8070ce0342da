"""MRRNet / MRRGAN: face SR with spatial attention guided by multiscale receptive-field features.

Paper: W. Huang, S. Lan, W. Wang, X. Yuan, H. Yang, P. Li, W. Ma, "Face Super-Resolution with Spatial
Attention Guided by Multiscale Receptive-Field Features" (``shared/papers/003_mrrnet.txt``): MRR block
(§3.2, eqs. 1-6), 3/10/3 blocks in encoder/extractor/decoder (§4.2), RaHinge discriminator and losses
(§3.3, eqs. 7-11; the losses live in ``facesr.train``).
Released code: ``SYLan2019/MRRNet`` (``models/MRRNet.py``, ``models/blocks.py``, ``models/mrrnet_model.py``).
Independent re-implementation with the released layer layout (parameter counts match exactly).

Generator (``mrrnet``): the SPARNet skeleton (:mod:`facesr.models.sparnet`) with InstanceNorm (affine) and
the hourglass replaced by MRF attention (:class:`~facesr.models.layers.MRFAttention`): four parallel convs
``c → c/4`` with kernels 1, 3, 5, 7 → concat → ReLU → InstanceNorm (no affine) → conv 3×3 ``c → 1`` →
sigmoid, multiplying ``conv2(conv1(·))`` inside each residual unit (eqs. 4-6). Stem conv 3→32; encoder
32→64→128→128 (3 down blocks, stride-2 conv shortcut, eq. 5); 10 blocks at 16×16×128; decoder
128→128→64→32
(3 up blocks, nearest ×2, eq. 6); out conv 32→3, no tanh. LeakyReLU 0.2. Init conv N(0, 0.02).
MRRGAN is the same generator trained with L1 + 0.01·RaHinge + 0.01·VGG19 perceptual loss against
:class:`MRRDiscriminator`; it is a training recipe, not another network, so it has no registry entry.

Forward: ``lr (B, 3, h, w)`` in ``[0, 1]``, any ``h, w`` → torch-bicubic resize to 128 (the paper resizes the
16×16 LR "to 128×128 first through bicubic", Fig. 1(b); the data pipeline's exact PIL ``upscale_back`` is in
``facesr.data.degrade``) → ``[-1, 1]`` (``input_range = "minus1_1"``, released ``Normalize(0.5, 0.5)``) →
network → ``[0, 1]``, unclamped, ``(B, 3, 128, 128)``.

Discriminator (``mrrgan_d``): 4 × [reflection pad 1 → spectral-norm conv 3×3 stride 2 (bias) → LReLU 0.2]
3→32→64→128→256, then reflection pad 1 → conv 3×3 256→1 (no bias, no spectral norm) → tanh: an 8×8 score
map
for a 128×128 image (the "matrix" of §3.3). Input: an image batch in ``[0, 1]`` (HR or SR), mapped to
``[-1, 1]`` inside as the released code fed it. PyTorch default init (the released D is not re-initialised).

Parameters (exact, asserted in ``tests/models``): ``mrrnet`` 9,130,771; ``mrrgan_d`` 390,720.
MACs at batch 1 (:mod:`facesr.metrics.complexity`; norms uncounted): ``mrrnet`` 6.78 G (16→128, the bicubic
resize included; fvcore, which also counted the InstanceNorms, gave 6.82 G); ``mrrgan_d`` 0.06 G at 128×128.

Departures from the released code: activations not in-place (same values); the released MRF module's
``F.relu(x, inplace=True)`` whose result is discarded still rectifies ``x`` in place — written here as an
explicit ReLU; module names differ (``HourGlassBlock.inception`` → ``MRFAttention.branches``), so released
state dicts need a key map.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils import spectral_norm

from facesr.models import MODELS
from facesr.models.layers import with_options
from facesr.models.ranges import to_model_range
from facesr.models.sparnet import SPARNet, SPARNetConfig

PARAM_COUNTS: dict[str, int] = {"mrrnet": 9_130_771, "mrrgan_d": 390_720}

MRRNET = SPARNetConfig(res_depth=10, norm="in", act="leakyrelu", attention="mrf")


class MRRNet(SPARNet):
    """MRRNet generator: ``forward(lr (B, 3, h, w) in [0, 1]) → SR (B, 3, 128, 128) in [0, 1]`` (unclamped).

    The SPARNet skeleton with InstanceNorm and MRF attention (see the module docstring).
    """

    def __init__(self, cfg: SPARNetConfig | None = None) -> None:
        super().__init__(cfg or MRRNET)


class DiscriminatorBlock(nn.Sequential):
    """Reflection pad → spectral-norm conv 3×3 stride 2 (bias) → LReLU 0.2.

    ``(N, c_in, H, W) → (N, c_out, H/2, W/2)``.
    """

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.ReflectionPad2d(1), spectral_norm(nn.Conv2d(c_in, c_out, 3, 2, 0)), nn.LeakyReLU(0.2))


class MRRDiscriminator(nn.Module):
    """MRRGAN's patch discriminator: image ``(B, 3, H, W)`` in ``[0, 1]`` → scores ``(B, 1, H/16, W/16)``
    in (−1, 1)."""

    input_range = "minus1_1"
    scale = None
    kind = "discriminator"

    def __init__(self, base_channels: int = 32, depth: int = 4) -> None:
        super().__init__()
        chans = [3] + [base_channels * 2**i for i in range(depth)]
        self.blocks = nn.Sequential(*(DiscriminatorBlock(a, b) for a, b in zip(chans[:-1], chans[1:])))
        self.score = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(chans[-1], 1, 3, 1, 0, bias=False), nn.Tanh())

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.score(self.blocks(to_model_range(img, self.input_range)))


@MODELS.register("mrrnet")
def mrrnet(**overrides) -> MRRNet:
    """MRRNet generator (3/10/3 MRR blocks, InstanceNorm, MRF attention): 9,130,771 parameters."""
    cfg = with_options(MRRNET, overrides, "MRRNet")
    model = MRRNet(cfg)
    model.expected_params = PARAM_COUNTS["mrrnet"] if cfg.same_layout(MRRNET) else None
    return model


@MODELS.register("mrrgan_d")
def mrrgan_d(*, base_channels: int = 32, depth: int = 4) -> MRRDiscriminator:
    """MRRGAN's spectral-norm RaHinge discriminator: 390,720 parameters."""
    model = MRRDiscriminator(base_channels, depth)
    model.expected_params = PARAM_COUNTS["mrrgan_d"] if (base_channels, depth) == (32, 4) else None
    return model


__all__ = ["MRRNET", "MRRDiscriminator", "MRRNet", "PARAM_COUNTS", "mrrgan_d", "mrrnet"]
