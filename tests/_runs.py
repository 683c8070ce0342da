"""A trained-looking run folder written directly (config.yaml, run.json, metrics.csv, checkpoints/best), so the
export and API tests need no training: the weights are a seeded model's initial ones."""

from __future__ import annotations

import json
from pathlib import Path

METRICS = ("epoch,step,kind,images,psnr[dic],ssim[dic],lpips,criterion,score,bicubic_psnr[dic],bicubic_ssim[dic],"
           "lr,best\n1,4,val,8,20.5,0.70,nan,0.1,20.5,22.0,0.75,0.0001,True\n2,8,val,8,20.1,0.69,nan,0.2,20.1,22.0,"
           "0.75,0.0001,False\n")


def make_run(run, name: str = "unet_light", args: dict | None = None, preset: str = "seed000-bicubic",
             seed: int = 0, ema: bool = False):
    """Write a run folder for model ``name`` with ``args``; returns the model whose weights it holds."""
    import torch

    from facesr.models import build
    from facesr.train import checkpoint as ckpt
    from facesr.train.config import dump_yaml, load_config

    run = Path(run)
    run.mkdir(parents=True, exist_ok=True)
    args = dict(args or {})
    cfg = load_config(preset, {"model.name": name, "model.args": args, "device": "cpu"})
    (run / "config.yaml").write_text(dump_yaml(cfg))
    (run / "run.json").write_text(json.dumps({
        "store": "/data/tiny.zarr", "store_snapshot": "SNAP-42", "store_attrs": {"schema_version": 1, "chunk": 8},
        "world_size": 1, "torch": torch.__version__, "device": "cpu", "amp": "off", "facesr": "0.1.0"}))
    (run / "metrics.csv").write_text(METRICS)
    torch.manual_seed(seed)
    model = build(name, **args).eval()
    weights = {"model": model.state_dict()}
    if ema:  # distinct EMA weights: the export must take these
        weights["ema"] = {k: v + 0.01 if v.is_floating_point() else v for k, v in model.state_dict().items()}
        model.load_state_dict(weights["ema"])
    ckpt.save(run / "checkpoints" / "best", weights=weights, state={"train": {"epoch": 2, "step": 8}, "model": name})
    return model
