"""`facesr sr`: tiny LR crops, a one-face photo, a composed group photo (every face found and written),
a face-less image (exit 1, the others still written), and --json."""

from __future__ import annotations

import json

import numpy as np

from facesr.data.images import read_image, write_png
from tests.commands.conftest import run_main
from tests.train.test_photo import group_photo


def test_sr_tiny_photo_group_and_no_face(tmp_path, tiny_run, astronaut_face, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(1)
    write_png(src / "tiny.png", rng.integers(0, 255, (16, 16, 3), dtype=np.uint8))
    write_png(src / "astronaut.png", astronaut_face)
    frame, placed = group_photo(astronaut_face)
    write_png(src / "group.png", frame)
    write_png(src / "noface.png", np.full((80, 80, 3), 127, np.uint8))
    out = tmp_path / "out"
    r = run_main(["sr", src, "-o", out, "--checkpoint", tiny_run, "--json"], capsys)
    assert r.code == 1, r.err  # the face-less image failed, the others were written
    records = {rec["input"].rsplit("/", 1)[-1]: rec for rec in json.loads(r.out)}  # stdout is JSON only
    assert set(records) == {"tiny.png", "astronaut.png", "group.png", "noface.png"}
    assert records["tiny.png"]["kind"] == "lr_face" and read_image(out / "tiny_sr.png").shape == (128, 128, 3)
    assert "no face found" in records["noface.png"]["error"] and not (out / "noface_sr.png").exists()
    one = records["astronaut.png"]
    assert one["kind"] == "photo" and len(one["faces"]) == 1
    group = records["group.png"]
    assert len(group["faces"]) == len(placed) == 3
    assert read_image(out / "group_sr.png").shape[:2] == (200 * group["scale"], 320 * group["scale"])
    for face in group["faces"]:
        l, t, rr, b = face["box"]
        assert 0 <= l < rr <= 320 and 0 <= t < b <= 200
        assert np.asarray(face["landmarks"]).shape == (68, 2) and face["scale"] == group["scale"]
        assert read_image(face["sr"]).shape == (128, 128, 3) and read_image(face["lr"]).shape == (16, 16, 3)
    assert sorted(p.name for p in out.glob("group_face*")) == [
        "group_face0.png", "group_face0_lr.png", "group_face1.png", "group_face1_lr.png", "group_face2.png",
        "group_face2_lr.png"]


def test_sr_max_faces_and_detector_option(tmp_path, tiny_run, astronaut_face, capsys):
    frame, _ = group_photo(astronaut_face)
    write_png(tmp_path / "group.png", frame)
    out = tmp_path / "out"
    r = run_main(["sr", tmp_path / "group.png", "-o", out, "--checkpoint", tiny_run, "--detector", "hog",
                  "--max-faces", "2", "--json"], capsys)
    assert r.code == 0, r.err
    (rec,) = json.loads(r.out)
    assert len(rec["faces"]) == 2 and all(f["detector"] == "hog" for f in rec["faces"])
    assert not (out / "group_face2.png").exists()
    r = run_main(["sr", tmp_path / "group.png", "-o", out, "--checkpoint", tiny_run, "--detector", "dnn"], capsys)
    assert r.code == 1 and "unknown face detector" in r.err and "Traceback" not in r.err
