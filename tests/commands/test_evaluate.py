"""``facesr eval``: folder and checkpoint modes, --json, --device auto."""

from __future__ import annotations

import json

import numpy as np

from facesr.data.images import write_png
from tests.commands.conftest import run_main


def test_folders_json(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for d in ("pred", "gt"):
        (tmp_path / d).mkdir()
    for i in range(3):
        hr = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        write_png(tmp_path / "gt" / f"{i}.png", hr)
        write_png(tmp_path / "pred" / f"{i}.png", np.clip(hr.astype(int) + 3, 0, 255).astype(np.uint8))
    r = run_main(["eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-p", "rgb", "--json"], capsys)
    assert r.code == 0, r.err
    res = json.loads(r.out)
    assert res["images"] == 3 and "psnr[rgb]" in res["means"]
    text = run_main(["eval", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt", "-p", "rgb"], capsys)
    assert f"{res['means']['psnr[rgb]']:.3f}" in text.out


def test_checkpoint_json(tiny_run, tiny_store, capsys):
    r = run_main(["eval", "--checkpoint", tiny_run, "--store", tiny_store, "--split", "test", "--json"], capsys)
    assert r.code == 0, r.err
    res = json.loads(r.out)
    assert res["images"] == 4 and "bicubic" in res["baselines"]
