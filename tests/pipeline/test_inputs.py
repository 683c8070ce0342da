"""Inputs: hostile and tiny images become recorded failures, the dataset is never destroyed, verify means it,
``--limit`` keeps the splits, ``pairs`` keeps its HR and LR files as given, paths reach workers absolute."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facesr.cli import app
from facesr.data.images import read_image, write_png
from facesr.data.store import FaceStore
from facesr.errors import ConfigError, StoreError
from facesr.pipeline.build import build_store, prepare_store
from facesr.pipeline.options import BuildOptions, RunOptions, SourceSpec
from facesr.pipeline.verify import verify_store

from ..data.test_images import _bomb_png

SYNC = RunOptions(scheduler="sync", workers=1)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """8 demo faces plus a 30000×30000 PNG, a 1×1, a 4000×1 and a 20×200 image, all listed as val."""
    from facesr.demo import make_demo_faces

    root = make_demo_faces(tmp_path_factory.mktemp("hostile"), n=8, seed=2)
    _bomb_png(root / "bomb.png")
    for name, shape in (("dot", (1, 1)), ("line", (1, 4000)), ("strip", (20, 200))):
        write_png(root / f"{name}.png", np.full((*shape, 3), 128, np.uint8))
    with open(root / "splits.txt", "a") as f:
        f.write("".join(f"{n}.png val\n" for n in ("bomb", "dot", "line", "strip")))
    return root


def _src(root, **kw):
    return SourceSpec("folder", root, {"split_file": str(Path(root) / "splits.txt")}, **kw)


@pytest.fixture(scope="module")
def hostile_store(hostile, tmp_path_factory):
    store = tmp_path_factory.mktemp("hs") / "h.zarr"
    prepare_store(store, BuildOptions(crop="resize", chunk=4), source=_src(hostile), run=SYNC)
    return store


def test_hostile_and_tiny_images_are_failures_with_their_reason(hostile_store):
    fs = FaceStore.open(hostile_store)
    reasons = dict(zip(fs.ids.tolist(), fs.failures().tolist()))
    assert "over the pixel limit" in reasons["bomb"]
    assert "1x1, under the 32 px minimum side" in reasons["dot"]
    assert "4000x1, under the 32 px minimum side" in reasons["line"]
    assert "200x20, under the 32 px minimum side" in reasons["strip"]
    assert sum(r == "" for r in reasons.values()) == 8
    assert fs.read("hr", fs.ids.tolist().index("bomb")).max() == 0


def test_limits_are_options_and_enter_the_crop_key(hostile, hostile_store, tmp_path):
    store = tmp_path / "loose.zarr"
    prepare_store(store, BuildOptions(crop="resize", chunk=4, min_side=1), source=_src(hostile), run=SYNC)
    fs = FaceStore.open(store)
    reasons = dict(zip(fs.ids.tolist(), fs.failures().tolist()))
    assert reasons["dot"] == reasons["line"] == "" and "pixel limit" in reasons["bomb"]
    key = FaceStore.open(hostile_store).attrs["pipeline"]["crop"]["key"]
    assert fs.attrs["pipeline"]["crop"]["key"] != key


def test_verify_fails_below_the_usable_share_and_strict_on_any_failure(hostile_store):
    fs = FaceStore.open(hostile_store)
    v = verify_store(fs)  # 8 of 12 usable: 66.7 % < 90 %
    assert not v["ok"] and any("only 8 of 12 samples are usable" in e for e in v["errors"])
    assert v["stats"]["usable_share"] == round(8 / 12, 4)
    assert verify_store(fs, min_usable=0.6)["ok"]
    strict = verify_store(fs, min_usable=0.6, strict=True)
    assert not strict["ok"] and any("--strict" in e for e in strict["errors"])
    runner = CliRunner()
    res = runner.invoke(app, ["priors", "verify", str(hostile_store)])
    assert res.exit_code == 1 and "FAIL" in res.output, res.output
    assert runner.invoke(app, ["priors", "verify", str(hostile_store), "--min-usable", "0.6"]).exit_code == 0
    strict_cli = runner.invoke(app, ["priors", "verify", str(hostile_store), "--min-usable", "0.6", "--strict"])
    assert strict_cli.exit_code == 1


def test_every_sample_failed_is_a_fail(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    for i in range(3):
        write_png(root / f"{i}.png", np.zeros((8, 8, 3), np.uint8))
    store = tmp_path / "b.zarr"
    prepare_store(store, BuildOptions(crop="resize"), source=SourceSpec("folder", root), run=SYNC)
    v = verify_store(FaceStore.open(store))
    assert not v["ok"] and "only 0 of 3" in v["errors"][-1]


# ------------------------------------------------------------------------------ never destroy input


def _main(argv, capsys) -> tuple[int, str]:
    """``facesr ARGV`` through the real entry point (its error table included): (exit code, stderr)."""
    from facesr.cli import main

    capsys.readouterr()
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    return code, capsys.readouterr().err


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["equal", "inside", "containing"])
def test_store_overlapping_the_dataset_is_refused_and_the_dataset_survives(tmp_path, where, capsys):
    from facesr.demo import make_demo_faces

    top = tmp_path / "top"
    root = make_demo_faces(top / "faces", n=8, seed=0)
    before = _files(top)
    store = {"equal": root, "inside": root / "s.zarr", "containing": top}[where]
    with pytest.raises(ConfigError, match="dataset folder"):
        build_store(store, BuildOptions(crop="resize"), source=SourceSpec("folder", root),
                    run=RunOptions(scheduler="sync", overwrite=True))
    assert _files(top) == before
    code, err = _main(["data", "prepare", "--dataset", "folder", "--root", root, "--store", store, "--crop", "resize",
                       "--overwrite"], capsys)
    assert code == 1 and "Traceback" not in err and "error: " in err and "dataset folder" in err, err
    assert _files(top) == before


def test_overwrite_replaces_only_a_facesr_store(tmp_path):
    from facesr.demo import make_demo_faces

    root = make_demo_faces(tmp_path / "faces", n=8, seed=0)
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("years of work")
    with pytest.raises(StoreError, match="not a facesr store"):
        build_store(other, BuildOptions(crop="resize", priors=False), source=SourceSpec("folder", root),
                    run=RunOptions(scheduler="sync", overwrite=True, verify=False))
    assert (other / "thesis.tex").read_text() == "years of work"
    store = tmp_path / "s.zarr"
    src = SourceSpec("folder", root)
    prepare_store(store, BuildOptions(crop="resize"), source=src, run=SYNC)
    rep = prepare_store(store, BuildOptions(crop="resize"), source=src,
                        run=RunOptions(scheduler="sync", overwrite=True))
    assert rep.stages["crop"]["rows"] == 8  # replaced and rebuilt


# ------------------------------------------------------------------------------ limit, pairs, paths


def test_limit_keeps_the_split_proportions(tmp_path):
    from facesr.demo import make_demo_faces

    root = make_demo_faces(tmp_path / "faces", n=20, seed=0)  # the demo lists its last quarter as val
    store = tmp_path / "l.zarr"
    prepare_store(store, BuildOptions(crop="resize"), source=_src(root, limit=8), run=SYNC)
    splits = FaceStore.open(store).splits.tolist()
    full = [ln.split()[1] for ln in (root / "splits.txt").read_text().split("\n") if ln.strip()]
    expect = {s: round(8 * full.count(s) / len(full)) for s in set(full)}
    assert {s: splits.count(s) for s in set(splits)} == expect and len(splits) == 8


def test_pairs_keep_hr_and_lr_files_as_given(dic_root, tmp_path):
    """The DIC set: the default crop keeps its 128×128 HR bit for bit, its LR folder becomes
    ``lr/bicubic-pil_16`` (checked bit for bit against degrading the HR: equal)."""
    store = tmp_path / "dic.zarr"
    rep = prepare_store(store, BuildOptions(chunk=8), source=SourceSpec("pairs", dic_root, limit=16), run=SYNC)
    fs = FaceStore.open(store)
    assert fs.attrs["pipeline"]["crop"]["config"]["method"] == "resize"
    assert "degrade/bicubic-pil_16" not in fs.attrs["pipeline"]
    for i, sid in enumerate(fs.ids.tolist()):
        assert np.array_equal(fs.read("hr", i), read_image(dic_root / "HR" / f"{sid}.png")), sid
        assert np.array_equal(fs.read("lr/bicubic-pil_16", i), read_image(dic_root / "LR" / f"{sid}.png")), sid
    assert rep.checks == {"lr_files_differ": 0}
    assert fs.array("lr/bicubic-pil_16").attrs["lr_files"]["differ_from_spec"] == 0
    again = tmp_path / "dic2.zarr"  # --lr of the files' size names them; another size is degraded as usual
    rep = prepare_store(again, BuildOptions(chunk=8, lr=("bicubic-pil:16", "bicubic-pil:32")),
                        source=SourceSpec("pairs", dic_root, limit=16), run=SYNC)
    fs2 = FaceStore.open(again)
    assert np.array_equal(fs2.read("lr/bicubic-pil_16"), fs.read("lr/bicubic-pil_16"))
    assert "degrade/bicubic-pil_32" in fs2.attrs["pipeline"] and rep.checks == {"lr_files_differ": 0}


def test_pairs_lr_files_that_are_not_the_spec_are_kept_and_counted(tmp_path):
    from facesr.data.degrade import degrade

    root = tmp_path / "p"
    rng = np.random.default_rng(0)
    for i in range(4):
        hr = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
        write_png(root / "HR" / f"{i}.png", hr)
        write_png(root / "LR" / f"{i}.png", degrade(hr, "bicubic-matlab:16") if i else degrade(hr, "bicubic-pil:16"))
    store = tmp_path / "p.zarr"
    rep = prepare_store(store, BuildOptions(), source=SourceSpec("pairs", root), run=SYNC)
    fs = FaceStore.open(store)
    for i, sid in enumerate(fs.ids.tolist()):
        assert np.array_equal(fs.read("lr/bicubic-pil_16", i), read_image(root / "LR" / f"{sid}.png"))
    assert rep.checks == {"lr_files_differ": 3}


def test_chunk_tasks_and_absolute_paths(tmp_path, monkeypatch):
    from facesr.demo import make_demo_faces
    from facesr.pipeline.reconcile import reconcile
    from facesr.pipeline.tasks import Records, task_graph

    make_demo_faces(tmp_path / "faces", n=8, seed=0)
    monkeypatch.chdir(tmp_path)
    src = SourceSpec("folder", "faces").resolved()
    assert Path(src.root).is_absolute()
    run = RunOptions(scheduler="sync").resolved()

    class Quiet:
        def message(self, text):
            pass

    rc = reconcile(str(Path("s.zarr").absolute()), BuildOptions(crop="resize", priors=False, lr=("bicubic-pil:16",)),
                   src, run, Quiet())
    dsk, keys = task_graph(str(Path("s.zarr").absolute()), rc.plan, rc.pending, rc.fs.chunk_slices(), rc.records)
    # one task per chunk, running its stages in plan order; nothing travels between tasks
    assert keys == [("chunk", i) for i in range(len(rc.fs.chunk_slices()))] and set(dsk) == set(keys)
    for t in dsk.values():
        assert not t.dependencies
        store_path, steps = t.args[0], t.args[1].value
        assert Path(store_path).is_absolute()
        assert [st.name for st, _, _ in steps] == ["crop", "degrade/bicubic-pil_16"]
        records = steps[0][2]
        assert isinstance(records, Records) and all(Path(r["path"]).is_absolute() for r in records.value)
        assert [d.name for d in steps[1][1]] == ["crop"] and steps[1][2] is None
