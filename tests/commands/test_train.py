"""``facesr train``: presets, --show-config, a short run with --json, and --weights-dir as a parameter."""

from __future__ import annotations

import json
import os

import yaml

from tests.commands.conftest import TINY, run_main


def _sets(*extra: str) -> list[str]:
    out = []
    for item in (*TINY, *extra):
        out += ["--set", item]
    return out


def test_list_presets(capsys):
    text = run_main(["train", "--list-presets"], capsys)
    rows = json.loads(run_main(["train", "--list-presets", "--json"], capsys).out)
    assert text.code == 0 and "seed000-bicubic" in text.out
    assert "seed000-bicubic" in rows and "gvtnet" in rows


def test_show_config_yaml_and_json(capsys):
    y = run_main(["train", "--preset", "gvtnet", "--show-config", "--set", "optim.lr=1e-3"], capsys)
    j = run_main(["train", "--preset", "gvtnet", "--show-config", "--set", "optim.lr=1e-3", "--json"], capsys)
    assert y.code == j.code == 0
    assert yaml.safe_load(y.out) == json.loads(j.out) and json.loads(j.out)["optim"]["lr"] == 1e-3


def test_device_flag_overrides_config(capsys):
    r = run_main(["train", "--preset", "gvtnet", "--show-config", "--json", "--device", "cpu"], capsys)
    assert json.loads(r.out)["device"] == "cpu"
    r = run_main(["train", "--preset", "gvtnet", "--show-config", "--json"], capsys)
    assert json.loads(r.out)["device"] == "auto"  # the default


def test_one_step_run_json(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    r = run_main(["train", "--store", tiny_store, "--preset", "seed000-bicubic", "-o", out, "--max-steps", "1",
                  "--json", *_sets()], capsys)
    assert r.code == 0, r.err
    res = json.loads(r.out)  # progress and notes went to stderr
    assert "training unet_light" in r.err
    assert res["reason"] == "budget_steps" and res["state"]["step"] == 1 and res["out"] == str(out)
    assert (out / "config.yaml").is_file()


def test_weights_dir_reaches_the_trainer_as_a_parameter(tiny_store, tmp_path, capsys, monkeypatch):
    seen = {}

    def fake_train(cfg, store, out, *, resume=False, reporter=None, weights_dir=None):
        seen.update(weights_dir=weights_dir, env=os.environ.get("FACESR_WEIGHTS"))
        raise SystemExit(0)

    monkeypatch.delenv("FACESR_WEIGHTS", raising=False)
    monkeypatch.setattr("facesr.train.trainer.train", fake_train)
    r = run_main(["train", "--store", tiny_store, "--preset", "seed000-bicubic", "-o", tmp_path / "r", "--max-steps",
                  "1", "-q", "--weights-dir", tmp_path, *_sets()], capsys)
    assert r.code == 0, r.err
    assert seen == {"weights_dir": tmp_path, "env": None}  # a parameter, never the environment


def test_no_command_sets_the_environment():
    """--weights-dir and --debug reach the library as parameters: no `os.environ[...] =` in the CLI."""
    from pathlib import Path

    import facesr.commands

    root = Path(facesr.commands.__file__).parent
    for f in [*root.glob("*.py"), root.parent / "cli.py"]:
        text = f.read_text()
        assert "os.environ[" not in text and "environ.setdefault" not in text and "putenv" not in text, f


def test_store_from_run_on_resume(tiny_store, tmp_path, capsys):
    out = tmp_path / "run"
    assert run_main(["train", "--store", tiny_store, "--preset", "seed000-bicubic", "-o", out, "--max-steps", "1",
                     "-q", *_sets()], capsys).code == 0
    r = run_main(["train", "-o", out, "--resume", "--max-steps", "2", "-q", "--json"], capsys)
    assert r.code == 0, r.err
    assert json.loads(r.out)["state"]["step"] == 2


def test_show_config_unknown_key_close_match(capsys):  # moved from tests/train/test_config.py
    r = run_main(["train", "--preset", "gvtnet", "--show-config", "--set", "optim.lrr=1"], capsys)
    assert r.code == 1 and r.lines == ["error: unknown config key 'optim.lrr'", "  hint: did you mean 'optim.lr'?"]
