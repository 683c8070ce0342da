"""``facesr export``: the three formats from a run folder, --json, one-line errors."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from facesr.cli import app
from tests._runs import make_run


def test_export_cli(tmp_path):
    make_run(tmp_path / "run", "unet_light", {"base_channels": 4, "refine_blocks": 1})
    r = CliRunner().invoke(app, ["export", str(tmp_path / "run"), "--format", "safetensors", "-o",
                                 str(tmp_path / "x" / "m.safetensors"), "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["format"] == "safetensors" and out["max_abs_diff"] == 0.0
    assert (tmp_path / "x" / "MODEL_CARD.md").is_file()
    r = CliRunner().invoke(app, ["export", str(tmp_path / "run")])  # default: onnx into RUN/export/
    assert r.exit_code == 0, r.output
    assert (tmp_path / "run" / "export" / "model.onnx").is_file() and "max |diff|" in r.stdout
    r = CliRunner().invoke(app, ["export", str(tmp_path / "run"), "--format", "tflite"])
    assert r.exit_code == 2 and "tflite" in r.output


def test_export_missing_run_is_one_line(tmp_path, capsys):
    import pytest

    from facesr.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["export", str(tmp_path / "nope")])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert "no checkpoint" in err and "Traceback" not in err
