"""Stage keys and the DAG: what a config change invalidates."""

from __future__ import annotations

import pytest

from facesr.pipeline.graph import BuildOptions, invalidated, plan_build
from facesr.pipeline.hashing import canonical_json, digest, stage_key

INGEST = {"dataset": "unit", "records": "abc", "n": 10}
LR = {"bicubic-pil:16": ("bicubic-pil_16", 16), "bicubic-pil:32": ("bicubic-pil_32", 32)}


def test_canonical_and_keys():
    assert canonical_json({"b": 1, "a": (1, 2)}) == canonical_json({"a": [1, 2], "b": 1}) == '{"a":[1,2],"b":1}'
    assert canonical_json({"x": float("nan")}) == '{"x":"nan"}'
    assert len(digest({"a": 1})) == 16
    k = stage_key("heatmap", 1, {"preset": "paper"}, {"detect": "k1"})
    assert k == stage_key("heatmap", 1, {"preset": "paper"}, {"detect": "k1"})
    assert k != stage_key("heatmap", 2, {"preset": "paper"}, {"detect": "k1"})  # code version
    assert k != stage_key("heatmap", 1, {"preset": "released"}, {"detect": "k1"})  # config
    assert k != stage_key("heatmap", 1, {"preset": "paper"}, {"detect": "k2"})  # upstream


@pytest.fixture(scope="module")
def base():
    return plan_build(BuildOptions(lr=("bicubic-pil:16",)), INGEST, LR)


def test_plan_order_and_outputs(base):
    names = base.names()
    assert names == ["ingest", "crop", "degrade/bicubic-pil_16", "landmarks", "detect", "heatmap", "parse", "verify"]
    for s in base:
        for d in s.deps:
            assert names.index(d) < names.index(s.name)
    assert [o.name for o in base["heatmap"].outputs] == ["priors/heatmap"]
    assert base["heatmap"].outputs[0].dtype == "float16"
    assert base["detect"].config["provider"]["name"] == "landmarks"
    assert "weights_dir" not in str(base["landmarks"].config)  # where files live never enters a key


@pytest.mark.parametrize(
    "change, expect",
    [
        ({"heatmap": "released"}, ["heatmap", "verify"]),
        ({"parser_options": {"brow_frac": 0.05}}, ["parse", "verify"]),
        ({"detector_options": {"ears": True}}, ["detect", "heatmap", "verify"]),
        ({"lr": ("bicubic-pil:16", "bicubic-pil:32")}, ["degrade/bicubic-pil_32", "verify"]),
        ({"crop_options": {"crop": 170}}, ["crop", "degrade/bicubic-pil_16", "landmarks", "detect", "heatmap",
                                            "parse", "verify"]),
        ({"weights_dir": "/elsewhere"}, []),
    ],
)
def test_invalidated_is_the_changed_stage_and_downstream(base, change, expect):
    opts = BuildOptions(**{"lr": ("bicubic-pil:16",), **change})
    new = plan_build(opts, INGEST, LR)
    assert invalidated(new, base.keys()) == expect
    if expect:  # exactly the first changed stage and what depends on it
        assert new.downstream(expect[:1]) == expect


def test_landmark_crop_moves_landmarks_into_crop():
    p = plan_build(BuildOptions(crop="landmarks"), INGEST, LR)
    assert "landmarks" in [o.name for o in p["crop"].outputs]
    assert p["landmarks"].fn == "landmarks-from-crop" and not p["landmarks"].outputs
