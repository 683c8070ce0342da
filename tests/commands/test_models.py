"""``facesr models list | profile``: --json prints, -o writes, --device defaults to auto."""

from __future__ import annotations

import json

from tests.commands.conftest import run_main


def test_list_json(capsys):
    r = run_main(["models", "list", "--json"], capsys)
    assert r.code == 0, r.err
    rows = {m["name"]: m for m in json.loads(r.out)}
    assert {"unet_light", "sparnet_light", "gvtnet"} <= set(rows) and rows["unet_light"]["params"] > 0


def test_profile_json_and_out(tmp_path, capsys):
    out = tmp_path / "sub" / "p.json"
    r = run_main(["models", "profile", "bicubic", "--batch", "2", "--iters", "1", "--warmup", "0", "-o", out,
                  "--json"], capsys)
    assert r.code == 0, r.err
    printed = json.loads(r.out)
    assert printed == json.loads(out.read_text())
    assert printed["model"] == "bicubic" and printed["throughput_batch"] == 2 and printed["device"] == "cpu"


def test_list_table(capsys, monkeypatch):  # moved from tests/models/test_registry.py
    monkeypatch.setenv("COLUMNS", "200")
    r = run_main(["models", "list"], capsys)
    assert r.code == 0, r.err
    for name in ("unet_light", "sparnet_light", "ufvnet", "mrrgan_d", "7,306,371", "any→128", "[-1, 1]"):
        assert name in r.out
