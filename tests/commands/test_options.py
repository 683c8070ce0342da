"""``facesr/commands/_options.py``: one name and one help text per concept, in every command."""

from __future__ import annotations

import pytest
import typer
from typer.main import get_command

from facesr.cli import app
from facesr.commands import _options as O


def _commands(cmd, path=()) -> dict:
    if hasattr(cmd, "commands"):  # a group (typer vendors its own click: no isinstance checks)
        out = {}
        for name, sub in cmd.commands.items():
            out.update(_commands(sub, (*path, name)))
        return out
    return {path: cmd}


COMMANDS = _commands(get_command(app))
_REPORTING = {("data", "prepare"), ("data", "info"), ("data", "show"), ("priors", "build"), ("priors", "status"),
              ("priors", "verify"), ("priors", "show"), ("models", "list"), ("models", "profile"), ("train",), ("eval",),
              ("sr",), ("demo",), ("export",)}


def _opts(cmd) -> dict:
    return {o: p for p in cmd.params if p.param_type_name == "option" for o in p.opts}


def test_every_command_is_walked():
    assert _REPORTING <= set(COMMANDS)


@pytest.mark.parametrize("path", sorted(_REPORTING), ids=" ".join)
def test_reporting_commands_have_json(path):
    assert "--json" in _opts(COMMANDS[path])
    assert _opts(COMMANDS[path])["--json"].is_flag  # a flag everywhere (`models profile -o FILE` writes a file)


def test_one_name_and_one_help_per_concept():
    seen: dict[str, set[str]] = {}
    for path, cmd in COMMANDS.items():
        opts = _opts(cmd)
        assert "--out" not in opts or "-o" in opts, path  # -o/--out together, always
        assert "-o" not in opts or opts["-o"] is opts["--out"], path
        for name in ("--store", "--device", "--json", "--quiet", "--workers", "--scheduler", "--weights-dir",
                     "--debug", "--chunk", "--limit", "--lr", "--split-file", "--checkpoint", "--seed",
                     "--min-usable", "--strict", "--timeout", "--max-pixels", "--min-side"):
            if name in opts and not (name == "--lr" and path == ("data", "show")):  # show picks one of the sets
                seen.setdefault(name, set()).add(opts[name].help)
    for name, helps in seen.items():
        assert len(helps) == 1, (name, helps)  # declared once, in _options.py
    assert {"--store", "--device", "--json", "--quiet", "--workers", "--weights-dir"} <= set(seen)


@pytest.mark.parametrize("path", [("train",), ("eval",), ("sr",), ("models", "profile")], ids=" ".join)
def test_device_everywhere_means_the_same(path):
    opt = _opts(COMMANDS[path])["--device"]
    assert opt.default in ("auto", None)  # train: None = the config's device, whose default is auto
    if path != ("train",):
        assert opt.default == "auto"


@pytest.mark.parametrize("path", [("data", "prepare"), ("data", "info"), ("data", "show"), ("priors", "build"),
                                  ("priors", "status"), ("priors", "verify"), ("priors", "show"), ("train",),
                                  ("eval",)], ids=" ".join)
def test_store_is_called_store(path):
    assert "--store" in _opts(COMMANDS[path])


def test_prepare_has_no_out_any_more():
    assert "--out" not in _opts(COMMANDS[("data", "prepare")])


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:1", "mps"])
def test_device_callback_accepts(value):
    assert O._device_callback(value) == value


@pytest.mark.parametrize("value", ["tpu9", "", "cuda:", "cuda:x", "CPU", "cpu;rm"])
def test_device_callback_refuses(value):
    with pytest.raises(typer.BadParameter):
        O._device_callback(value)


@pytest.mark.parametrize("value", ["bicubic-pil:16", "bicubic-pil:16,bilinear:32", "bicubic-matlab_8", "bicubic-pil:127"])
def test_lr_callback_accepts(value):
    assert O._lr_callback(value) == value


@pytest.mark.parametrize("value", ["bicubic-pil:256", "bicubic-pil:128", "bicubic-pil:100000", "bicubic-pil:0",
                                   "nearest:16", "16", "bicubic-pil:x"])
def test_lr_callback_refuses(value):
    with pytest.raises(typer.BadParameter):
        O._lr_callback(value)


def test_resolve_store():
    assert O.resolve_store("a.zarr", None) == "a.zarr" == O.resolve_store(None, "a.zarr")
    assert O.resolve_store("a.zarr", "a.zarr") == "a.zarr"
    assert O.resolve_store("s3://b/x.zarr", None) == "s3://b/x.zarr"  # a URL is kept as given
    for pos, opt in ((None, None), ("a.zarr", "b.zarr")):
        with pytest.raises(typer.BadParameter):
            O.resolve_store(pos, opt)


def test_preset_callback(tmp_path):
    assert O._preset_callback("gvtnet") == "gvtnet"  # a name: checked later by the library (close matches)
    f = tmp_path / "p.yaml"
    f.write_text("epochs: 1\n")
    assert O._preset_callback(str(f)) == str(f)
    for bad in ("./nope.yaml", str(tmp_path / "nope.yml"), "dir/nope"):
        with pytest.raises(typer.BadParameter, match="file not found"):
            O._preset_callback(bad)


def test_positive_float():
    assert O._positive_float(1.5) == 1.5 and O._positive_float(None) is None
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(typer.BadParameter):
            O._positive_float(bad)
