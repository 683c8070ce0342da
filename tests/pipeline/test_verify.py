"""``verify_store`` on hand-made stores: each rule of its docstring, one flaw at a time."""

from __future__ import annotations

import numpy as np
import pytest

from facesr.data import schema
from facesr.data.store import FaceStore
from facesr.pipeline.verify import verify_store
from facesr.priors.boxes import CLASS_ID

N, S = 8, 128


def _good_store(path, *, priors=True, failed=()):
    """N usable faces (one failed per index in ``failed``): a bright HR, landmarks, an eye box with the heatmap
    peak inside it, a parsing map with skin."""
    fs = FaceStore.create(path, ids=[f"{i:03d}" for i in range(N)], splits=["train"] * 6 + ["val"] * 2, chunk=4)
    hr = np.full((N, S, S, 3), 120, np.uint8)
    fail = np.array(["" if i not in failed else "cannot decode" for i in range(N)])
    hr[list(failed)] = 0
    fs.write(schema.HR, 0, hr)
    fs.write(schema.FAILURE, 0, fail)
    lr = fs.require(schema.lr("bicubic-pil:16"))
    lr[:] = np.where(fail[:, None, None, None] == "", 120, 0).astype(np.uint8) * np.ones((1, 16, 16, 3), np.uint8)
    if not priors:
        return fs
    lm = np.tile(np.linspace(30, 90, 68 * 2, dtype=np.float32).reshape(1, 68, 2), (N, 1, 1))
    lm[list(failed)] = np.nan
    fs.require(schema.LANDMARKS)[:] = lm
    boxes = np.full((N, 4, 6), np.nan, np.float32)
    boxes[:, 0] = [40, 40, 60, 60, 1.0, CLASS_ID["eye"]]
    boxes[list(failed)] = np.nan
    fs.require(schema.BOXES, boxes=4)[:] = boxes
    heat = np.zeros((N, S, S), np.float16)
    heat[:, 50, 50] = 1.0
    heat[list(failed)] = 0
    fs.require(schema.HEATMAP)[:] = heat
    par = np.zeros((N, S, S), np.uint8)
    par[:, 30:100, 30:100] = 1
    par[list(failed)] = 0
    fs.require(schema.PARSING)[:] = par
    return fs


def test_a_good_store_passes_with_its_statistics(tmp_path):
    v = verify_store(_good_store(tmp_path / "g.zarr"))
    assert v["ok"] and not v["errors"] and not v["warnings"], v
    st = v["stats"]
    assert st["usable"] == N and st["usable_share"] == 1.0 and st["heatmap_argmax_on_parts"] == 1.0
    assert st["lr"] == [schema.lr("bicubic-pil:16").name] and st["landmarks_coverage"] == 1.0


def test_a_data_only_store_expects_no_priors(tmp_path):
    assert verify_store(_good_store(tmp_path / "d.zarr", priors=False))["ok"]


@pytest.mark.parametrize(
    "flaw, message",
    [
        (lambda fs: fs.write(schema.HEATMAP, 0, np.full((1, S, S), np.nan, np.float16)), "maps contain NaN"),
        (lambda fs: fs.write(schema.HEATMAP, 0, np.full((1, S, S), 2.0, np.float16)), "outside [0, 1]"),
        (lambda fs: fs.write(schema.PARSING, 0, np.full((1, S, S), 9, np.uint8)), "class ids >= 6"),
        (lambda fs: fs.write(schema.BOXES, 0, np.array([[[0, 0, 500, 10, 1, 0]] * 4], np.float32)),
         "boxes outside the image"),
        (lambda fs: fs.write(schema.HR, 0, np.zeros((1, S, S, 3), np.uint8)), "usable samples are all black"),
        (lambda fs: fs.write(schema.LANDMARKS, 0, np.full((1, 68, 2), 900, np.float32)), "far outside"),
        (lambda fs: fs.delete(schema.PARSING), "missing array"),
    ],
)
def test_each_flaw_is_an_error(tmp_path, flaw, message):
    fs = _good_store(tmp_path / "f.zarr")
    flaw(fs)
    v = verify_store(fs)
    assert not v["ok"] and any(message in e for e in v["errors"]), v["errors"]


def test_landmarks_on_a_failed_sample_are_an_error(tmp_path):
    fs = _good_store(tmp_path / "l.zarr", failed=(3,))
    fs.write(schema.LANDMARKS, 3, np.ones((1, 68, 2), np.float32))
    v = verify_store(fs, min_usable=0.5)
    assert any("failed samples have landmarks" in e for e in v["errors"])


def test_missing_detections_are_warnings_and_strict_fails_on_them(tmp_path):
    fs = _good_store(tmp_path / "w.zarr")
    fs.write(schema.BOXES, 0, np.full((2, 4, 6), np.nan, np.float32))
    v = verify_store(fs)
    assert v["ok"] and any("without part boxes" in w for w in v["warnings"]) and v["no_boxes"] == ["000", "001"]
    assert not verify_store(fs, strict=True)["ok"]


def test_usable_share_threshold_and_strict(tmp_path):
    fs = _good_store(tmp_path / "u.zarr", failed=(1,))  # 7 of 8 usable: 87.5 %
    v = verify_store(fs)
    assert not v["ok"] and "only 7 of 8 samples are usable (87.5%; below the 90% threshold)" in v["errors"][-1]
    assert "cannot decode" in v["errors"][-1]  # the most common reason is named
    assert verify_store(fs, min_usable=0.85)["ok"]
    assert not verify_store(fs, min_usable=0.85, strict=True)["ok"]


def test_uncommitted_chunks_are_an_error(tmp_path):
    from facesr.pipeline.graph import plan_build
    from facesr.pipeline.lock import Ledger
    from facesr.pipeline.options import BuildOptions

    fs = _good_store(tmp_path / "c.zarr")
    plan = plan_build(BuildOptions(crop="aligned", priors=False, lr=("bicubic-pil:16",)), {"n": N})
    led = Ledger(tmp_path / "c.zarr")
    led.mark("crop", plan["crop"].key, 0)
    led.mark("crop", plan["crop"].key, 1)
    led.mark(plan.names()[2], plan[plan.names()[2]].key, 0)
    v = verify_store(fs, plan=plan, ledger=led)
    assert not v["ok"] and any("1 of 2 chunks not built" in e for e in v["errors"]), v["errors"]
