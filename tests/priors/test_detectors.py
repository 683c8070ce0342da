"""Part detectors: landmark geometry, and YOLO-World plumbing on a random-weight model (offline, CPU)."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest

from facesr.errors import ConfigError, WeightsMissingError
from facesr.priors.boxes import CLASS_ID, PART_CLASSES
from facesr.priors.detectors import (
    DEFAULT_PROMPTS,
    DETECTORS,
    NOTEBOOK_PROMPTS,
    YOLOWORLD_EMBEDDINGS,
    YOLOWORLD_PARAMS,
    LandmarkDetector,
    RandomYoloWorldDetector,
    YoloWorldDetector,
    boxes_from_landmarks,
    load_text_embeddings,
)

# ------------------------------------------------------------------------------ landmarks


def _inside(points, box, tol=0.5):
    return bool(((points[:, 0] >= box[0] - tol) & (points[:, 0] <= box[2] + tol)
                 & (points[:, 1] >= box[1] - tol) & (points[:, 1] <= box[3] + tol)).all())


def test_landmark_boxes_geometry(face_and_points):
    img, pts = face_and_points
    h, w = img.shape[:2]
    boxes = boxes_from_landmarks(pts, h, w)
    assert boxes.dtype == np.float32 and boxes.shape[1] == 6
    names = [PART_CLASSES[int(c)] for c in boxes[:, 5]]
    assert sorted(names) == sorted(["eye", "eye", "eyebrows", "eyebrows", "nose", "nosetip", "mouth", "chin", "face",
                                    "head"])
    assert (boxes[:, 4] == 1.0).all()
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 2] <= w).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 3] <= h).all() and (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
    by = {}
    for b, n in zip(boxes, names, strict=True):
        by.setdefault(n, []).append(b)
    eyes = sorted(by["eye"], key=lambda b: b[0])
    assert _inside(pts[36:42], eyes[0]) and _inside(pts[42:48], eyes[1])
    brows = sorted(by["eyebrows"], key=lambda b: b[0])
    assert _inside(pts[17:22], brows[0]) and _inside(pts[22:27], brows[1])
    assert _inside(pts[27:36], by["nose"][0]) and _inside(pts[30:36], by["nosetip"][0])
    assert _inside(pts[48:68], by["mouth"][0]) and _inside(pts[0:27], by["face"][0])
    face, head = by["face"][0], by["head"][0]
    assert head[1] <= face[1] and head[0] <= face[0] and head[2] >= face[2]
    assert by["chin"][0][1] > by["mouth"][0][1]
    with_ears = boxes_from_landmarks(pts, h, w, ears=True)
    assert (with_ears[:, 5] == CLASS_ID["ear"]).sum() == 2


def test_landmark_detector_batch_nan_and_clip(face_and_points):
    img, pts = face_and_points
    imgs = np.stack([img, img, img])
    lm = np.stack([pts, np.full((68, 2), np.nan, np.float32), pts + np.float32([60, 0])])  # shifted off the edge
    det = DETECTORS.build("landmarks")
    out = det.detect(imgs, lm)
    assert len(out) == 3 and out[1].shape == (0, 6)
    assert (out[2][:, 2] <= img.shape[1]).all() and len(out[2]) >= 1
    np.testing.assert_array_equal(out[0], boxes_from_landmarks(pts, *img.shape[:2]))
    json.dumps(det.config())
    with pytest.raises(ConfigError):
        det.detect(imgs, None)
    with pytest.raises(ConfigError):
        det.detect(imgs, lm[:2])
    assert isinstance(det, LandmarkDetector) and det.name == "landmarks"


def test_registry():
    assert {"landmarks", "yoloworld"} <= set(DETECTORS.names())
    with pytest.raises(ConfigError):
        DETECTORS.build("yolo-world")


# ------------------------------------------------------------------------------ YOLO-World (random weights)

IMGSZ = 128


@pytest.fixture(scope="module")
def yolo():
    det = RandomYoloWorldDetector(seed=0, imgsz=IMGSZ, conf=0.01, iou=0.5, max_det=40, device="cpu")
    det.model  # build once
    return det


def _faces(n, h=96, w=128, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for _ in range(n):
        f = rng.uniform(0.05, 0.3, 3)
        img = 127 + 60 * np.sin(xx[..., None] * f + yy[..., None] * f[::-1])
        img = img + rng.normal(0, 10, (h, w, 3))
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return np.stack(out)


def test_notebook_defaults():
    """Seed 000's notebook: yolov8s-world.pt (v1) and its prompt texts in its order (``nosetip`` as one word)."""
    assert DEFAULT_PROMPTS == NOTEBOOK_PROMPTS
    assert [t for t, _ in NOTEBOOK_PROMPTS] == ["eye", "mouth", "ear", "nose", "nosetip", "face", "chin", "head",
                                                "eyebrows"]
    det = RandomYoloWorldDetector(seed=0)
    assert (det.version, det.weights_file, det.yaml_file) == ("v1", "yolov8s-world.pt", "yolov8s-world.yaml")
    assert det.config()["yoloworld"] == "v1"
    v2 = RandomYoloWorldDetector(seed=0, version="v2")
    assert v2.weights_file == "yolov8s-worldv2.pt" and v2.config() != det.config()
    with pytest.raises(ConfigError, match="version"):
        RandomYoloWorldDetector(seed=0, version="v3")


