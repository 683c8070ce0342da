"""Training and evaluation from a store at s3:// (issue 12, item 2), and training checkpoints whose
``model.safetensors`` rebuild their network from the file alone (item 4)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.data._s3 import make_bucket, s3_endpoint, s3_env  # noqa: F401 - the fixture
from tests.train._stores import TINY, make_store

ROOT = Path(__file__).resolve().parents[2]
URL = "s3://trainable/tiny.zarr"


def _cli(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "facesr.cli", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=400)


def _same_outputs(run: Path, which: str = "last") -> float:
    """max |facesr.load(checkpoint file) − load_run(run).model| on a fixed batch."""
    import facesr

    pred = facesr.load_run(run, which=which, device="cpu")
    file = run / "checkpoints" / which / ("ema.safetensors" if "ema" in pred.weights else "model.safetensors")
    model = facesr.load(file)  # the file alone: no config.yaml read
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return float((model(x) - pred.model(x)).abs().max())


def test_train_two_steps_and_evaluate_from_s3(s3_endpoint, monkeypatch, tmp_path):
    make_bucket(monkeypatch, s3_endpoint, "trainable")
    make_store(URL, n_train=8, n_val=4, n_test=4, chunk=4)
    env = {**os.environ, **s3_env(s3_endpoint), "FACESR_THREADS": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT)}
    sets = [a for kv in [*TINY, "max_steps=2", "data.num_workers=1"] for a in ("--set", kv)]
    res = _cli("train", "-q", "--store", URL, "--preset", "seed000-bicubic", "--out", "run", *sets, env=env,
               cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    run = tmp_path / "run"
    assert json.loads((run / "run.json").read_text())["store"] == URL
    state = json.loads((run / "checkpoints" / "last" / "state.json").read_text())
    assert state["train"]["step"] == 2
    res = _cli("eval", "--checkpoint", "run", "--store", URL, "--device", "cpu", "-o", "scores", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "split 'test'" in res.stdout + res.stderr
    assert (tmp_path / "scores" / "metrics.csv").is_file()
    # a resume finds the store again from run.json (a URL there, not a path)
    res = _cli("train", "-q", "--out", "run", "--resume", "--max-steps", "3", env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert json.loads((run / "checkpoints" / "last" / "state.json").read_text())["train"]["step"] == 3
    assert _same_outputs(run) == 0.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "scores"]  # no local folder named after the URL


def test_checkpoint_weights_rebuild_their_model(tmp_path):
    """The trainer's model.safetensors names its model and arguments: facesr.load(file) == load_run."""
    from safetensors import safe_open

    from facesr.export import META_ARGS, META_MODEL
    from facesr.train.config import load_config
    from facesr.train.trainer import train

    store = tmp_path / "tiny.zarr"
    make_store(store, n_train=8, n_val=4, n_test=4, chunk=4)
    train(load_config("seed000-bicubic", [*TINY, "max_steps=2"]), store, tmp_path / "run")
    file = tmp_path / "run" / "checkpoints" / "last" / "model.safetensors"
    with safe_open(str(file), framework="pt") as fh:
        meta = fh.metadata()
    assert meta[META_MODEL] == "unet_light"
    assert json.loads(meta[META_ARGS]) == {"base_channels": 4, "refine_blocks": 1}
    assert _same_outputs(tmp_path / "run") == 0.0


@pytest.mark.parametrize("ema", [False, True])
def test_checkpoint_save_writes_the_metadata_to_generator_files_only(tmp_path, ema):
    from safetensors import safe_open

    import facesr
    from facesr.models import build
    from facesr.train import checkpoint as ckpt

    torch.manual_seed(0)
    model = build("unet_light", base_channels=4, refine_blocks=1)
    weights = {"model": model.state_dict(), "disc": build("unet_light", base_channels=4).state_dict()}
    if ema:
        weights["ema"] = model.state_dict()
    folder = ckpt.save(tmp_path / "ck", weights=weights, state={"train": {"step": 1}, "model": "unet_light",
                                                                "model_args": {"base_channels": 4, "refine_blocks": 1}})
    for name in ("model", "ema") if ema else ("model",):
        rebuilt = facesr.load(folder / ckpt.WEIGHTS[name])
        assert all(torch.equal(rebuilt.state_dict()[k], v) for k, v in model.state_dict().items())
    with safe_open(str(folder / "disc.safetensors"), framework="pt") as fh:
        assert "facesr.model" not in (fh.metadata() or {})  # the discriminator is not the generator
    assert ckpt.verify(folder) is None
