"""The stage functions one by one (pure per-chunk functions, no store), and the providers they build."""

from __future__ import annotations

import inspect
import threading

import cv2
import numpy as np
import pytest

from facesr.data import schema
from facesr.data.images import write_png
from facesr.pipeline import stages
from facesr.pipeline.providers import factory, needs_weights, provider, provider_config
from facesr.pipeline.stages import Output, Stage, run_chunk

F = schema.FAILURE.name


@pytest.fixture(scope="module")
def face128(astronaut_face):
    return np.ascontiguousarray(cv2.resize(astronaut_face, (128, 128), interpolation=cv2.INTER_AREA))


@pytest.fixture(scope="module")
def chunk(face128):
    """Three rows: a face, a failed sample (zeros), the face mirrored."""
    hr = np.stack([face128, np.zeros_like(face128), face128[:, ::-1]])
    return {schema.HR.name: hr, F: np.array(["", "cannot decode x", ""])}


def _crop_config(method="resize", **read):
    return {"method": method, "size": 128, "options": {}, "read": {"max_pixels": 50_000_000, "min_side": 32, **read}}


def test_crop_records_each_bad_file_and_never_raises(tmp_path, face128):
    write_png(tmp_path / "ok.png", face128)
    write_png(tmp_path / "tiny.png", face128[:20, :20])
    (tmp_path / "junk.png").write_bytes(b"junk" * 20)
    recs = [{"path": str(tmp_path / n), "meta": {}} for n in ("ok.png", "tiny.png", "junk.png", "missing.png")]
    out = stages.crop_chunk({}, _crop_config(), records=recs)
    fail = out[F].tolist()
    assert fail[0] == "" and np.array_equal(out[schema.HR.name][0], face128)  # resize at 128 is the identity
    assert "20x20, under the 32 px" in fail[1] and "cannot decode" in fail[2] and "does not exist" in fail[3]
    assert out[schema.HR.name][1:].max() == 0 and out[schema.HR.name].dtype == np.uint8
    assert schema.LANDMARKS.name not in out
    loose = stages.crop_chunk({}, _crop_config(min_side=1), records=recs[:2])
    assert loose[F].tolist() == ["", ""]


def test_degrade_matches_degrade_and_zeroes_failures(chunk):
    from facesr.data.degrade import degrade

    cfg = {"spec": "bicubic-pil:16", "array": schema.lr("bicubic-pil:16").name, "size": 16}
    lr = stages.degrade_chunk(chunk, cfg)[cfg["array"]]
    assert lr.shape == (3, 16, 16, 3) and lr[1].max() == 0
    assert np.array_equal(lr[0], degrade(chunk[schema.HR.name][0], "bicubic-pil:16"))


def test_landmarks_detect_heatmap_parse_chain(chunk):
    from facesr.priors.heatmap import get_params

    lo = {"upsample": 1, "fallback": "center"}
    lm = stages.landmarks_chunk(chunk, {"name": "dlib68", "options": lo})[schema.LANDMARKS.name]
    assert lm.shape == (3, 68, 2) and np.isfinite(lm[[0, 2]]).all() and np.isnan(lm[1]).all()
    inputs = {**chunk, schema.LANDMARKS.name: lm}
    boxes = stages.detect_chunk(inputs, {"name": "landmarks", "options": {}, "max_k": 16})[schema.BOXES.name]
    assert boxes.shape == (3, 16, 6) and np.isnan(boxes[1]).all() and (~np.isnan(boxes[0]).any(axis=1)).sum() >= 8
    params = get_params("paper").to_dict()
    heat = stages.heatmap_chunk({schema.HR.name: chunk[schema.HR.name], schema.BOXES.name: boxes},
                                {"preset": "paper", "params": params})[schema.HEATMAP.name]
    assert heat.dtype == np.float16 and heat.shape == (3, 128, 128)
    assert heat[1].max() == 0 and 0 < heat[0].max() <= 1 and heat.min() >= 0
    par = stages.parse_chunk(inputs, {"name": "landmarks", "options": {}})[schema.PARSING.name]
    assert par.dtype == np.uint8 and par[1].max() == 0 and set(np.unique(par[0])) >= {0, 1, 3, 5}


def test_run_chunk_calls_the_stage_callable_with_its_weights_dir():
    seen = {}

    def fn(inputs, config, *, records=None, weights_dir=None):
        seen.update(inputs=dict(inputs), config=dict(config), records=records, weights_dir=weights_dir)
        return {"x": np.zeros(2)}

    st = Stage("probe", fn, config={"a": 1}, outputs=(Output(schema.HR, (1,)),), weights_dir="/w")
    out, seconds = run_chunk(st, {"hr": 1}, records=[{"path": "p"}])
    assert list(out) == ["x"] and seconds >= 0 and st.per_chunk and not Stage("ingest").per_chunk
    assert seen == {"inputs": {"hr": 1}, "config": {"a": 1}, "records": [{"path": "p"}], "weights_dir": "/w"}
    assert "_runtime" not in seen["config"]  # nothing rides inside the hashed config


# ------------------------------------------------------------------------------------------ providers


def test_providers_declare_needs_weights_and_random_variants_are_registry_entries():
    assert needs_weights("detector", "yoloworld") and needs_weights("parser", "bisenet")
    assert needs_weights("landmarker", "dlib68")
    for kind, name in (("detector", "landmarks"), ("detector", "yoloworld-random"), ("parser", "landmarks"),
                       ("parser", "bisenet-random")):
        assert not needs_weights(kind, name), (kind, name)
    for kind, name in (("detector", "yoloworld"), ("detector", "yoloworld-random"), ("parser", "bisenet"),
                       ("parser", "bisenet-random")):
        params = inspect.signature(factory(kind, name)).parameters
        assert not [p for p in params if p.startswith("_")], (name, list(params))  # no private test arguments


def test_random_parser_builds_offline_and_names_its_seed(tmp_path):
    cfg = provider_config("parser", "bisenet-random", {"seed": 3, "size": 64, "device": "cpu"}, str(tmp_path))
    assert cfg["name"] == "bisenet-random" and cfg["weights"] == "random:3"
    p = provider("parser", "bisenet-random", {"seed": 3, "size": 64, "device": "cpu"}, str(tmp_path))
    assert not hasattr(p, "weights_dir") or p.weights_dir is None  # it needs none, so it got none


def test_weights_dir_reaches_only_providers_that_need_it(tmp_path):
    from facesr.errors import WeightsMissingError

    with pytest.raises(WeightsMissingError, match=str(tmp_path)):
        provider("parser", "bisenet", {}, str(tmp_path))


def test_provider_cache_is_per_thread():
    a = provider("detector", "landmarks", {"ears": True})
    assert provider("detector", "landmarks", {"ears": True}) is a
    assert provider("detector", "landmarks", {"ears": False}) is not a
    other = []
    t = threading.Thread(target=lambda: other.append(provider("detector", "landmarks", {"ears": True})))
    t.start()
    t.join()
    assert other[0] is not a and other[0].config() == a.config()


def test_unknown_provider_names_a_close_match():
    from facesr.errors import ConfigError

    with pytest.raises(ConfigError, match="yolowrld") as exc:
        factory("detector", "yolowrld")
    assert "yoloworld" in exc.value.hint
    with pytest.raises(ConfigError, match="unknown landmarker"):
        factory("landmarker", "mediapipe")
