"""``facesr demo``: its options and its --json/-q rendering (the full demo runs in tests/test_demo*.py)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.commands.conftest import run_main


class _Ctx:
    timings = {"faces": 0.1, "store": 1.0}
    summaries = {"faces": "8 faces", "store": "8 samples"}
    made = {"store": Path("d/store.zarr")}
    next_steps = ["facesr data info d/store.zarr"]


def test_json_and_quiet(monkeypatch, capsys, tmp_path):
    calls = []

    def fake(out, **kw):
        calls.append(kw)
        kw["on_step"]("faces", "8 faces", 0.1)
        return _Ctx()

    monkeypatch.setattr("facesr.demo.run_demo", fake)
    r = run_main(["demo", "-o", tmp_path, "--faces", "8", "--json"], capsys)
    assert r.code == 0, r.err
    assert json.loads(r.out)["made"] == {"store": "d/store.zarr"} and calls[0]["n_faces"] == 8
    r = run_main(["demo", "-o", tmp_path, "-q"], capsys)
    assert r.code == 0 and "✓" not in r.out and "next:" not in r.out and "done in" in r.out
    r = run_main(["demo", "-o", tmp_path], capsys)
    assert "✓ faces" in r.out and "next:" in r.out and "facesr priors show" in r.out
