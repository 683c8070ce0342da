"""Issue 11 item 10: every known bad input is one line (exit 1) or a usage error (exit 2), never a traceback.

Each row is a case found by hand; ``{tiny}`` is a synthetic store, ``{built}`` a store built from faces,
``{faces}`` a faces folder, ``{run}`` a trained run, ``{tmp}`` a fresh folder holding the helper files made
by :func:`_files`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.commands.conftest import assert_one_line, run_main

_TRAIN = ["train", "--store", "{tiny}", "--preset", "seed000-bicubic", "--out", "{tmp}/run", "--no-pretrained",
          "--set", "loss.perceptual=0", "--set", "loss.lpips=0", "--set", "val.lpips=false"]
_PREPARE = ["data", "prepare", "--dataset", "folder", "--root", "{faces}", "--store", "{tmp}/new.zarr",
            "--crop", "landmarks", "--scheduler", "sync"]

#: (id, argv, exit code, text the message must contain)
CASES = [
    ("train-device", [*_TRAIN, "--device", "tpu9"], 2, "tpu9"),
    ("eval-device", ["eval", "--pred", "{faces}", "--gt", "{faces}", "--device", "tpu9"], 2, "tpu9"),
    ("sr-device", ["sr", "{faces}", "-o", "{tmp}/o", "--checkpoint", "{run}", "--device", "tpu9"], 2, "tpu9"),
    ("profile-device", ["models", "profile", "bicubic", "--device", "tpu9"], 2, "tpu9"),
    ("lr-negative", [*_TRAIN, "--set", "optim.lr=-1", "--max-steps", "1"], 1, "optim.lr"),
    ("lr-nan", [*_TRAIN, "--set", "optim.lr=nan", "--max-steps", "1"], 1, "optim.lr"),
    ("lr-inf-show-config", ["train", "--preset", "seed000-bicubic", "--show-config", "--set", "optim.lr=.inf"], 1,
     "optim.lr"),
    ("batch-zero", [*_TRAIN, "--set", "data.batch_size=0", "--max-steps", "1"], 1, "data.batch_size"),
    ("model-args-negative", [*_TRAIN, "--set", "model.name=unet_light", "--set", "model.args={{base_channels: -3}}",
                             "--max-steps", "1", "--device", "cpu"], 1, "base_channels"),
    ("priors-show-n", ["priors", "show", "{built}", "-n", "-5"], 2, "-n"),
    ("data-show-n", ["data", "show", "{built}", "-n", "0"], 2, "-n"),
    ("binary-split-file", [*_PREPARE, "--split-file", "{tmp}/binary.txt"], 1, "not a text file"),
    ("split-lines-match-nothing", [*_PREPARE, "--split-file", "{tmp}/unmatched.txt"], 1, "nomatch.png"),
    ("profile-lr-size", ["models", "profile", "unet_light", "--lr-size", "100000"], 2, "--lr-size"),
    ("workers-negative", [*_PREPARE, "--workers", "-3"], 2, "--workers"),
    ("build-workers-negative", ["priors", "build", "--store", "{tmp}/b.zarr", "--workers", "-3"], 2, "--workers"),
    ("chunk-zero", [*_PREPARE, "--chunk", "0"], 2, "--chunk"),
    ("max-steps-zero", [*_TRAIN, "--max-steps", "0"], 2, "--max-steps"),
    ("max-steps-negative", [*_TRAIN, "--max-steps", "-5"], 2, "--max-steps"),
    ("epochs-negative", [*_TRAIN, "--epochs", "-1"], 2, "--epochs"),
    ("max-minutes-nan", [*_TRAIN, "--max-minutes", "nan"], 2, "--max-minutes"),
    ("demo-faces", ["demo", "--faces", "-3", "-o", "{tmp}/demo"], 2, "--faces"),
    ("lr-larger-than-hr", [*_PREPARE, "--lr", "bicubic-pil:256"], 2, "256"),
    ("lr-huge", [*_PREPARE, "--lr", "bicubic-pil:100000"], 2, "100000"),
    ("lr-unknown-method", [*_PREPARE, "--lr", "lanczos:16"], 2, "lanczos"),
    ("priors-show-absent-split", ["priors", "show", "{built}", "--split", "test", "-o", "{tmp}/g.png"], 1, "'test'"),
    ("data-show-absent-split", ["data", "show", "{built}", "--split", "test", "-o", "{tmp}/g.png"], 1, "test"),
    ("preset-file-missing", ["train", "--store", "{tiny}", "--preset", "./nope.yaml", "--out", "{tmp}/r"], 2,
     "file not found"),
    ("store-is-a-file-info", ["data", "info", "{tmp}/afile.txt"], 1, "afile.txt"),
    ("store-is-a-file-info-opt", ["data", "info", "--store", "{tmp}/afile.txt"], 1, "afile.txt"),
    ("store-is-a-file-status", ["priors", "status", "--store", "{tmp}/afile.txt"], 1, "afile.txt"),
    ("store-is-a-file-verify", ["priors", "verify", "{tmp}/afile.txt"], 1, "afile.txt"),
    ("store-is-a-file-show", ["priors", "show", "{tmp}/afile.txt", "-o", "{tmp}/g.png"], 1, "afile.txt"),
    ("store-is-a-file-train", [*_TRAIN[:2], "{tmp}/afile.txt", *_TRAIN[3:], "--max-steps", "1"], 1, "afile.txt"),
    ("store-is-a-file-build", ["priors", "build", "--store", "{tmp}/afile.txt"], 1, "afile.txt"),
    ("two-stores", ["data", "info", "{tiny}", "--store", "{built}"], 2, "two stores"),
    ("no-store", ["priors", "verify"], 2, "STORE"),
    ("truncated-prediction", ["eval", "--pred", "{tmp}/pred", "--gt", "{tmp}/gt"], 1, "a.png"),
    ("junk-bisenet", ["priors", "build", "--dataset", "folder", "--root", "{faces}", "--store", "{tmp}/bs.zarr",
                      "--crop", "landmarks", "--parser", "bisenet", "--weights-dir", "{tmp}/weights",
                      "--scheduler", "sync"], 1, "parsing_bisenet.pth"),
    ("weights-dir-is-a-file", ["priors", "build", "--store", "{built}", "--weights-dir", "{tmp}/afile.txt"], 2,
     "--weights-dir"),
    ("eval-no-source", ["eval"], 1, "nothing to evaluate"),
    ("eval-unknown-protocol", ["eval", "--pred", "{faces}", "--gt", "{faces}", "-p", "matlab"], 1, "matlab"),
    ("sr-missing-input", ["sr", "{tmp}/nope.png", "-o", "{tmp}/o", "--checkpoint", "{run}"], 1, "nope.png"),
    ("sr-scale", ["sr", "{faces}", "-o", "{tmp}/o", "--checkpoint", "{run}", "--scale", "99"], 1, "--scale"),
    ("profile-unknown-model", ["models", "profile", "nosuchnet"], 1, "nosuchnet"),
    ("unknown-scheduler", [*_PREPARE, "--scheduler", "carrier-pigeon"], 1, "carrier-pigeon"),
]


def _files(tmp: Path, faces: Path) -> None:
    from facesr.data.images import read_image, write_png

    (tmp / "afile.txt").write_text("hello\n")
    (tmp / "binary.txt").write_bytes(bytes(np.random.default_rng(0).integers(128, 256, 300, dtype=np.uint8)))
    (tmp / "unmatched.txt").write_text("nomatch.png train\nastronaut_000.png val\n")
    for d in ("pred", "gt", "weights"):
        (tmp / d).mkdir()
    img = read_image(faces / "astronaut_000.png")[:128, :128]
    write_png(tmp / "gt" / "a.png", img)
    write_png(tmp / "pred" / "a.png", img)
    data = (tmp / "pred" / "a.png").read_bytes()
    (tmp / "pred" / "a.png").write_bytes(data[: len(data) // 3])  # truncated
    (tmp / "weights" / "parsing_bisenet.pth").write_bytes(b"junk, not a state dict\n")


@pytest.mark.parametrize(("argv", "code", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_known_bad_input_is_one_line(argv, code, text, tmp_path, monkeypatch, capsys, request):
    fills = {"tmp": tmp_path}
    for key, fixture in (("tiny", "tiny_store"), ("built", "built_store"), ("faces", "faces_dir"), ("run", "tiny_run")):
        if any("{" + key + "}" in a for a in argv):
            fills[key] = request.getfixturevalue(fixture)
    if "faces" in fills or any("{tmp}" in a for a in argv):
        _files(tmp_path, fills.get("faces") or request.getfixturevalue("faces_dir"))
    monkeypatch.chdir(tmp_path)
    r = run_main([a.format(**fills) for a in argv], capsys)
    assert_one_line(r, code, contains=text)


def test_case_count():
    """The report quotes this number: how many hand-found bad inputs the suite tries."""
    assert len(CASES) == len({c[0] for c in CASES}) >= 40
