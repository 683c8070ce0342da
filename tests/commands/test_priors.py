"""``facesr priors build | status | verify | show``: --store beside the positional, pure --json."""

from __future__ import annotations

import json

from facesr.data.images import read_image
from tests.commands.conftest import run_main


def test_build_json_is_only_json(built_store, capsys):
    """The issue's bug: `priors build --json` printed a `next:` line after the JSON."""
    r = run_main(["priors", "build", "--store", built_store, "--scheduler", "sync", "--json"], capsys)
    assert r.code == 0, r.err
    report = json.loads(r.out)
    assert report["verify"]["ok"] is True and report["n"] == 8
    assert "next:" not in r.out


def test_build_text_has_next_and_quiet_drops_it(built_store, capsys):
    r = run_main(["priors", "build", "--store", built_store, "--scheduler", "sync"], capsys)
    assert r.code == 0 and "verify: PASS" in r.out and "next: facesr priors show" in r.out
    r = run_main(["priors", "build", "--store", built_store, "--scheduler", "sync", "-q"], capsys)
    assert r.code == 0 and "verify: PASS" in r.out and "next:" not in r.out and r.err == ""


def test_status_and_verify_take_store_either_way(built_store, capsys):
    for cmd in ("status", "verify"):
        a = run_main(["priors", cmd, built_store, "--json"], capsys)
        b = run_main(["priors", cmd, "--store", built_store, "--json"], capsys)
        assert a.code == b.code == 0, (a.err, b.err)
        assert json.loads(a.out) == json.loads(b.out)
    assert json.loads(a.out)["ok"] is True


def test_verify_thresholds(built_store, capsys):
    r = run_main(["priors", "verify", built_store, "--min-usable", "1.0", "--json"], capsys)
    assert r.code == 0 and json.loads(r.out)["ok"]
    r = run_main(["priors", "verify", built_store, "--min-usable", "1.5"], capsys)
    assert r.code == 2  # a fraction, checked by the option


def test_show(built_store, tmp_path, capsys):
    grid = tmp_path / "g.png"
    r = run_main(["priors", "show", "--store", built_store, "-n", "2", "-o", grid, "--json"], capsys)
    assert r.code == 0, r.err
    meta = json.loads(r.out)
    assert read_image(grid).shape[:2] == (meta["height"], meta["width"]) and meta["n"] == 2
    r = run_main(["priors", "show", built_store, "-n", "2", "-o", grid, "--split", "train"], capsys)
    assert r.code == 0 and "wrote" in r.out
