"""The one evaluator on folders and batches, its writers, its errors, and the `facesr eval` command."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from facesr.cli import app
from facesr.errors import ConfigError, DatasetError
from facesr.metrics.evaluate import evaluate
from facesr.metrics.protocols import psnr_ssim
from facesr.metrics.report import write_report
from facesr.metrics.sources import folder_batches, load_pairs


def evaluate_arrays(sr, hr, ids=None, *, protocols=("dic",), extra=(), classes=None, **kw):
    """Score precomputed uint8 stacks with the one evaluator (one batch)."""
    batch = {"sr": sr, "hr": hr, **({"ids": ids} if ids is not None else {})}
    if classes is not None:
        batch["parsing"] = classes
    return evaluate(None, [batch], protocols, extra, **kw)


@pytest.fixture()
def folders(tmp_path):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128]
    pred, gt = tmp_path / "pred", tmp_path / "gt"
    pred.mkdir()
    gt.mkdir()
    hr = np.clip(128 + 80 * np.sin(xx / 6.0)[None, ..., None] + rng.normal(0, 5, (5, 128, 128, 3)), 0, 255).astype(np.uint8)
    sr = np.clip(hr + rng.normal(0, 10, hr.shape), 0, 255).astype(np.uint8)
    ids = [f"{i:06d}" for i in range(5)]
    for i, a, b in zip(ids, sr, hr):
        Image.fromarray(a).save(pred / f"{i}.png")
        Image.fromarray(b).save(gt / f"{i}.png")
    return pred, gt, ids, sr, hr


def test_folders_match_arrays_and_write_reports(folders, tmp_path):
    pred, gt, ids, sr, hr = folders
    res = evaluate(None, folder_batches(pred, gt, batch_size=2), ("dic", "rgb"), ("msssim",), grid_n=6)
    res.files = write_report(res, tmp_path / "out")
    assert res.ids == ids
    assert list(res.columns) == ["psnr[dic]", "ssim[dic]", "psnr[rgb]", "ssim[rgb]", "msssim[rgb]"]
    ref = psnr_ssim(sr, hr, "rgb")
    np.testing.assert_allclose(res.columns["psnr[rgb]"], ref.psnr)
    assert res.means()["ssim[rgb]"] == pytest.approx(ref.ssim.mean())
    md = (tmp_path / "out" / "metrics.md").read_text()
    assert "| psnr[dic] |" in md and "5 images" in md
    rows = list(csv.DictReader((tmp_path / "out" / "metrics.csv").open()))
    assert [r["id"] for r in rows] == ids
    assert float(rows[2]["psnr[rgb]"]) == pytest.approx(ref.psnr[2])
    grid = np.asarray(Image.open(tmp_path / "out" / "grid.png"))
    assert grid.shape[1] >= 3 * 128 and grid.shape[0] >= 5 * 128
    assert set(res.files) == {"markdown", "csv", "grid"}


def test_lpips_extra_is_wired(folders, monkeypatch):
    """The wiring only (LPIPS itself is tested in test_lpips.py; building a trunk here would cost seconds)."""
    import facesr.metrics.lpips as lp

    seen = {}

    class Fake:
        def __init__(self, net, *, pnet_rand, device, weights_dir):
            seen.update(net=net, pnet_rand=pnet_rand)
            self.column = f"lpips[{net}]"

        def __call__(self, a, b):
            return np.abs(a.astype(float) - b).mean(axis=(1, 2, 3))

    monkeypatch.setattr(lp, "LPIPSMetric", Fake)
    _, _, ids, sr, hr = folders
    res = evaluate_arrays(sr, hr, ids, extra=("lpips-vgg",), lpips_rand=True)
    assert seen == {"net": "vgg", "pnet_rand": True}
    assert res.columns["lpips[vgg]"].shape == (5,)


def test_face_extras_use_the_given_landmarker(folders):
    _, _, ids, sr, hr = folders
    lm = lambda imgs: np.zeros((len(imgs), 68, 2))  # noqa: E731
    res = evaluate_arrays(sr, hr, ids, extra=("aed",), landmarker=lm)
    np.testing.assert_array_equal(res.columns["aed[68]"], np.zeros(5))


def _ring(cx: float, cy: float, rx: float, ry: float, k: int) -> list[tuple[float, float]]:
    t = np.linspace(0, 2 * np.pi, k, endpoint=False)
    return list(zip(cx + rx * np.cos(t), cy + ry * np.sin(t)))


def _face_68() -> np.ndarray:
    """A synthetic frontal 68-point layout (dlib order) on a 128×128 image."""
    t = np.linspace(0, np.pi, 17)
    jaw = list(zip(64 - 44 * np.cos(t), 60 + 50 * np.sin(t)))
    brows = [(x, 50.0) for x in np.linspace(34, 56, 5)] + [(x, 50.0) for x in np.linspace(72, 94, 5)]
    nose = [(64.0, y) for y in np.linspace(58, 76, 4)] + [(x, 80.0) for x in np.linspace(56, 72, 5)]
    eyes = _ring(46, 62, 6, 3, 6) + _ring(82, 62, 6, 3, 6)
    mouth = _ring(64, 95, 14, 6, 12) + _ring(64, 95, 9, 3, 8)
    return np.array(jaw + brows + nose + eyes + mouth, np.float32)


def test_region_psnr_from_given_maps_or_from_landmarks(folders):
    from facesr.metrics.regions import region_psnr
    from facesr.priors.parsing import parse_from_landmarks

    _, _, ids, sr, hr = folders
    n, h, w = hr.shape[:3]
    pts = np.repeat(_face_68()[None], n, axis=0)
    res = evaluate_arrays(sr, hr, ids, protocols=("dic", "rgb"), extra=("regions",), landmarker=lambda imgs: pts)
    classes = np.stack([parse_from_landmarks(p, h, w) for p in pts])
    for proto in ("dic", "rgb"):
        want = region_psnr(sr, hr, classes, protocol=proto)
        assert set(want) == {f"psnr[{proto},{r}]" for r in ("eyes", "nose", "mouth")}
        for k, v in want.items():
            np.testing.assert_allclose(res.columns[k], v)
    given = np.zeros((n, h, w), np.uint8)  # store maps win over landmarks: no eyes here → NaN
    res = evaluate_arrays(sr, hr, ids, extra=("regions",), landmarker=lambda imgs: pts, classes=given)
    assert np.isnan(res.columns["psnr[dic,eyes]"]).all()


def test_mismatched_folders_list_counts(folders):
    pred, gt, *_ = folders
    (pred / "000003.png").unlink()
    (pred / "000003.png").write_bytes((gt / "000003.png").read_bytes())
    (pred / "000001.png").unlink()
    Image.new("RGB", (128, 128)).save(pred / "999999.png")
    with pytest.raises(DatasetError, match=r"1 of 5 ground-truth images have no prediction \(e.g. 000001\).*1 of 5 predictions have no ground truth"):
        load_pairs(pred, gt)


def test_size_mismatch_and_empty(folders, tmp_path):
    pred, gt, *_ = folders
    Image.new("RGB", (32, 32)).save(pred / "000002.png")
    with pytest.raises(DatasetError, match="1 of 5 predictions differ in size"):
        load_pairs(pred, gt)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="no images"):
        load_pairs(pred, empty)


def test_unknown_names(folders):
    pred, gt, _, sr, hr = folders
    with pytest.raises(ConfigError, match="unknown evaluation protocol"):
        evaluate(None, folder_batches(pred, gt), ("matlab",))
    with pytest.raises(ConfigError, match="unknown extra"):
        evaluate_arrays(sr, hr, extra=("fid",))


def test_cli_pred_gt(folders, tmp_path):
    pred, gt, _, sr, hr = folders
    out = tmp_path / "cli"
    r = CliRunner().invoke(app, ["eval", "--pred", str(pred), "--gt", str(gt), "--protocol", "sparnet", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "psnr[sparnet]" in r.output and f"{psnr_ssim(sr, hr, 'sparnet').psnr.mean():.3f}" in r.output
    assert {p.name for p in out.iterdir()} == {"metrics.md", "metrics.csv", "grid.png"}


def test_cli_source_options_must_pair(tmp_path):
    for args in (["--pred", str(tmp_path)], ["--checkpoint", str(tmp_path)], ["--pred", str(tmp_path), "--gt",
                 str(tmp_path), "--store", str(tmp_path)], []):
        r = CliRunner().invoke(app, ["eval", *args])
        assert isinstance(r.exception, ConfigError), args


@pytest.mark.shared
def test_cli_on_the_gvtnet_fixture(dic_root, tmp_path):
    """The issue's check: facesr eval on GVTNet_x8 vs HR under dic → 27.937 / 0.8153."""
    r = CliRunner().invoke(app, ["eval", "--pred", str(dic_root / "GVTNet_x8"), "--gt", str(dic_root / "HR"),
                                 "--protocol", "dic", "--out", str(tmp_path)])
    assert r.exit_code == 0, r.output
    assert "27.937" in r.output and "0.8153" in r.output
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert len(rows) == 1000
    assert np.mean([float(x["psnr[dic]"]) for x in rows]) == pytest.approx(27.937, abs=0.001)


@pytest.mark.shared
def test_one_evaluator_and_its_bicubic_baseline_on_the_dic_set(dic_root):
    """README's dic row through evaluate(): GVTNet 27.937 / 0.8153, and the evaluator's own bicubic baseline
    of the community's 16×16 LR files 23.580 / 0.6269 (the README's PIL-bicubic column)."""
    ids, sr, hr = load_pairs(dic_root / "GVTNet_x8", dic_root / "HR")
    lr = np.stack([np.asarray(Image.open(dic_root / "LR" / f"{i}.png").convert("RGB")) for i in ids])
    batches = [{"ids": ids[i : i + 250], "sr": sr[i : i + 250], "hr": hr[i : i + 250], "lr": lr[i : i + 250]}
               for i in range(0, len(ids), 250)]
    res = evaluate(None, batches, ("dic",))
    m, b = res.means(), res.means("bicubic")
    assert len(res.ids) == 1000
    assert m["psnr[dic]"] == pytest.approx(27.937, abs=0.001) and m["ssim[dic]"] == pytest.approx(0.8153, abs=0.0005)
    assert b["psnr[dic]"] == pytest.approx(23.580, abs=0.001) and b["ssim[dic]"] == pytest.approx(0.6269, abs=0.0005)