def test_random_model_param_count(yolo):
    n = sum(p.numel() for p in yolo.model.model.parameters())
    assert n == YOLOWORLD_PARAMS["v1"]
    v2 = RandomYoloWorldDetector(seed=0, version="v2", imgsz=IMGSZ, device="cpu")
    assert sum(p.numel() for p in v2.model.model.parameters()) == YOLOWORLD_PARAMS["v2"] == 12_759_880
    emb = yolo.text_embeddings()
    assert emb.shape == (len(DEFAULT_PROMPTS), 512)
    np.testing.assert_allclose(emb.norm(dim=-1).numpy(), 1.0, atol=1e-5)
    assert yolo.model.model.model[-1].nc == len(DEFAULT_PROMPTS)


def test_batch_equals_single(yolo):
    imgs = _faces(4, seed=1)
    yolo.batch = 4
    batched = yolo.detect(imgs)
    yolo.batch = 1
    single = [yolo.detect(imgs[i : i + 1])[0] for i in range(4)]
    yolo.batch = 32
    assert sum(len(b) for b in batched) > 0
    for a, b in zip(batched, single, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=1e-2)


def test_boxes_in_input_coords_non_square(yolo):
    # letterboxing a 48x64 image to imgsz 128 scales it 2x; the same content given at 96x128 (the exact
    # INTER_LINEAR resize the letterbox applies) must give the same boxes, twice as large.
    small = _faces(2, h=48, w=64, seed=2)
    big = np.stack([cv2.resize(im, (128, 96), interpolation=cv2.INTER_LINEAR) for im in small])
    bs, bb = yolo.detect(small), yolo.detect(big)
    for s, b, im in zip(bs, bb, small, strict=True):
        assert len(s) > 0 and s.dtype == np.float32 and s.shape[1] == 6
        assert (s[:, 0] >= 0).all() and (s[:, 1] >= 0).all() and (s[:, 2] <= 64).all() and (s[:, 3] <= 48).all()
        assert (s[:, 2] >= s[:, 0]).all() and (s[:, 3] >= s[:, 1]).all()
        np.testing.assert_allclose(s[:, :4] * 2, b[:, :4], atol=0.5)
        np.testing.assert_allclose(s[:, 4:], b[:, 4:], atol=1e-3)
    tall = yolo.detect(_faces(1, h=128, w=40, seed=3))[0]
    assert (tall[:, 2] <= 40).all() and (tall[:, 3] <= 128).all()


def test_class_mapping(yolo):
    imgs = _faces(2, seed=4)
    ref = yolo.detect(imgs)
    assert set(np.unique(np.concatenate(ref)[:, 5]).astype(int)) <= set(range(len(PART_CLASSES)))
    # same network, prompts in facesr's class order: model class i now means another part, but every box must
    # come back with the same facesr class id
    order = list(PART_CLASSES)
    assert order != [c for _, c in DEFAULT_PROMPTS]
    prompts = [p for name in order for p in DEFAULT_PROMPTS if p[1] == name]
    emb = yolo.text_embeddings()
    perm = [[p[1] for p in DEFAULT_PROMPTS].index(name) for name in order]
    other = YoloWorldDetector(model=yolo.model, prompts=prompts, text_embeddings=emb[perm], imgsz=IMGSZ, conf=0.01,
                              iou=0.5, max_det=40, device="cpu")
    try:
        assert other.class_map.tolist() == [CLASS_ID[n] for n in order]
        got = other.detect(imgs)
        for a, b in zip(ref, got, strict=True):
            key = lambda r: tuple(np.round(r, 2))  # noqa: E731
            np.testing.assert_allclose(sorted(a, key=key), sorted(b, key=key), atol=1e-3)
    finally:
        yolo.set_text_embeddings(emb)


def test_channel_order_is_bgr(yolo, monkeypatch):
    seen = []
    real = yolo.model.predict

    def spy(source, **kw):
        seen.append(source)
        return real(source, **kw)

    monkeypatch.setattr(yolo.model, "predict", spy)
    imgs = _faces(2, seed=5)
    imgs[..., 0] = 255  # a red image: R channel saturated
    yolo.detect(imgs)
    src = seen[0]
    assert isinstance(src, list) and len(src) == 2
    np.testing.assert_array_equal(src[0], imgs[0][..., ::-1])  # ultralytics expects BGR numpy arrays
    assert (src[1][..., 2] == 255).all()
    # ultralytics' select_device sets torch to cpu_count - 1 threads; the detector gives them back
    import os

    import torch

    assert torch.get_num_threads() == int(os.environ.get("FACESR_THREADS", os.cpu_count() or 1))


