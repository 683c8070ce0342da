"""Property: every command, driven with generated bad arguments, exits 1 (one error line) or 2 (usage), never with
a traceback and never 0.

Each command gets *anchors*, arguments that make the invocation wrong whatever else is drawn (a store that is
not a store, an unknown model, an out-of-range count), plus up to four of its other options, picked from the
command's own click parameters, with values from :data:`BAD_VALUES` (negative, zero, huge, non-finite, empty,
non-ASCII, over-long text; paths that are missing, a text file, an empty folder, a binary file). Keeping the
anchors means no example ever starts real work, so a few dozen examples per command run in seconds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.main import get_command

from facesr.cli import app
from tests.commands.conftest import assert_one_line, run_main

#: examples per command (FACESR_FUZZ_EXAMPLES=200 for a long hunt); fixed examples unless FACESR_FUZZ_RANDOM=1
EXAMPLES = int(os.environ.get("FACESR_FUZZ_EXAMPLES", "25"))
RANDOM = os.environ.get("FACESR_FUZZ_RANDOM") == "1"

BAD_PATHS = ["nope.zarr", "afile.txt", "emptydir", "blob.bin", "emptydir/nope/deeper.zarr", "s3:/bucket"]
BAD_VALUES = ["-1", "0", "-5", "-1000000000", "1000000000000", "nan", "inf", "-inf", "1e999", "", "abc", "ü∂ƒ",
              "x" * 300, "--", "-", "3.5", "0x10", *BAD_PATHS]

#: command path → anchors (always present); options listed here are not drawn again
ANCHORS: dict[tuple[str, ...], list[list[str]]] = {
    ("data", "prepare"): [["--dataset", "nosuchset", "--root", "emptydir", "--store", "new.zarr"],
                          ["--dataset", "folder", "--root", "nope", "--store", "new.zarr"]],
    ("data", "info"): [[p] for p in BAD_PATHS],
    ("data", "show"): [[p] for p in BAD_PATHS],
    ("priors", "build"): [["--store", p] for p in BAD_PATHS],
    ("priors", "status"): [[p] for p in BAD_PATHS],
    ("priors", "verify"): [["--store", p] for p in BAD_PATHS],
    ("priors", "show"): [[p] for p in BAD_PATHS],
    ("models", "list"): [["--bogus"], ["extra-argument"]],
    ("models", "profile"): [["nosuchnet"], ["unet_light", "--lr-size", "100000"], ["unet_light", "--batch", "0"]],
    ("train",): [["--store", p, "--preset", "seed000-bicubic", "--out", "run"] for p in BAD_PATHS]
    + [["--store", "nope.zarr", "--preset", "./nope.yaml", "--out", "run"], ["--out", "run", "--resume"]],
    ("eval",): [["--pred", "nope", "--gt", "emptydir"], ["--checkpoint", "nope", "--store", "nope.zarr"],
                ["--pred", "emptydir", "--gt", "emptydir"]],
    ("sr",): [["nope.png", "-o", "out", "--checkpoint", "nope"], ["emptydir", "-o", "out", "--checkpoint", "emptydir"]],
    ("demo",): [["--faces", v, "-o", "demo"] for v in ("-3", "0", "7", "100000", "abc")],
}
#: never drawn: they end the command before the anchors matter, or ask for the traceback (--debug)
SKIP = {"--debug", "--help", "-h", "--list-presets", "--show-config", "--install-completion", "--show-completion", "--version"}


def _commands(cmd, path=()):
    if hasattr(cmd, "commands"):
        out = {}
        for name, sub in cmd.commands.items():
            out.update(_commands(sub, (*path, name)))
        return out
    return {path: cmd}


COMMANDS = _commands(get_command(app))


def _drawable(path):
    taken = {a for anchor in ANCHORS[path] for a in anchor if a.startswith("-")}
    out = []
    for p in COMMANDS[path].params:
        if p.param_type_name != "option":
            continue
        name = max(p.opts, key=len)
        if SKIP & set(p.opts) or taken & set(p.opts):
            continue
        out.append((name, bool(p.is_flag)))
    return out


if ("export",) in COMMANDS:  # `facesr export RUN --format F -o PATH` (models owner): a run that is not one
    ANCHORS[("export",)] = [["nope_run", "-o", "model.onnx"], ["emptydir", "-o", "model.onnx"],
                            ["afile.txt", "-o", "model.onnx"]]


def test_every_command_is_fuzzed():
    assert set(ANCHORS) == set(COMMANDS)


@pytest.fixture()
def playground(tmp_path, monkeypatch):
    (tmp_path / "afile.txt").write_text("not a store\n")
    (tmp_path / "emptydir").mkdir()
    (tmp_path / "blob.bin").write_bytes(os.urandom(256))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FACESR_DEBUG", raising=False)
    return tmp_path


@pytest.mark.parametrize("path", sorted(ANCHORS), ids=" ".join)
@settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_bad_arguments_never_trace(path, data, playground, capsys):
    argv = [*path, *data.draw(st.sampled_from(ANCHORS[path]), label="anchor")]
    options = _drawable(path)
    if options:
        chosen = data.draw(st.lists(st.sampled_from(options), max_size=4, unique=True), label="options")
        for name, is_flag in chosen:
            argv += [name] if is_flag else [name, data.draw(st.sampled_from(BAD_VALUES), label=name)]
    r = run_main(argv, capsys)
    assert_one_line(r, (1, 2))


# ------------------------------------------------------------------ the same property on real stores and runs
GOOD_VALUES = ["train", "val", "test", "1", "2", "16", "bicubic-pil:16", "bicubic-pil_16", "bicubic-pil:32", "dic",
               "rgb", "msssim", "regions", "best", "last", "auto", "cpu", "0.5", "landmarks", "aligned", "paper",
               "released", "yoloworld", "bisenet"]
SETS = ["optim.lr=-1", "optim.lr=nan", "data.batch_size=abc", "data.batch_size=0", "model.args={x: 1}",
        "model.args=[1, 2]", "foo=1", "=", "optim", "loss.l1=[1, 2]", "epochs=1e999", "model.name=nosuchnet",
        "device=tpu9", "amp=maybe", "data.lr=bicubic-pil_999", "val.protocol=matlab", "optim.lr=1e-3"]

#: command → (argv with {placeholders}, options that may be added with values from the pools)
REAL = {
    "data info": (["data", "info", "{built}"], ["--reasons", "--json", "-q"]),
    "data show": (["data", "show", "{built}", "-o", "g.png"], ["-n", "--split", "--seed", "--lr", "--per-row"]),
    "priors show": (["priors", "show", "{built}", "-o", "g.png"], ["-n", "--split", "--seed"]),
    "priors verify": (["priors", "verify", "{built}"], ["--min-usable", "--strict", "--json"]),
    "eval": (["eval", "--checkpoint", "{run}", "--store", "{tiny}"], ["--split", "-p", "-e", "--device"]),
    "sr": (["sr", "lr", "-o", "out", "--checkpoint", "{run}"], ["--which", "--scale", "--device"]),
    "models profile": (["models", "profile", "bicubic", "--iters", "1", "--warmup", "0"], ["--batch", "--lr-size"]),
    "train show-config": (["train", "--preset", "seed000-bicubic", "--show-config"], ["--set", "--epochs",
                                                                                     "--max-steps", "--device"]),
    # a private copy of the built store (a valid draw may add an LR set to it): resumes, re-verifies, or refuses
    "priors build": (["priors", "build", "--store", "{copy}", "--scheduler", "sync", "-q"],
                     ["--lr", "--crop", "--detector", "--parser", "--heatmap", "--min-usable", "--strict", "--limit",
                      "--weights-dir", "--json"]),
}
_FLAGS = {"--json", "-q", "--strict"}


@pytest.mark.parametrize("name", sorted(REAL))
@settings(max_examples=max(EXAMPLES * 3 // 5, 1), deadline=None, derandomize=not RANDOM, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_real_targets_never_trace(name, data, playground, capsys, request):
    """On a real store/run, generated values may be valid (exit 0) or not (1 or 2); never a traceback."""
    base, opts = REAL[name]
    fills = {}
    for key, fixture in (("built", "built_store"), ("tiny", "tiny_store"), ("run", "tiny_run")):
        if any("{" + key + "}" in a for a in base):
            fills[key] = request.getfixturevalue(fixture)
    if name == "sr" and not (playground / "lr").exists():
        from facesr.data.images import write_png

        write_png(playground / "lr" / "a.png", np.full((16, 16, 3), 100, np.uint8))
    if any("{copy}" in a for a in base) and not (playground / "copy.zarr").exists():
        import shutil

        built = request.getfixturevalue("built_store")
        shutil.copytree(built, playground / "copy.zarr")
        if Path(str(built) + ".facesr").exists():
            shutil.copytree(str(built) + ".facesr", playground / "copy.zarr.facesr")
    fills["copy"] = "copy.zarr"
    argv = [a.format(**fills) for a in base]
    pool = st.sampled_from(GOOD_VALUES + BAD_VALUES + (SETS if name == "train show-config" else []))
    for opt in data.draw(st.lists(st.sampled_from(opts), max_size=3, unique=True), label="options"):
        argv += [opt] if opt in _FLAGS else [opt, data.draw(pool, label=opt)]
    r = run_main(argv, capsys)
    assert_one_line(r, (0, 1, 2))
