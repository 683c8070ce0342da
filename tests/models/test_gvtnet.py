"""GVTNet: exact parameter counts, shapes, gradients, determinism, variants, adjacency maths."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facesr.errors import ConfigError
from facesr.models import build
from facesr.models.graph_attention import (
    AdjacencyRule,
    DualModelingBlock,
    GVTGroup,
    WindowGraphAttention,
    _window_partition,
    _window_reverse,
    minkowski_adjacency,
    minkowski_distance,
)
from facesr.models.gvtnet import GVTNet, GVTNetConfig, gvtnet, gvtnet_x4
from facesr.models.layers import DropPath, Mlp

SMALL = {"embed_dim": 24, "depths": (2, 2), "group_shifts": (0, 4), "num_heads": 2, "num_feat": 8}


def _n(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# ------------------------------------------------------------------------------------------------ model


@pytest.mark.parametrize("variant", ["paper", "released"])
def test_exact_parameter_counts(variant):
    with torch.device("meta"):  # no weights allocated
        m8, m4, paper8 = gvtnet(variant=variant), gvtnet_x4(variant=variant), gvtnet(variant="paper")
    assert _n(m8) == 12_177_511 == m8.expected_params
    assert _n(m4) == 12_029_799 == m4.expected_params
    # the same state-dict layout in both variants
    assert [(k, v.shape) for k, v in paper8.state_dict().items()] == [(k, v.shape) for k, v in m8.state_dict().items()]


@pytest.mark.parametrize(("name", "side"), [("gvtnet", 16), ("gvtnet_x4", 32)])
def test_forward_shape_x8_x4(name, side):
    torch.manual_seed(0)
    model = build(name).eval()
    with torch.no_grad():
        out = model(torch.rand(1, 3, side, side))
    assert out.shape == (1, 3, 128, 128)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("variant", ["paper", "released"])
def test_backward_finite_small(variant):
    torch.manual_seed(0)
    model = gvtnet(variant=variant, **SMALL).train()
    out = model(torch.rand(2, 3, 16, 16))
    assert out.shape == (2, 3, 128, 128)
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.conv_first.weight.grad.abs().sum() > 0
    assert model.layers[0].blocks[1].attn.relative_position_bias_table.grad.abs().sum() > 0  # a graph block


def test_deterministic_under_seed():
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    outs = []
    for _ in range(2):
        torch.manual_seed(123)
        model = gvtnet(variant="released", **SMALL).eval()
        with torch.no_grad():
            outs.append(model(x))
    assert torch.equal(outs[0], outs[1])


@pytest.mark.parametrize("builder", [gvtnet, gvtnet_x4])
def test_paper_and_released_differ_with_same_weights(builder):
    torch.manual_seed(0)
    paper = builder(variant="paper", **SMALL).eval()
    released = builder(variant="released", **SMALL).eval()
    released.load_state_dict(paper.state_dict())
    side = 128 // paper.scale
    x = torch.rand(1, 3, side, side)
    with torch.no_grad():
        a, b = paper(x), released(x)
    assert a.shape == b.shape == (1, 3, 128, 128)
    assert not torch.allclose(a, b)


def test_default_is_the_released_variant_of_table_ii():
    """The builders and the config default to the released code (threshold 0.85, p = ∞, near pairs, A after softmax)."""
    assert GVTNetConfig().variant == "released"
    with torch.device("meta"):
        cfg = gvtnet().cfg
    assert (cfg.variant, cfg.threshold, cfg.p, cfg.keep, cfg.graph_op) == ("released", 0.85, math.inf, "near", "post_softmax")
    with torch.device("meta"):
        assert gvtnet_x4().cfg.variant == "released" and gvtnet(variant="paper").cfg.threshold == 0.75


# Outputs of the SMALL models (seed 0 weights, eval, input rand(2, 3, s, s) from Generator seed 1), written by the
# code before its blocks took plain arguments: the refactor must not change a single output.
_GOLDEN = {
    (gvtnet, "paper"): (42873.17503748834, 0.5367574691772461),
    (gvtnet, "released"): (42873.082972317934, 0.5369327068328857),
    (gvtnet_x4, "paper"): (38149.093721568584, 0.43073397874832153),
    (gvtnet_x4, "released"): (38144.935731217265, 0.42975136637687683),
}


@pytest.mark.parametrize(("builder", "variant"), list(_GOLDEN))
def test_outputs_equal_the_pre_refactor_code(builder, variant):
    torch.manual_seed(0)
    model = builder(variant=variant, **SMALL).eval()
    side = 128 // model.scale
    x = torch.rand(2, 3, side, side, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x)
    total, pixel = _GOLDEN[(builder, variant)]
    assert float(y.double().sum()) == pytest.approx(total, rel=1e-6)
    assert float(y[0, 0, 5, 7]) == pytest.approx(pixel, abs=1e-5)


def test_blocks_take_plain_arguments():
    """No layer reads a GVTNetConfig: each builds and runs alone from plain arguments (timm style)."""
    import inspect

    for cls in (WindowGraphAttention, DualModelingBlock, GVTGroup):
        params = inspect.signature(cls.__init__).parameters
        assert "cfg" not in params and not any("GVTNetConfig" in str(p.annotation) for p in params.values())
    attn = WindowGraphAttention(24, 2, 8)
    assert attn(torch.randn(1, 24, 16, 16)).shape == (1, 24, 16, 16)
    block = DualModelingBlock(24, 2, 8, mlp_ratio=2.0, drop_path=0.1)
    assert isinstance(block.drop_path, DropPath) and isinstance(block.mlp, Mlp) and block.mlp.fc1.out_features == 48
    group = GVTGroup(24, 2, 2, 8, shift=4, adjacency=AdjacencyRule(p=math.inf, threshold=0.85, keep="near"))
    assert group(torch.randn(1, 256, 24), (16, 16)).shape == (1, 256, 24)
    model = gvtnet(**SMALL)
    assert isinstance(model.layers[0].blocks[0].drop_path, DropPath)
    assert {"layers.0.blocks.1.attn.qkv.depth_conv.weight", "layers.0.blocks.0.mlp.fc2.bias",
            "layers.1.blocks.1.attn.relative_position_bias_table"} <= set(model.state_dict())  # checkpoint keys kept


def test_drop_path_and_mlp_layers():
    x = torch.ones(1000, 3)
    dp = DropPath(0.25).train()
    torch.manual_seed(0)
    y = dp(x)
    kept = y[:, 0] != 0
    assert torch.all(y[kept] == 1 / 0.75) and 0.65 < kept.float().mean() < 0.85
    assert torch.equal(dp.eval()(x), x) and torch.equal(DropPath(0.0).train()(x), x)
    mlp = Mlp(3, 5)
    torch.testing.assert_close(mlp(x), mlp.fc2(torch.nn.functional.gelu(mlp.fc1(x))))


def test_variant_defaults():
    paper = GVTNetConfig(variant="paper").resolved()
    assert (paper.p, paper.threshold, paper.keep, paper.identity, paper.graph_op) == (2.0, 0.75, "far", "set", "masked")
    assert paper.graph_scale and not paper.strided_windows and not paper.shift_graph_blocks
    rel8 = GVTNetConfig(variant="released", scale=8).resolved()
    rel4 = GVTNetConfig(variant="released", scale=4).resolved()
    assert rel8.p == math.inf and rel4.p == 2.0  # the released ×8 / ×4 configs
    assert (rel8.threshold, rel8.keep, rel8.identity, rel8.graph_op) == (0.85, "near", "add", "post_softmax")
    assert rel8.strided_windows and rel8.shift_graph_blocks and not rel8.graph_scale
    # explicit overrides win over the variant's defaults
    assert GVTNetConfig(variant="paper", p=1.0).resolved().p == 1.0


def test_bad_options():
    with pytest.raises(ConfigError, match="embedd"):
        gvtnet(embedd_dim=32)
    with pytest.raises(ConfigError):
        gvtnet(variant="code")
    with pytest.raises(ValueError, match="divisible"):
        GVTNet(GVTNetConfig(**SMALL))(torch.rand(1, 3, 12, 12))


def test_input_range_is_mean_subtraction():
    """A constant input equal to the mean reaches the first conv as zeros (its bias only)."""
    model = gvtnet(**SMALL).eval()
    seen = {}
    model.conv_first.register_forward_hook(lambda m, i, o: seen.update(x=i[0]))
    x = torch.tensor([0.5430, 0.4217, 0.3605]).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    with torch.no_grad():
        model(x)
    assert seen["x"].abs().max() < 1e-6


# ------------------------------------------------------------------------------------------------ maths


def _naive_dist(z: np.ndarray, p: float) -> np.ndarray:
    n = z.shape[0]
    d = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            diff = np.abs(z[i] - z[j])
            d[i, j] = diff.max() if math.isinf(p) else (diff**p).sum() ** (1 / p)
    return d


def _naive_adj(z: np.ndarray, p: float, t: float, keep: str, identity: str) -> np.ndarray:
    d = _naive_dist(z, p)
    n = z.shape[0]
    a = np.zeros((n, n))
    for i in range(n):
        thr = t * d[i].max()
        for j in range(n):
            a[i, j] = float(d[i, j] > thr) if keep == "far" else float(d[i, j] < thr)
        a[i, i] = max(a[i, i], 1.0) if identity == "set" else a[i, i] + 1.0
    return a


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
def test_minkowski_distance_matches_numpy(p):
    z = np.random.default_rng(0).normal(size=(9, 5))
    got = minkowski_distance(torch.tensor(z), torch.tensor(z), p).numpy()
    np.testing.assert_allclose(got, _naive_dist(z, p), rtol=1e-10, atol=1e-12)
    assert np.all(np.diag(got) == 0)


@pytest.mark.parametrize("p", [1.0, 2.0, math.inf])
@pytest.mark.parametrize(("keep", "identity", "t"), [("near", "add", 0.85), ("far", "set", 0.75), ("near", "set", 0.6)])
def test_adjacency_matches_numpy(p, keep, identity, t):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(2, 12, 7))
    got = minkowski_adjacency(torch.tensor(z), p=p, threshold=t, keep=keep, identity=identity).numpy()
    for b in range(2):
        np.testing.assert_array_equal(got[b], _naive_adj(z[b], p, t, keep, identity))
    diag = np.diagonal(got, axis1=-2, axis2=-1)
    assert np.all(diag == (2.0 if identity == "add" else 1.0))  # released: D_ii = 0 < t, then + I


def test_adjacency_threshold_extremes():
    z = torch.randn(10, 4)
    near_all = minkowski_adjacency(z, threshold=1.01, keep="near", identity="set")
    assert torch.equal(near_all, torch.ones(10, 10))
    far_none = minkowski_adjacency(z, threshold=1.0, keep="far", identity="set")
    assert torch.equal(far_none, torch.eye(10))


@pytest.mark.parametrize("strided", [False, True])
def test_window_partition_roundtrip_and_layout(strided):
    h, w, ws = 16, 24, 8
    x = torch.arange(2 * 3 * h * w, dtype=torch.float32).view(2, 3, h, w)
    win = _window_partition(x, ws, strided)
    assert win.shape == (2 * (h // ws) * (w // ws), ws * ws, 3)
    assert torch.equal(_window_reverse(win, 2, h, w, ws, strided), x)
    hh, ww = h // ws, w // ws
    a, b, j, i = 1, 2, 3, 5  # window (a, b), token (j, i), image 0, channel 0
    token = win[a * ww + b, j * ws + i, 0]
    row, col = (j * hh + a, i * ww + b) if strided else (a * ws + j, b * ws + i)
    assert token == x[0, 0, row, col]


def test_masked_graph_attention_with_identity_adjacency_is_value_projection():
    """With A = I and the paper's masked softmax, each token attends only to itself: out = proj(V)."""
    attn = WindowGraphAttention(24, 2, 8, graph=True, graph_op="masked").eval()
    x = torch.randn(1, 24, 16, 16)
    adj = torch.eye(64).expand(4, 2, 64, 64)
    with torch.no_grad():
        got = attn(x, adj=adj)
        want = attn.proj(attn.qkv(x)[:, 48:])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_released_adjacency_is_shared_across_windows_and_has_diag_two():
    torch.manual_seed(0)
    model = gvtnet(variant="released", **SMALL).eval()
    group = model.layers[1]
    tokens = torch.randn(2, 16 * 16, 24)
    adj = group.adjacency(tokens, (16, 16))
    assert adj.shape == (2 * 4, 2, 64, 64)
    assert torch.equal(adj[0], adj[3]) and torch.equal(adj[4], adj[7])
    assert torch.all(torch.diagonal(adj, dim1=-2, dim2=-1) == 2)
    paper_adj = gvtnet(variant="paper", **SMALL).layers[1].adjacency(tokens, (16, 16))
    assert set(paper_adj.unique().tolist()) <= {0.0, 1.0}
    assert torch.all(torch.diagonal(paper_adj, dim1=-2, dim2=-1) == 1)
