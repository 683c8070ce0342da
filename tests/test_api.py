"""The public API at the package top: lazy imports, and the README's "Python API" snippet run as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "README has no python block under 'Python API'"
    return blocks[0]


def test_import_is_light_and_all_names_resolve():
    code = ("import sys, facesr; assert 'torch' not in sys.modules and 'zarr' not in sys.modules, 'heavy import'; "
            "assert facesr.__all__ == ['__version__', 'load', 'load_run', 'models', 'open_store']; "
            "assert all(getattr(facesr, n) is not None for n in facesr.__all__); "
            "assert callable(facesr.models.build)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr


def test_readme_python_api_snippet_runs_as_written(tmp_path, monkeypatch):
    from PIL import Image

    import facesr
    from facesr.export import export_run
    from tests._runs import make_run
    from tests.train._stores import make_store

    monkeypatch.chdir(tmp_path)
    model = make_run("runs/seed000", "unet_light", {"base_channels": 4, "refine_blocks": 1})
    export_run("runs/seed000", "safetensors", "export/model.safetensors")
    make_store("stores/celeba.zarr", n_train=4, n_val=2, n_test=2)
    face = (np.random.default_rng(0).uniform(0, 255, (16, 16, 3))).astype(np.uint8)
    Image.fromarray(face).save("face16.png")

    scope: dict = {}
    exec(compile(_readme_snippet(), "README.md", "exec"), scope)  # noqa: S102 - our own README

    sr = np.asarray(Image.open("face128.png"))
    assert sr.shape == (128, 128, 3) and sr.dtype == np.uint8
    import torch

    with torch.no_grad():
        want = model(torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255).clamp(0, 1)
    want8 = (want[0].permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    assert np.abs(sr.astype(int) - want8.astype(int)).max() <= 1  # the run's network, not something else
    assert isinstance(scope["predictor"], facesr.train.inference.Predictor)
    assert scope["net"] is scope["predictor"].model and not scope["model"].training
    assert len(scope["store"].ids) == 8
    assert scope["gvt"].cfg.variant == "paper"
