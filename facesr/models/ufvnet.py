"""UFVNet: one network for face images of varied low resolutions.

Paper: Q. Peng, Z. Jiang, Y. Huang, J. Peng, "A Unified Framework to Super-Resolve Face Images of Varied Low
Resolutions" (``shared/papers/002_ufvnet.txt``): anchor SR generators (§III-A, Fig. 2a, eqs. 1-3), weight
regressor (§III-B, Fig. 2c), fusion and final decoding (§III-C), two-stage training and eq. 4 targets
(§III-D, eqs. 4-10), losses (§III-E, eqs. 11-13; in ``facesr.train``). No public code; the anchors are the
released SPARNet-Light-Attn3D (``chaofengc/Face-SPARNet``, see :mod:`facesr.models.sparnet`).

Forward: ``lr (B, 3, h, w)`` in ``[0, 1]``, any ``h, w`` → ``U(·)``: torch-bicubic resize to 128
(``align_corners=False``; the paper's bicubic up-scaling — the data pipeline's exact PIL ``upscale_back`` is
in ``facesr.data.degrade``) → ``[-1, 1]`` (``input_range = "minus1_1"``, as the anchors were released) →
``{"sr": (B, 3, 128, 128) in [0, 1] (unclamped), "weights": (B, 3) softmax, "weight_logits": (B, 3)}``.

Structure (eqs. 5-10):

* ``anchors``: three complete SPARNet-Light-Attn3D SR generators (5,242,211 parameters each) for anchor
  resolutions 1/8, 1/4, 1/2 of 128 (16, 32, 64 px). Stage one trains each alone (``model.anchors[i](lr)``
  is a full SR model with the :mod:`facesr.models` contract). UFVNet uses ``anchors[i].encode`` only
  (stem conv + three down FAUs → 128×16×16).
* ``regressor``: AlexNet (torchvision layout: 5 convs, 3 max-pools, classifier 9216→4096→4096→1000) with
  the first max-pool's stride changed from 2 to 1 so a 128×128 input reaches AlexNet's 6×6 map without
  the adaptive pool having to up-sample (conv1 31 → pool 29 → pool 14 → pool 6), plus the paper's added
  fully-connected layer 1000→3.
  Softmax gives non-negative weights that sum to one.
* weighted concatenation ``C(W₁·f₁, W₂·f₂, W₃·f₃)`` → 384×16×16;
* ``fusion``: the anchor's feature-extraction block (one FAU at 16×16, hourglass depth 2, 3-D attention)
  with 384 input channels (conv shortcut 384→128);
* ``decoder``: the anchor decoder (up FAUs 128→128→64→32, out conv 32→3), fresh weights.

Training stages: stage one trains ``anchors`` (L1, each on its own anchor resolution) and ``regressor``
(cross-entropy against :func:`anchor_target_weights`); stage two trains the Fig. 3 network (L1 + 0.1·CE,
eq. 13). :meth:`UFVNet.discard_anchor_heads` drops the anchors' feature-extraction blocks and decoders
("discarded" in §III-D) so the deployed model holds only what Fig. 3 uses.

Parameters (exact, asserted in ``tests/models``): as built (Fig. 1, anchors complete) 79,973,423;
after ``discard_anchor_heads()`` (Fig. 3) 71,014,214, of which the AlexNet regressor is 61,103,843.
MACs at batch 1 (:mod:`facesr.metrics.complexity`; any LR size, everything runs at 128×128): 10.83 G (fvcore,
with the norms: 10.86 G) — three anchor
encoders, the stride-1-pool AlexNet (about 0.7 G), fusion FAU and decoder.

Departures / choices where the paper is silent: the first max-pool's stride 1 (the paper only says its
hyper-parameters were changed "to fit" 128×128; with the stock stride 2 the last map is 2×2); the fusion
block's 384→128 width (Fig. 2a's block with the concatenated width as input); anchors, fusion, decoder and
regressor use SPARNet's N(0, 0.02) init (no ImageNet weights: the paper does not say it pre-trains
AlexNet); dropout 0.5 as in AlexNet; the regressor sees the same ``[-1, 1]`` input as the anchors.
``regressor_hidden`` (default 4096) shrinks the AlexNet classifier for experiments and tests.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from facesr.errors import ConfigError
from facesr.models import MODELS
from facesr.models.layers import init_normal_, resize_to, with_options
from facesr.models.ranges import from_model_range, to_model_range
from facesr.models.sparnet import LIGHT, SPARNet, SPARNetConfig, build_body, build_decoder

ANCHOR_SIZES: tuple[int, int, int] = (16, 32, 64)  # 1/8, 1/4, 1/2 of the 128-px HR (§III-D)
PARAM_COUNTS: dict[str, int] = {"ufvnet": 79_973_423}
DEPLOY_PARAMS = 71_014_214
REGRESSOR_PARAMS = 61_103_843


def anchor_target_weights(
    lr_sizes: Sequence[float] | torch.Tensor, anchor_sizes: Sequence[float] = ANCHOR_SIZES
) -> torch.Tensor:
    """Eq. 4: soft-class targets for the weight regressor.

    ``d_i = |r − a_i|``, ``w_i = ½ (1 − d_i / Σ_j d_j)`` for three anchors (rows sum to 1). ``r`` and ``a_i``
    may be given as side lengths or as rates (the ratio cancels). ``lr_sizes (N,)`` → ``(N, 3)`` float32.
    """
    if len(anchor_sizes) != 3:
        raise ConfigError(f"eq. 4 is defined for three anchors, got {len(anchor_sizes)}")
    r = torch.as_tensor(lr_sizes, dtype=torch.float32).reshape(-1, 1)
    a = torch.as_tensor(anchor_sizes, dtype=torch.float32).reshape(1, -1)
    d = (r - a).abs()
    return 0.5 * (1.0 - d / d.sum(1, keepdim=True))


class WeightRegressor(nn.Module):
    """AlexNet soft classifier of the input resolution: ``(B, 3, 128, 128)`` in ``[-1, 1]`` → logits ``(B, 3)``.

    torchvision's AlexNet layout (``features``/``avgpool``/``classifier`` names, so its ImageNet state dict
    loads into ``features``/``classifier`` unchanged), first max-pool 3×3 with stride ``first_pool_stride`` = 1
    (128 → conv1 31 → pool 29 → conv2, pool 14 → conv3-5, pool 6: the 6×6 map AlexNet's classifier expects),
    then ``head``: Linear 1000→3 (the paper's added layer).
    """

    def __init__(
        self, hidden: int = 4096, dropout: float = 0.5, num_classes: int = 1000, first_pool_stride: int = 1
    ) -> None:
        super().__init__()
        from torchvision.models import AlexNet

        net = AlexNet(num_classes=num_classes, dropout=dropout)
        net.features[2] = nn.MaxPool2d(3, first_pool_stride)
        if hidden != 4096:
            net.classifier[1] = nn.Linear(256 * 6 * 6, hidden)
            net.classifier[4] = nn.Linear(hidden, hidden)
            net.classifier[6] = nn.Linear(hidden, num_classes)
        self.features, self.avgpool, self.classifier = net.features, net.avgpool, net.classifier
        self.head = nn.Linear(num_classes, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.avgpool(self.features(x)).flatten(1)
        return self.head(self.classifier(f))


class UFVNet(nn.Module):
    """UFVNet: ``forward(lr (B, 3, h, w) in [0, 1])`` → ``{"sr", "weights", "weight_logits"}`` (see module doc)."""

    input_range = "minus1_1"
    scale = None  # any LR size
    kind = "sr"

    def __init__(self, anchor_cfg: SPARNetConfig = LIGHT, anchor_sizes: Sequence[int] = ANCHOR_SIZES,
                 regressor_hidden: int = 4096) -> None:
        super().__init__()
        if len(anchor_sizes) != 3:  # the regressor scores three anchors (eq. 4)
            raise ConfigError("UFVNet has three anchors (eq. 4)", hint="anchor_sizes=(16, 32, 64)")
        self.cfg = anchor_cfg
        self.hr_size = anchor_cfg.hr_size
        self.anchor_sizes = tuple(anchor_sizes)
        self.anchors = nn.ModuleList(SPARNet(anchor_cfg) for _ in self.anchor_sizes)
        self.regressor = WeightRegressor(regressor_hidden)
        ch = self.anchors[0].feature_channels
        self.fusion = build_body(anchor_cfg, ch, 2, 1, c_in=ch * len(self.anchor_sizes))
        self.decoder, self.out_conv = build_decoder(anchor_cfg, ch, 2)
        for part in (self.regressor, self.fusion, self.decoder, self.out_conv):  # the anchors init themselves
            init_normal_(part, 0.02)

    def prepare(self, lr: torch.Tensor) -> torch.Tensor:
        """``U(·)``: LR in ``[0, 1]`` → 128×128 in ``[-1, 1]``."""
        return to_model_range(resize_to(lr, self.hr_size, self.cfg.upsample), self.input_range)

    def predict_weights(self, lr: torch.Tensor) -> torch.Tensor:
        """Regressor logits ``(B, 3)`` for an LR batch in ``[0, 1]`` (stage-one regressor training)."""
        return self.regressor(self.prepare(lr))

    def forward(self, lr: torch.Tensor) -> dict[str, torch.Tensor]:
        x = self.prepare(lr)
        logits = self.regressor(x)
        w = logits.softmax(1)
        feats = [anchor.encode(x) * w[:, i, None, None, None] for i, anchor in enumerate(self.anchors)]
        y = self.out_conv(self.decoder(self.fusion(torch.cat(feats, 1))))
        return {"sr": from_model_range(y, self.input_range), "weights": w, "weight_logits": logits}

    @property
    def unused_in_forward(self) -> tuple[str, ...]:
        """Parameter-name prefixes that :meth:`forward` does not touch: the anchors' feature-extraction blocks
        and decoders, kept for stage one until :meth:`discard_anchor_heads` (pass
        ``find_unused_parameters=True`` to DDP, or discard them, for stage two)."""
        return tuple(f"anchors.{i}.{part}" for i, a in enumerate(self.anchors) if not getattr(a, "headless", False)
                     for part in ("body.", "decoder.", "out_conv."))

    def discard_anchor_heads(self) -> UFVNet:
        """Drop each anchor's body, decoder and out conv (stage two, §III-D); the anchors then only encode."""
        for anchor in self.anchors:
            anchor.body = nn.Identity()
            anchor.decoder = nn.Identity()
            anchor.out_conv = nn.Identity()
            anchor.headless = True
        return self


@MODELS.register("ufvnet")
def ufvnet(*, anchor_sizes: Sequence[int] = ANCHOR_SIZES, regressor_hidden: int = 4096, anchor_heads: bool = True,
           **anchor_overrides) -> UFVNet:
    """UFVNet with three SPARNet-Light-Attn3D anchors: 79,973,423 parameters as built, 71,014,214 deployed.

    ``anchor_heads=False`` builds the stage-two network (Fig. 3): :meth:`UFVNet.discard_anchor_heads` applied,
    so loading stage-one anchors (``model.init_parts``) keeps only their encoders. ``anchor_overrides`` set
    :class:`~facesr.models.sparnet.SPARNetConfig` fields of the anchors (and of the fusion block and decoder,
    which share their layout).
    """
    cfg = with_options(LIGHT, anchor_overrides, "UFVNet anchor")
    model = UFVNet(cfg, anchor_sizes, regressor_hidden)
    if not anchor_heads:
        model.discard_anchor_heads()
    paper = cfg.same_layout(LIGHT) and regressor_hidden == 4096
    model.expected_params = (PARAM_COUNTS["ufvnet"] if anchor_heads else DEPLOY_PARAMS) if paper else None
    return model


__all__ = ["ANCHOR_SIZES", "PARAM_COUNTS", "UFVNet", "WeightRegressor", "anchor_target_weights", "ufvnet"]
