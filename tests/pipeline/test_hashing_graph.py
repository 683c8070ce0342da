"""Stage keys and the DAG: what a config change invalidates."""

from __future__ import annotations

import pytest

from facesr.pipeline.graph import invalidated, plan_build
from facesr.pipeline.options import BuildOptions
from facesr.pipeline.hashing import canonical_json, digest, stage_key

INGEST = {"dataset": "unit", "records": "abc", "n": 10}
BASE = {"crop": "aligned", "lr": ("bicubic-pil:16",)}


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
    return plan_build(BuildOptions(**BASE), INGEST)


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
        ({"max_pixels": 10_000_000}, ["crop", "degrade/bicubic-pil_16", "landmarks", "detect", "heatmap", "parse",
                                      "verify"]),
        ({"chunk": 64}, []),  # the layout of a new store, not its content
    ],
)
def test_invalidated_is_the_changed_stage_and_downstream(base, change, expect):
    new = plan_build(BuildOptions(**{**BASE, **change}), INGEST)
    assert invalidated(new, base.keys()) == expect
    if expect:  # exactly the first changed stage and what depends on it
        assert new.downstream(expect[:1]) == expect


def test_weights_dir_never_enters_a_key(base):
    assert plan_build(BuildOptions(**BASE), INGEST, weights_dir="/elsewhere").keys() == base.keys()


def test_landmark_crop_moves_landmarks_into_crop():
    """With --crop landmarks the crop stage writes the landmarks: no landmarks stage, and detect/parse read
    them from crop (their deps are the producers of what they read)."""
    p = plan_build(BuildOptions(crop="landmarks"), INGEST)
    assert "landmarks" in [o.name for o in p["crop"].outputs]
    assert "landmarks" not in p.names()
    assert p["detect"].deps == ("crop",) and p["parse"].deps == ("crop",)
    assert p.producer("landmarks").name == "crop"


def test_deps_are_the_producers_of_what_a_stage_reads(base):
    for st in base:
        if st.per_chunk and st.name != "crop":
            assert set(st.deps) == {base.producer(r).name for r in st.reads}
    assert base["heatmap"].deps == ("crop", "detect")
    assert base["verify"].deps == tuple(s.name for s in base if s.per_chunk)
    assert callable(base["heatmap"].fn) and base["ingest"].fn is None


def test_plan_needs_a_crop_method():
    with pytest.raises(Exception, match="crop"):
        plan_build(BuildOptions(), INGEST)


def test_random_weight_providers_plan_offline_and_their_seed_enters_the_key():
    """The offline test providers are plain registry entries: no weights, no special case in the pipeline."""
    opts = {**BASE, "detector": "yoloworld-random", "parser": "bisenet-random",
            "detector_options": {"seed": 0, "imgsz": 320}, "parser_options": {"seed": 0, "size": 64}}
    p = plan_build(BuildOptions(**opts), INGEST, weights_dir="/nowhere")
    assert p["detect"].config["provider"]["weights"] == "random:0"
    assert p["detect"].config["max_k"] == 100 and p["parse"].config["provider"]["name"] == "bisenet-random"
    q = plan_build(BuildOptions(**{**opts, "detector_options": {"seed": 1, "imgsz": 320}}), INGEST)
    assert invalidated(q, p.keys()) == ["detect", "heatmap", "verify"]
