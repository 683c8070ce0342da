"""facesr.data.sources: layouts, splits, meta and errors, on synthetic trees and on ../shared."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from facesr.data.sources import SOURCES, Record, open_source, read_pts
from facesr.errors import ConfigError, DatasetError


def _touch(p: Path) -> Path:
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(b"not decoded by sources")
    return p


def _celeba(tmp_path: Path, image_dir="img_align_celeba", partition=True) -> Path:
    root = tmp_path / "celeba"
    ids = {"000003": 0, "000001": 0, "000002": 1, "000004": 2, "000005": 2}
    for i in ids:
        if i != "000005":  # listed but absent on disk
            _touch(root / image_dir / f"{i}.jpg")
    _touch(root / image_dir / "999999.jpg")  # on disk but not in the partition: ignored
    if partition:
        (root / "list_eval_partition.txt").write_text("".join(f"{i}.jpg {s}\n" for i, s in ids.items()))
    return root


def test_registry_names():
    assert set(SOURCES.names()) >= {"celeba", "celeba-wild", "helen", "ffhq", "folder", "pairs"}


def test_celeba_official_layout(tmp_path):
    src = open_source("celeba", _celeba(tmp_path))
    recs = src.records()
    assert [r.id for r in recs] == ["000001", "000002", "000003", "000004"]
    assert [r.split for r in recs] == ["train", "val", "train", "test"]
    assert src.missing == 1
    assert [r.id for r in src.records("train")] == ["000001", "000003"]
    assert src.splits() == {"train": 2, "val": 1, "test": 1}
    assert all(isinstance(r, Record) and r.path.is_file() and r.meta == {} for r in recs)
    cfg = src.config()
    assert cfg["source"] == "celeba" and json.loads(json.dumps(cfg)) == cfg


def test_celeba_errors(tmp_path):
    with pytest.raises(DatasetError, match="partition"):
        open_source("celeba", _celeba(tmp_path, partition=False))
    with pytest.raises(DatasetError, match="does not exist"):
        open_source("celeba", tmp_path / "nowhere")
    with pytest.raises(DatasetError) as e:
        open_source("celbea", tmp_path)
    assert "celeba" in (e.value.hint or "")
    src = open_source("celeba", _celeba(tmp_path / "b"))
    with pytest.raises(DatasetError, match="unknown split"):
        src.records("training")
    with pytest.raises(ConfigError, match="unknown option"):
        open_source("celeba", _celeba(tmp_path / "c"), split_file="x")
    (tmp_path / "d").mkdir()
    with pytest.raises(DatasetError, match="image folder"):
        open_source("celeba", tmp_path / "d")


def test_celeba_empty_split_names_what_is_there(tmp_path):
    root = _celeba(tmp_path)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 1\n")
    src = open_source("celeba", root)
    with pytest.raises(DatasetError) as e:
        src.records("test")
    assert "train" in e.value.hint and "val" in e.value.hint


def test_celeba_bad_partition_line(tmp_path):
    root = _celeba(tmp_path)
    (root / "list_eval_partition.txt").write_text("000001.jpg 7\n")
    with pytest.raises(DatasetError, match="0\\|1\\|2"):
        open_source("celeba", root)


def test_celeba_split_files_replace_the_partition(tmp_path):
    root = _celeba(tmp_path)
    (root / "list_eval_partition.txt").unlink()
    (tmp_path / "tr.txt").write_text("000001\n000002\n")
    (tmp_path / "te.txt").write_text("000004.jpg\n")
    src = open_source("celeba", root, split_files={"train": tmp_path / "tr.txt", "test": str(tmp_path / "te.txt")})
    assert src.splits() == {"train": 2, "test": 1}
    json.dumps(src.config())


def test_celeba_wild_meta(tmp_path):
    root = _celeba(tmp_path, image_dir="img_celeba")
    with pytest.raises(DatasetError, match="list_landmarks_celeba"):
        open_source("celeba-wild", root)
    (root / "list_landmarks_celeba.txt").write_text(
        "2\nlefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y\n"
        "000001.jpg    165  184  244  176  196  249  194  271  266  260\n"
        "000002.jpg 140 204 220 204 168 254 146 289 226 289\n"
    )
    (root / "list_bbox_celeba.txt").write_text(
        "2\nimage_id x_1 y_1 width height\n000001.jpg    95  71 226 313\n000003.jpg 10 20 30 40\n"
    )
    src = open_source("celeba-wild", root)
    by = {r.id: r for r in src.records()}
    assert np.asarray(by["000001"].meta["landmarks"]).shape == (5, 2)
    assert by["000001"].meta["landmarks"][0] == [165.0, 184.0]
    assert by["000001"].meta["box"] == [95.0, 71.0, 321.0, 384.0]
    assert "box" not in by["000002"].meta and "landmarks" not in by["000003"].meta
    assert by["000004"].meta == {}
    json.dumps([r.meta for r in src.records()])


def test_helen_layouts(tmp_path):
    flat = tmp_path / "flat"
    for n in ("b_1.jpg", "a_1.jpg"):
        _touch(flat / n)
    assert [(r.id, r.split) for r in open_source("helen", flat).records()] == [("a_1", "test"), ("b_1", "test")]
    assert open_source("helen", flat, split="train").splits() == {"train": 2}

    w300 = tmp_path / "300w"
    _touch(w300 / "trainset" / "t1.jpg")
    _touch(w300 / "testset" / "s1.png")
    pts = "version: 1\nn_points:  68\n{\n" + "".join(f"{10 + i}.5 {20 + i}\n" for i in range(68)) + "}\n"
    (w300 / "testset" / "s1.pts").write_text(pts)
    recs = {r.id: r for r in open_source("helen", w300).records()}
    assert recs["t1"].split == "train" and recs["s1"].split == "test"
    lm = np.asarray(recs["s1"].meta["landmarks"])
    assert lm.shape == (68, 2) and lm[0].tolist() == [9.5, 19.0]  # 1-based .pts → 0-based pixels

    official = tmp_path / "official"
    _touch(official / "helen_1" / "x_1.jpg")
    _touch(official / "helen_2" / "y_1.jpg")
    (official / "trainnames.txt").write_text("x_1\n")
    (official / "testnames.txt").write_text("y_1\n")
    assert {r.id: r.split for r in open_source("helen", official).records()} == {"x_1": "train", "y_1": "test"}


def test_read_pts_rejects_garbage(tmp_path):
    (tmp_path / "bad.pts").write_text("nothing here")
    with pytest.raises(DatasetError):
        read_pts(tmp_path / "bad.pts")


def test_ffhq_splits(tmp_path):
    root = tmp_path / "ffhq"
    for i in (0, 1, 59999, 60000, 69999):
        _touch(root / "images1024x1024" / f"{i // 1000 * 1000:05d}" / f"{i:05d}.png")
    _touch(root / "thumbnails128x128" / "00000" / "00000.png")
    src = open_source("ffhq", root)
    assert {r.id: r.split for r in src.records()} == {
        "00000": "train", "00001": "train", "59999": "train", "60000": "val", "69999": "val"
    }
    (root / "ffhq-dataset-v2.json").write_text(json.dumps({"1": {"category": "validation"}}))
    assert open_source("ffhq", root).records("val")[0].id == "00001"
    assert len(open_source("ffhq", root, variant="thumbnails128x128").records()) == 1


def test_folder_source(tmp_path):
    root = tmp_path / "photos"
    _touch(root / "a.jpg")
    _touch(root / "sub" / "b.PNG")
    _touch(root / "sub" / "notes.txt")
    _touch(root / ".hidden" / "c.jpg")
    src = open_source("folder", root)
    assert [(r.id, r.split) for r in src.records()] == [("a", "test"), ("b", "test")]
    assert open_source("folder", root, split="val").splits() == {"val": 2}
    (tmp_path / "split.txt").write_text("a.jpg train\nsub/b.PNG 1\n")
    src = open_source("folder", root, split_file=tmp_path / "split.txt")
    assert {r.id: r.split for r in src.records()} == {"a": "train", "b": "val"}
    assert src.missing == 0
    (tmp_path / "split.txt").write_text("a.jpg train\nsub/b.PNG 1\nmissing.jpg test\n")
    with pytest.raises(DatasetError, match="1 lines of .* match no image .*missing.jpg"):  # reported, not dropped
        open_source("folder", root, split_file=tmp_path / "split.txt").records()
    (tmp_path / "bad.txt").write_text("a.jpg holdout\n")
    with pytest.raises(DatasetError, match="unknown split"):
        open_source("folder", root, split_file=tmp_path / "bad.txt")
    with pytest.raises(DatasetError, match="split file"):
        open_source("folder", root, split_file=tmp_path / "none.txt")
    with pytest.raises(DatasetError, match="unknown split"):
        open_source("folder", root, split="holdout")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        open_source("folder", tmp_path / "empty").records()


def test_same_name_files_get_ids_from_their_relative_paths(tmp_path):
    root = tmp_path / "x"
    for rel in ("a/1.jpg", "b/1.jpg", "c.jpg", "d/2.jpg", "d/2.png"):
        _touch(root / rel)
    recs = open_source("folder", root).records()
    ids = {r.id: r.path.relative_to(root).as_posix() for r in recs}
    assert ids == {"a/1": "a/1.jpg", "b/1": "b/1.jpg", "c": "c.jpg", "d/2.jpg": "d/2.jpg", "d/2.png": "d/2.png"}
    assert len({r.id for r in recs}) == len(recs) == 5


def test_limit_keeps_the_split_proportions():
    from facesr.data.sources import limit_records

    recs = [Record(f"{i:04d}", Path(f"{i}.jpg"), "train" if i < 80 else ("val" if i < 90 else "test"))
            for i in range(100)]
    got = limit_records(recs, 20)
    counts = {s: sum(r.split == s for r in got) for s in ("train", "val", "test")}
    assert counts == {"train": 16, "val": 2, "test": 2} and len(got) == 20
    assert got == sorted(got, key=lambda r: r.id)  # original order, first ones of each split
    assert [r.id for r in got if r.split == "val"] == ["0080", "0081"]
    small = limit_records(recs, 3)  # every split keeps one when n allows
    assert sorted(r.split for r in small) == ["test", "train", "val"]
    assert limit_records(recs, 500) == recs


def test_pairs_source(tmp_path):
    root = tmp_path / "p"
    _touch(root / "HR" / "1.png")
    _touch(root / "LR" / "1.png")
    recs = open_source("pairs", root).records("test")
    assert recs[0].meta["lr_path"] == str(root / "LR" / "1.png")
    _touch(root / "HR" / "2.png")
    with pytest.raises(DatasetError, match="no LR image"):
        open_source("pairs", root).records()
    with pytest.raises(DatasetError, match="LR folder"):
        open_source("pairs", root, lr="LRx8")


@pytest.mark.shared
def test_shared_celeba(celeba_root):
    src = open_source("celeba", celeba_root)
    assert src.splits() == {"train": 4560, "val": 780}
    assert src.missing == 0
    with pytest.raises(DatasetError):
        src.records("test")  # CelebA's test partition is deliberately absent
    ids = [r.id for r in src.records("train")]
    assert ids == sorted(ids)


@pytest.mark.shared
def test_shared_helen_and_dic(helen_root, dic_root):
    assert open_source("helen", helen_root).splits() == {"test": 62}
    recs = open_source("pairs", dic_root).records("test")
    assert len(recs) == 1000 and recs[0].id == "201418"
    assert all(Path(r.meta["lr_path"]).name == r.path.name for r in recs)