def test_config_and_pickle(yolo):
    cfg = yolo.config()
    json.dumps(cfg)
    assert cfg["weights"] == "random:0" and cfg["channel_order"] == "bgr" and cfg["imgsz"] == IMGSZ
    clone = pickle.loads(pickle.dumps(yolo))
    assert clone._model is None and clone.config() == cfg


def test_released_defaults_and_validation():
    det = RandomYoloWorldDetector(seed=1)
    assert (det.conf, det.iou, det.imgsz) == (0.001, 0.1, 640)
    with pytest.raises(ConfigError):
        RandomYoloWorldDetector(seed=1, imgsz=100)
    with pytest.raises(ConfigError):
        RandomYoloWorldDetector(seed=1, prompts=[("lips", "lips")])


def test_weights_dir_path_loads_checkpoint_and_cached_embeddings(yolo, tmp_path):
    """The production path offline: a local ``yolov8s-world.pt`` (here: the random model saved by ultralytics)
    plus the embeddings cache in the weights directory give the same boxes as the in-memory model."""
    torch = pytest.importorskip("torch")
    yolo.model.save(str(tmp_path / "yolov8s-world.pt"))
    torch.save({"prompts": [t for t, _ in DEFAULT_PROMPTS], "embeddings": yolo.text_embeddings()},
               tmp_path / YOLOWORLD_EMBEDDINGS)
    det = DETECTORS.build("yoloworld", weights_dir=tmp_path, imgsz=IMGSZ, conf=0.01, iou=0.5, max_det=40,
                          device="cpu")
    cfg = det.config()
    assert cfg["weights"] == "yolov8s-world.pt" and cfg["weights_sha256_16"]
    assert cfg["text_embeddings"].startswith("clip:ViT-B/32:")
    imgs = _faces(2, h=64, w=80, seed=7)
    for a, b in zip(yolo.detect(imgs), det.detect(imgs), strict=True):
        assert a.shape == b.shape and len(a) > 0
        # the saved file is fp16 (ultralytics' format): scores move by ~1e-4, and a random network ties many
        # boxes, which NMS may then keep in another order; the best box must agree
        np.testing.assert_allclose(a[0], b[0], atol=1e-2)
    mem, disk = yolo.model.model.state_dict(), det.model.model.state_dict()
    assert mem.keys() == disk.keys()
    for k in mem:
        torch.testing.assert_close(disk[k].float(), mem[k].float(), atol=2e-3, rtol=2e-3)
    try:
        import clip  # noqa: F401  (installed: it would compute the missing embedding)
    except ImportError:
        with pytest.raises(WeightsMissingError):  # no cached embedding and no CLIP: fails at construction
            YoloWorldDetector(weights_dir=tmp_path, prompts=[("human ear", "ear")])


def test_missing_weights_is_one_clear_error(tmp_path):
    with pytest.raises(WeightsMissingError) as info:
        YoloWorldDetector(weights_dir=tmp_path)
    assert "yolov8s-world.pt" in str(info.value) and "landmarks" in info.value.hint
    with pytest.raises(WeightsMissingError, match="yolov8s-worldv2.pt"):
        YoloWorldDetector(weights_dir=tmp_path, version="v2")


def test_text_embedding_cache(tmp_path):
    torch = pytest.importorskip("torch")
    emb = torch.randn(3, 512)
    torch.save({"prompts": ["eye", "nose", "mouth"], "embeddings": emb}, tmp_path / YOLOWORLD_EMBEDDINGS)
    got = load_text_embeddings(["mouth", "eye"], tmp_path)
    want = torch.nn.functional.normalize(emb[[2, 0]], dim=-1)
    assert torch.allclose(got, want)
    with pytest.raises(WeightsMissingError):
        load_text_embeddings(["head"], tmp_path, compute=False)
    try:
        import clip  # noqa: F401
    except ImportError:  # the usual offline case: no CLIP → one clear error naming the cache and alternative
        with pytest.raises(WeightsMissingError) as info:
            load_text_embeddings(["head"], tmp_path)
        assert YOLOWORLD_EMBEDDINGS in str(info.value) and "landmarks" in info.value.hint


@pytest.mark.gpu
def test_yoloworld_cuda_matches_cpu(yolo):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    imgs = _faces(2, seed=6)
    gpu = RandomYoloWorldDetector(seed=0, imgsz=IMGSZ, conf=0.01, iou=0.5, max_det=40, device="cuda:0")
    for a, b in zip(yolo.detect(imgs), gpu.detect(imgs), strict=True):
        assert abs(len(a) - len(b)) <= 2
        assert np.isin(b[:, 5], a[:, 5]).all()
