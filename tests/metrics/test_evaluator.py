"""The one evaluator with a model: predict over batches, the bicubic baseline, float vs uint8 batches, limits,
kept samples, the metric cache; store splits, the default split and the multi-resolution table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from facesr.data.degrade import resize
from facesr.data.store import FaceStore
from facesr.errors import ConfigError, DatasetError, StoreIncompleteError
from facesr.metrics.evaluate import evaluate
from facesr.metrics.pixels import bicubic_baseline, to_float, to_uint8
from facesr.metrics.protocols import psnr_ssim
from facesr.metrics.sources import default_split, store_batches, store_lr_specs


def _faces(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:128, 0:128]
    base = 128 + 70 * np.sin(xx / 7.0)[None, ..., None] * np.cos(yy / 11.0)[None, ..., None]
    return np.clip(base + rng.normal(0, 6, (n, 128, 128, 3)), 0, 255).astype(np.uint8)


def _bilinear(lr: torch.Tensor) -> torch.Tensor:
    """A stand-in model: bilinear ×(128/s), any LR size."""
    return F.interpolate(lr, size=(128, 128), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def batches():
    hr = _faces(10)
    lr = np.stack([resize(x, (16, 16), "bicubic-pil") for x in hr])
    return hr, lr


def _store(splits, sizes=(16,)):
    hr = _faces(len(splits), seed=1)
    st = FaceStore.create(None, ids=[f"f{i:02d}" for i in range(len(splits))], splits=list(splits), chunk=4)
    st.write("hr", 0, hr)
    for s in sizes:
        st.require(f"lr/bicubic-pil_{s}", (s, s, 3), "uint8")
        st.write(f"lr/bicubic-pil_{s}", 0, np.stack([resize(x, (s, s), "bicubic-pil") for x in hr]))
    return st, hr


class _FakePredictor:
    """What evaluate_run needs of a Predictor: predict, lr_specs, device."""

    def __init__(self, specs):
        self.lr_specs = list(specs)
        self.device = torch.device("cpu")
        self.calls = 0

    def predict(self, lr):
        self.calls += 1
        return _bilinear(lr).clamp(0, 1)


def test_predict_batches_score_the_quantised_output_and_bicubic(batches):
    hr, lr = batches
    chunks = [{"hr": hr[i : i + 4], "lr": lr[i : i + 4], "ids": [f"x{j}" for j in range(i, min(i + 4, 10))]}
              for i in range(0, 10, 4)]
    res = evaluate(_bilinear, chunks, ("dic", "rgb"), ())
    sr = to_uint8(_bilinear(to_float(lr)))
    for p in ("dic", "rgb"):
        np.testing.assert_allclose(res.columns[f"psnr[{p}]"], psnr_ssim(sr, hr, p).psnr)
        np.testing.assert_allclose(res.baselines["bicubic"][f"ssim[{p}]"],
                                   psnr_ssim(bicubic_baseline(lr, 128), hr, p).ssim)
    assert res.ids == [f"x{j}" for j in range(10)]
    assert res.means()["psnr[dic]"] != pytest.approx(res.means("bicubic")["psnr[dic]"])


def test_float_batches_on_device_equal_uint8_batches(batches):
    """What the trainer passes (to_float batches) scores exactly as the stored bytes do."""
    hr, lr = batches
    a = evaluate(_bilinear, [{"hr": hr, "lr": lr}], ("dic",))
    b = evaluate(_bilinear, [{"hr": to_float(hr), "lr": to_float(lr), "index": torch.arange(10)}], ("dic",))
    np.testing.assert_array_equal(a.columns["psnr[dic]"], b.columns["psnr[dic]"])
    np.testing.assert_array_equal(a.baselines["bicubic"]["ssim[dic]"], b.baselines["bicubic"]["ssim[dic]"])
    assert b.ids == [str(i) for i in range(10)]


def test_limit_grid_samples_and_sr_dir(batches, tmp_path):
    from facesr.data.images import read_image
    from facesr.data.visualize import comparison_grid

    hr, lr = batches
    chunks = [{"hr": hr[i : i + 3], "lr": lr[i : i + 3]} for i in range(0, 10, 3)]
    res = evaluate(_bilinear, chunks, ("dic",), limit=7, grid_n=4, sr_dir=tmp_path / "sr")
    assert len(res.ids) == 7 and len(res.columns["psnr[dic]"]) == 7
    assert set(res.samples) == {"lr", "bicubic", "sr", "hr", "ids"} and len(res.samples["hr"]) == 4
    np.testing.assert_array_equal(res.samples["hr"], hr[:4])
    saved = sorted((tmp_path / "sr").iterdir())
    assert len(saved) == 7
    assert saved[5].name == "5.png"
    np.testing.assert_array_equal(read_image(saved[5]), to_uint8(_bilinear(to_float(lr[5:6])))[0])
    grid = comparison_grid(res.samples)
    assert grid.shape[1] == 5 * (128 + 2) + 2 and grid.shape[0] == 14 + 4 * (128 + 14) + 2  # LR|bic|SR|HR|err
    base = evaluate(None, [{"sr": res.samples["sr"], "hr": res.samples["hr"]}], ("dic",), baseline=True)
    assert base.baselines == {}  # no LR, no baseline


def test_cache_keeps_metric_networks_between_calls(batches, monkeypatch):
    import facesr.metrics.lpips as lp

    built = []

    class Fake:
        def __init__(self, net, *, pnet_rand, device, weights_dir):
            built.append(net)
            self.column = f"lpips[{net}{'-rand' if pnet_rand else ''}]"

        def __call__(self, a, b):
            return np.abs(a.astype(float) - b).mean(axis=(1, 2, 3))

    monkeypatch.setattr(lp, "LPIPSMetric", Fake)
    hr, lr = batches
    cache: dict = {}
    for _ in range(3):
        res = evaluate(_bilinear, [{"hr": hr, "lr": lr}], ("dic",), ("lpips-vgg",), cache=cache, lpips_rand=True)
    assert built == ["vgg"] and "lpips[vgg-rand]" in res.columns and "lpips[vgg-rand]" in res.baselines["bicubic"]


def test_errors(batches):
    hr, lr = batches
    with pytest.raises(ConfigError, match="predict is None"):
        evaluate(None, [{"hr": hr, "lr": lr}])
    with pytest.raises(ConfigError, match="not both"):
        evaluate(_bilinear, [{"hr": hr, "sr": hr}])
    with pytest.raises(ConfigError, match="must be equal"):
        evaluate(None, [{"hr": hr, "sr": lr}])
    with pytest.raises(DatasetError, match="no images"):
        evaluate(_bilinear, [])
    with pytest.raises(ConfigError, match="unknown extra"):
        evaluate(_bilinear, [{"hr": hr, "lr": lr}], extras=("fid",))


def test_store_batches_and_default_split():
    st, hr = _store(["val"] * 3 + ["test"] * 5)
    assert default_split(st) == "test"
    got = list(store_batches(st, "test", "bicubic-pil:16", batch_size=2))
    assert [b["ids"] for b in got] == [["f03", "f04"], ["f05", "f06"], ["f07"]]
    np.testing.assert_array_equal(np.concatenate([b["hr"] for b in got]), hr[3:])
    st2, _ = _store(["train"] * 2 + ["val"] * 3)
    assert default_split(st2) == "val"
    with pytest.raises(DatasetError, match="no usable samples"):
        list(store_batches(st2, "test", "bicubic-pil_16"))


def test_evaluate_run_one_row_per_resolution():
    from facesr.train.inference import evaluate_run

    st, hr = _store(["val"] * 2 + ["test"] * 4, sizes=(16, 32))
    assert store_lr_specs(st) == ["bicubic-pil_16", "bicubic-pil_32"]
    split, res = evaluate_run(_FakePredictor(["bicubic-pil_16", "bicubic-pil_32"]), st)
    assert split == "test" and list(res) == ["bicubic-pil_16", "bicubic-pil_32"]
    for spec, s in (("bicubic-pil_16", 16), ("bicubic-pil_32", 32)):
        lr = np.stack([resize(x, (s, s), "bicubic-pil") for x in hr[2:]])
        want = psnr_ssim(to_uint8(_bilinear(to_float(lr))), hr[2:], "dic").psnr
        np.testing.assert_allclose(res[spec].columns["psnr[dic]"], want)
    assert res["bicubic-pil_32"].means()["psnr[dic]"] > res["bicubic-pil_16"].means()["psnr[dic]"]
    # a single-resolution run scores only its own LR; "all" scores every LR array; a missing one is one error
    assert list(evaluate_run(_FakePredictor(["bicubic-pil:32"]), st, "val")[1]) == ["bicubic-pil_32"]
    assert list(evaluate_run(_FakePredictor(["bicubic-pil_16"]), st, lr="all")[1]) == list(res)
    with pytest.raises(StoreIncompleteError, match="bicubic-pil_8"):
        evaluate_run(_FakePredictor(["bicubic-pil_8"]), st)


def test_cli_multi_resolution_table_and_default_split(tmp_path, monkeypatch):
    import facesr.train.inference as inf
    from facesr.cli import app

    path = tmp_path / "mr.zarr"
    st, _ = _store(["val"] * 2 + ["test"] * 4, sizes=(16, 32))
    disk = FaceStore.create(path, ids=list(st.ids), splits=list(st.splits), chunk=4)
    for name in ("hr", "lr/bicubic-pil_16", "lr/bicubic-pil_32"):
        if name != "hr":
            disk.require(name, st.array(name).shape[1:], "uint8")
        disk.write(name, 0, st.read(name))
    fake = _FakePredictor(["bicubic-pil_16", "bicubic-pil_32"])
    asked = []
    monkeypatch.setattr(inf, "load_run", lambda *a, **k: asked.append(k.get("self_ensemble")) or fake)
    r = CliRunner().invoke(app, ["eval", "--checkpoint", str(tmp_path), "--store", str(path), "-o",
                                 str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert r.exit_code == 0, r.output
    assert "evaluating split 'test' (default: the store has a test split)" in r.output
    assert "2 input resolutions" in r.output and "bicubic-pil_32 bicubic" in r.output
    table = (tmp_path / "out" / "resolutions.md").read_text()
    assert table.count("| bicubic-pil_16") == 2 and "| input | images | psnr[dic] | ssim[dic] |" in table
    assert (tmp_path / "out" / "bicubic-pil_32_metrics.csv").exists()
    r = CliRunner().invoke(app, ["eval", "--checkpoint", str(tmp_path), "--store", str(path), "--split", "val",
                                 "--json"])
    out = json.loads(r.stdout)
    assert out["split"] == "val" and [x["input"] for x in out["results"]] == ["bicubic-pil_16", "bicubic-pil_32"]
    assert out["results"][0]["images"] == 2
    r = CliRunner().invoke(app, ["eval", "--checkpoint", str(tmp_path), "--store", str(path), "--self-ensemble",
                                 "--json"])
    assert r.exit_code == 0, r.output
    assert asked == [False, False, True]  # --self-ensemble reaches load_run
    assert json.loads(r.stdout)["settings"]["self-ensemble"] == "8 flip/rot90 transforms"


def test_run_lr_specs_read_every_form_of_data_lr():
    from types import SimpleNamespace

    from facesr.train.inference import run_lr_specs

    def specs(lr):
        return run_lr_specs(SimpleNamespace(data=SimpleNamespace(lr=lr)))

    assert specs("bicubic-pil_16") == ["bicubic-pil_16"]
    assert specs("bicubic-pil:16, bilinear:32") == ["bicubic-pil_16", "bilinear_32"]
    assert specs(["bicubic-pil:8", "bicubic-pil_64"]) == ["bicubic-pil_8", "bicubic-pil_64"]
    assert specs("MR8") == [f"bicubic-pil_{s}" for s in (8, 16, 24, 32, 40, 48, 56, 64)]
    with pytest.raises(ConfigError):
        specs("")
