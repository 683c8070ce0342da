"""facesr.export: ONNX (onnxruntime against torch, dynamic batch), TorchScript, safetensors + facesr.load, cards."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from facesr.errors import WeightsInvalidError, WeightsMissingError
from facesr.export import TOLERANCE, export_model, export_run, load
from tests._runs import make_run

UNET = {"base_channels": 4, "refine_blocks": 1}
GVT = {"embed_dim": 24, "depths": (2, 2), "group_shifts": (0, 4), "num_heads": 2, "num_feat": 8}
THIN = {"min_ch": 8, "max_ch": 16, "hourglass_mid": 8}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    path = tmp_path_factory.mktemp("run") / "unet"
    model = make_run(path, "unet_light", UNET, ema=True)
    return path, model


@pytest.mark.parametrize(("name", "args"), [
    ("unet_light", UNET), ("sparnet", THIN), ("mrrnet", THIN),
    ("gvtnet", {**GVT, "variant": "released"}), ("gvtnet", {**GVT, "variant": "paper"}),
])
def test_onnx_matches_torch_with_a_dynamic_batch(tmp_path, name, args):
    import onnx
    import onnxruntime as ort

    from facesr.models import build

    torch.manual_seed(0)
    model = build(name, **args).eval()
    res = export_model(model, "onnx", tmp_path / "m.onnx", lr_side=16)
    assert res.max_abs_diff is not None and res.max_abs_diff <= TOLERANCE, res
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    assert graph.input[0].name == "lr" and graph.output[0].name == "sr"
    assert graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(5, 3, 16, 16)  # a batch size the check did not use
    with torch.no_grad():
        want = model(x)
    got = torch.from_numpy(sess.run(None, {"lr": x.numpy()})[0])
    assert got.shape == (5, 3, 128, 128) and (got - want).abs().max() <= TOLERANCE
    assert not model.training  # the exporter must not leave BatchNorm / drop-path in training mode


def test_export_run_all_formats_use_the_ema_weights(run, tmp_path):
    path, model = run
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        want = model(x)  # make_run loaded the EMA weights into the model it returns
    for fmt, name in (("onnx", "m.onnx"), ("torchscript", "m.pt"), ("safetensors", "m.safetensors")):
        res = export_run(path, fmt, tmp_path / name)
        assert res.path.is_file() and res.card == tmp_path / "MODEL_CARD.md" and not res.notes
        assert res.max_abs_diff <= TOLERANCE
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch deprecates TorchScript; the file still loads
        scripted = torch.jit.load(str(tmp_path / "m.pt"))
    torch.testing.assert_close(scripted(x), want)
    torch.testing.assert_close(load(tmp_path / "m.safetensors")(x), want)


def test_safetensors_rebuilds_from_the_file_alone(run, tmp_path):
    from safetensors import safe_open

    path, model = run
    export_run(path, "safetensors", tmp_path / "m.safetensors")
    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["facesr.model"] == "unet_light" and json.loads(meta["facesr.args"]) == UNET
    assert meta["facesr.weights"] == "ema" and meta["facesr.lr_size"] == "16"
    rebuilt = load(tmp_path / "m.safetensors")
    assert not rebuilt.training and rebuilt.head[0].in_channels == 4
    for (k, a), (k2, b) in zip(rebuilt.state_dict().items(), model.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)


def test_load_refuses_what_it_cannot_rebuild(run, tmp_path):
    path, _ = run
    with pytest.raises(WeightsMissingError):
        load(tmp_path / "absent.safetensors")
    with pytest.raises(WeightsInvalidError, match="does not name its model"):
        load(path / "checkpoints" / "best" / "model.safetensors")  # a checkpoint file: no model metadata
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(WeightsInvalidError):
        load(tmp_path / "junk.safetensors")


def test_model_card_says_what_the_run_is(run, tmp_path):
    path, _ = run
    res = export_run(path, "onnx", tmp_path / "m.onnx")
    card = res.card.read_text()
    for needle in ("# unet_light", "`{\"base_channels\": 4, \"refine_blocks\": 1}`", "preset: `seed000-bicubic`",
                   "loss recipe: `seed000`", "/data/tiny.zarr", "SNAP-42", "train `train`, validation `val`",
                   "psnr[dic]", "20.5000", "| best | 1 | 4 | val |", "| last | 2 | 8 | val |",
                   "`dic`: DIC: Y rounded", "ema weights", "max abs diff", "| `device` | `auto` | `cpu` |",
                   "Preset notes: Seed 000"):
        assert needle in card, needle


def test_gvtnet_card_lists_the_models_departures(tmp_path):
    make_run(tmp_path / "g", "gvtnet", {**GVT, "variant": "released"}, preset="gvtnet")
    card = export_run(tmp_path / "g", "safetensors", tmp_path / "out" / "g.safetensors").card.read_text()
    assert "Known departures from the released code" in card and "Choices where the paper is silent" in card
