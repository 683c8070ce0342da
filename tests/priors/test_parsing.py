"""Face parsers (BiSeNet plumbing on random weights, landmark polygons) and the W-Net helpers."""

from __future__ import annotations

import json
import pickle

import cv2
import numpy as np
import pytest

from facesr.errors import ConfigError, WeightsMissingError
from facesr.priors.parsing import (
    BISENET_PARAMS,
    BISENET_TO_FACESR,
    IMAGENET_MEAN,
    IMAGENET_STD,
    PARSERS,
    PARSING_CLASSES,
    BiSeNetParser,
    RandomBiSeNetParser,
    binary_skin,
    component_masks,
    lr_parsing,
    parse_from_landmarks,
)

torch = pytest.importorskip("torch")


def test_classes_and_mapping():
    assert PARSING_CLASSES == ("other", "skin", "eyebrows", "eyes", "nose", "mouth")
    want = {1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 10: 4, 11: 5, 12: 5, 13: 5}
    assert BISENET_TO_FACESR.tolist() == [want.get(i, 0) for i in range(19)]
    assert {"bisenet", "landmarks"} <= set(PARSERS.names())


# ------------------------------------------------------------------------------ BiSeNet


class _StripeNet(torch.nn.Module):
    """Stands in for BiSeNet: records its input, returns one-hot logits with label = column // (W/19)."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x.detach().clone())
        b, _, h, w = x.shape
        labels = (torch.arange(w) * 19 // w).clamp(max=18)
        logits = torch.nn.functional.one_hot(labels, 19).T.float()[None, :, None, :].expand(b, 19, h, w)
        return logits, None, None


def test_bisenet_mapping_resize_and_normalisation():
    net = _StripeNet()
    parser = BiSeNetParser(model=net, size=64, device="cpu")
    imgs = np.zeros((2, 40, 76, 3), np.uint8)
    imgs[..., 0] = 255  # pure red, RGB
    out = parser.parse(imgs)
    assert out.shape == (2, 40, 76) and out.dtype == np.uint8
    # the network saw 64x64, ImageNet-normalised RGB
    x = net.seen[0]
    assert x.shape == (2, 3, 64, 64)
    np.testing.assert_allclose(x[0, :, 5, 5].numpy(),
                               [(1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], -IMAGENET_MEAN[1] / IMAGENET_STD[1],
                                -IMAGENET_MEAN[2] / IMAGENET_STD[2]], atol=1e-5)
    # labels are the 19-class stripes mapped to facesr ids, resized back with nearest
    labels64 = (np.arange(64) * 19 // 64).clip(max=18)
    want = BISENET_TO_FACESR[labels64][np.floor(np.arange(76) * 64 / 76).astype(int)]
    np.testing.assert_array_equal(out[0], np.broadcast_to(want, (40, 76)))
    assert set(np.unique(out)) == set(range(6))


@pytest.fixture(scope="module")
def bisenet():
    p = RandomBiSeNetParser(seed=0, size=64, device="cpu", batch=2)
    p.model
    return p


def test_bisenet_random_param_count(bisenet):
    assert sum(p.numel() for p in bisenet.model.parameters()) == BISENET_PARAMS == 13_300_416


def test_bisenet_batch_equals_single(bisenet, astronaut_face):
    img = cv2.resize(astronaut_face, (48, 48), interpolation=cv2.INTER_AREA)
    imgs = np.stack([img, img[::-1].copy(), 255 - img])
    batched = bisenet.parse(imgs)  # batches of 2 + 1
    single = np.stack([bisenet.parse(imgs[i : i + 1])[0] for i in range(3)])
    assert batched.shape == (3, 48, 48) and batched.dtype == np.uint8 and batched.max() <= 5
    assert (batched == single).mean() > 0.999
    # the logits themselves agree
    np.testing.assert_allclose(bisenet.logits(imgs[:2])[1].numpy(), bisenet.logits(imgs[1:2])[0].numpy(), atol=1e-3)


def test_bisenet_config_pickle_and_errors(bisenet, tmp_path):
    cfg = bisenet.config()
    json.dumps(cfg)
    assert cfg["weights"] == "random:0" and cfg["size"] == 64
    clone = pickle.loads(pickle.dumps(bisenet))
    assert clone._model is None and clone.config() == cfg
    with pytest.raises(WeightsMissingError) as info:
        BiSeNetParser(weights_dir=tmp_path)
    assert "parsing_bisenet.pth" in str(info.value) and "landmarks" in info.value.hint
    with pytest.raises(ConfigError):
        RandomBiSeNetParser(seed=0, size=500)


def test_bisenet_loads_a_local_state_dict(bisenet, tmp_path):
    torch.save(bisenet.model.state_dict(), tmp_path / "parsing_bisenet.pth")
    p = PARSERS.build("bisenet", weights_dir=tmp_path, size=64, device="cpu")
    assert p.config()["weights"] == "parsing_bisenet.pth" and p.config()["weights_sha256_16"]
    x = np.random.default_rng(0).integers(0, 255, (1, 40, 40, 3), dtype=np.uint8)
    np.testing.assert_array_equal(p.parse(x), bisenet.parse(x))


# ------------------------------------------------------------------------------ landmarks parser


def test_landmark_parser(face_and_points):
    img, pts = face_and_points
    parser = PARSERS.build("landmarks")
    lm = np.stack([pts, np.full((68, 2), np.nan, np.float32)])
    out = parser.parse(np.stack([img, img]), lm)
    assert out.shape == (2, 150, 128) and out.dtype == np.uint8
    assert not out[1].any()
    cm = out[0]
    assert set(np.unique(cm)) == set(range(6))

    def at(p):
        return cm[int(round(p[1])), int(round(p[0]))]

    assert at(pts[36:42].mean(0)) == 3 and at(pts[42:48].mean(0)) == 3
    assert at(pts[19]) == 2 and at(pts[24]) == 2
    assert at(pts[30]) == 4 or at(pts[29]) == 4
    assert at(pts[62]) == 5 and at(pts[66]) == 5
    assert at((pts[3] + pts[48]) / 2) == 1  # cheek
    assert cm[0, 0] == 0
    np.testing.assert_array_equal(cm, parse_from_landmarks(pts, 150, 128))
    json.dumps(parser.config())
    with pytest.raises(ConfigError):
        parser.parse(np.stack([img]), None)


# ------------------------------------------------------------------------------ W-Net helpers


def test_binary_skin_and_components():
    cm = np.array([[0, 1, 2], [3, 4, 5]], np.uint8)
    b = binary_skin(cm)
    assert b.dtype == np.float32 and b.tolist() == [[0, 1, 0], [0, 0, 0]]
    masks = component_masks(cm)
    assert list(masks) == ["eyebrows", "eyes", "nose", "mouth"]
    assert [int(np.argwhere(m.ravel())[0, 0]) for m in masks.values()] == [2, 3, 4, 5]
    assert all(m.dtype == bool and m.sum() == 1 for m in masks.values())


@pytest.mark.parametrize("method", ["bicubic-pil", "bicubic-matlab", "cv2-cubic"])
def test_lr_parsing(method):
    hr = np.zeros((128, 128), np.float32)
    hr[:, 64:] = 1
    lr = lr_parsing(hr, 16, method)
    assert lr.shape == (16, 16) and lr.dtype == np.float32
    assert lr.min() >= 0 and lr.max() <= 1  # bicubic overshoot clipped
    assert lr[:, :7].max() < 0.1 and lr[:, 9:].min() > 0.9
    assert lr_parsing(np.ones((128, 128)), (32, 16), method).shape == (32, 16)
    np.testing.assert_allclose(lr_parsing(np.ones((128, 128)), 16, method), 1.0, atol=1e-6)
    batch = lr_parsing(np.stack([hr, 1 - hr]), 16, method)
    assert batch.shape == (2, 16, 16)
    np.testing.assert_allclose(batch[0], lr, atol=1e-6)


def test_lr_parsing_methods_agree_where_they_should():
    rng = np.random.default_rng(0)
    hr = (cv2.GaussianBlur(rng.random((128, 128)).astype(np.float32), (0, 0), 6) > 0.5).astype(np.float32)
    pil, mat = lr_parsing(hr, 16), lr_parsing(hr, 16, "bicubic-matlab")
    np.testing.assert_allclose(pil[2:-2, 2:-2], mat[2:-2, 2:-2], atol=1e-4)  # same filter; borders differ
    assert 0 < ((pil > 0.02) & (pil < 0.98)).mean()  # soft edges, unlike a nearest sample
    with pytest.raises(ConfigError):
        lr_parsing(hr, 16, "bilinear")


@pytest.mark.gpu
def test_bisenet_cuda_matches_cpu(bisenet):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    x = np.random.default_rng(1).integers(0, 255, (2, 48, 48, 3), dtype=np.uint8)
    gpu = RandomBiSeNetParser(seed=0, size=64, device="cuda:0")
    assert (gpu.parse(x) == bisenet.parse(x)).mean() > 0.99
