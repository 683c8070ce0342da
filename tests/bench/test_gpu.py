"""bench/gpu.py: the dry run exercises every section on the CPU; --prepare packs compact inputs."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _gpu_bench():
    spec = importlib.util.spec_from_file_location("bench_gpu", ROOT / "bench" / "gpu.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_dry_run_writes_every_section(tmp_path):
    out = tmp_path / "gpu.json"
    assert _gpu_bench().main(["--dry-run", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["meta"]["dry_run"] is True and res["meta"]["device"] == "cpu"
    for section in ("priors", "loader", "train", "latency", "ablation"):
        assert isinstance(res[section], dict), (section, res[section])  # a failed section is a string
    assert res["priors"]["images_per_s"] > 0 and res["priors"]["gflops_per_image"] > 0
    assert res["train"]["unet_light_1rh"]["images_per_s"] > 0
    assert res["latency"]["unet_light_1rh"]["eager_bf16_ms"] > 0
    abl = res["ablation"]
    for arm in ("bicubic", "without_heatmap", "with_heatmap"):
        assert np.isfinite(abl[arm]["psnr[dic]"]) and np.isfinite(abl[arm]["psnr[dic,eyes]"])
    assert abl["with_heatmap"]["final_loss"] != abl["without_heatmap"]["final_loss"]  # the two arms differ


@pytest.mark.shared
def test_prepare_packs_inputs(tmp_path, shared_dir):
    pytest.importorskip("facesr.priors.landmarks")
    info = _gpu_bench().prepare(tmp_path / "in", 3, 2, shared_dir, wheels=False)
    assert info["celeba"] == 3 and info["dic"] == 2 and info["mib"] < 1
    z = np.load(tmp_path / "in" / "celeba.npz", allow_pickle=True)
    assert z["boxes"].shape == (3, 16, 6) and np.isfinite(z["boxes"][:, 0, 0]).all()
    d = np.load(tmp_path / "in" / "dic.npz", allow_pickle=True)
    assert d["parsing"].shape == (2, 128, 128) and (d["parsing"] == 3).any()  # eyes present
