"""Augmentation keeps HR, LR, heatmap, parsing and landmarks consistent, and is deterministic per sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facesr.data.augment import (MIRROR_68, AugmentConfig, augment_batch, flip_maps, from_config,
                                 sample_transforms)
from facesr.data.degrade import resize
from facesr.errors import ConfigError

S, LR = 32, 8


def _faces(n: int = 6, seed: int = 0):
    """Synthetic faces: a textured background, a dark blob per sample, 68 points on bright pixels."""
    rng = np.random.default_rng(seed)
    hr = rng.integers(60, 160, (n, S, S, 3), dtype=np.uint8)
    pts = np.zeros((n, 68, 2), np.float32)
    blob = np.zeros((n, 2), int)
    for i in range(n):
        bx, by = rng.integers(6, S - 6, 2)
        blob[i] = bx, by
        hr[i, by - 1 : by + 2, bx - 1 : bx + 2] = 0
        pts[i] = rng.integers(2, S - 2, (68, 2))
        hr[i, pts[i, :, 1].astype(int), pts[i, :, 0].astype(int)] = 255
    yy, xx = np.mgrid[0:S, 0:S]
    heat = np.stack([np.exp(-((xx - bx) ** 2 + (yy - by) ** 2) / 6.0) for bx, by in blob]).astype(np.float32)
    parsing = np.zeros((n, S, S), np.uint8)
    for i, (bx, by) in enumerate(blob):
        parsing[i, by - 3 : by + 4, bx - 3 : bx + 4] = 3  # "eyes" around the blob
    lr = np.stack([resize(h, (LR, LR), "bicubic-pil") for h in hr])
    return hr, lr, heat, parsing, pts


def _float_batch(hr, lr, heat, parsing, pts, ids=None):
    def img(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2).float().mul_(1 / 255)

    return {"hr": img(hr), "lr": img(lr), "heatmap": torch.from_numpy(heat)[:, None],
            "parsing": torch.from_numpy(parsing).long(), "landmarks": torch.from_numpy(pts),
            "index": torch.arange(len(hr)) if ids is None else torch.as_tensor(ids)}


def _u8(t):  # float NCHW → uint8 NHWC
    return (t * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def test_mirror_permutation():
    m = np.array(MIRROR_68)
    assert sorted(m) == list(range(68)) and (m[m] == np.arange(68)).all()  # a permutation and an involution
    assert m[36] == 45 and m[45] == 36 and m[0] == 16 and m[48] == 54 and m[30] == 30 and m[62] == 62


def test_hflip_moves_everything_together():
    hr, lr, heat, parsing, pts = _faces()
    b = _float_batch(hr, lr, heat, parsing, pts)
    out = augment_batch(b, AugmentConfig(hflip=1.0), seed=0, epoch=0)
    np.testing.assert_array_equal(_u8(out["hr"]), hr[:, :, ::-1])
    np.testing.assert_array_equal(_u8(out["lr"]), lr[:, :, ::-1])
    torch.testing.assert_close(out["heatmap"], b["heatmap"].flip(-1))
    torch.testing.assert_close(out["parsing"], b["parsing"].flip(-1))
    lm = out["landmarks"].numpy()
    assert lm[0, 36, 0] == pytest.approx(S - 1 - pts[0, 45, 0]) and lm[0, 36, 1] == pytest.approx(pts[0, 45, 1])
    assert lm[0, 45, 0] == pytest.approx(S - 1 - pts[0, 36, 0])
    assert b["hr"].equal(torch.from_numpy(hr).permute(0, 3, 1, 2).float().mul_(1 / 255))  # input untouched


@pytest.mark.parametrize("cfg", [AugmentConfig(hflip=0.5, rot90=True),
                                 AugmentConfig(hflip=0.5, rot90=True, rescale=(1.0, 1.3)),
                                 AugmentConfig(rescale=(0.8, 1.2)),
                                 AugmentConfig(rescale=(1.2, 1.5), rescale_mode="zoom")])
def test_priors_and_landmarks_follow_their_image(cfg):
    hr, lr, heat, parsing, pts = _faces(12)
    out = augment_batch(_float_batch(hr, lr, heat, parsing, pts), cfg, seed=3, epoch=1)
    img = _u8(out["hr"]).astype(int).sum(-1)
    exact = not cfg.rescale
    trs = sample_transforms(cfg, 3, 1, range(len(hr)), S)
    assert any(t.rescaled for t in trs) != exact
    for i in range(len(hr)):
        # the heatmap's argmax sits on the image's dark blob; the parsing "eyes" region covers it
        y, x = np.unravel_index(int(out["heatmap"][i, 0].argmax()), (S, S))
        x0, y0, w, h = trs[i].dst  # (a shrunk face sits on black: look inside it; no flips in that config)
        dark = np.unravel_index(int(img[i][y0 + 1 : y0 + h - 1, x0 + 1 : x0 + w - 1].argmin()), (h - 2, w - 2))
        dark = (dark[0] + y0 + 1, dark[1] + x0 + 1)
        assert abs(y - dark[0]) <= 1 and abs(x - dark[1]) <= 1, (i, (y, x), dark)
        assert out["parsing"][i, dark[0], dark[1]] == 3
        # landmarks land on bright pixels (exactly under flips; within a pixel after a rescale)
        lm = out["landmarks"][i].numpy()
        inside = (lm >= 0).all(1) & (lm <= S - 1).all(1)
        xs, ys = np.clip(np.round(lm[inside]).astype(int), 0, S - 1).T
        bright = img[i][ys, xs] if exact else np.array([img[i][max(0, yy - 1):yy + 2, max(0, xx - 1):xx + 2].max()
                                                        for xx, yy in zip(xs, ys, strict=True)])
        assert (bright >= (765 if exact else 400)).mean() >= (1.0 if exact else 0.9)


def test_rot90_gives_the_eight_dihedral_transforms():
    trs = sample_transforms(AugmentConfig(hflip=0.5, rot90=True), 0, 0, range(400), S)
    kinds = {(t.hflip, t.vflip, t.transpose) for t in trs}
    assert len(kinds) == 8
    x = torch.arange(2 * S * S).reshape(2, S, S)
    t = torch.tensor([True, False])
    f = torch.tensor([False, False])
    np.testing.assert_array_equal(flip_maps(x, f, f, t, (1, 2))[0], x[0].T)
    np.testing.assert_array_equal(flip_maps(x, f, f, t, (1, 2))[1], x[1])


def test_lr_remade_exactly_and_unchanged_at_scale_one():
    hr, lr, heat, parsing, pts = _faces()
    b = _float_batch(hr, lr, heat, parsing, pts)
    same = augment_batch(b, AugmentConfig(rescale=(1.0, 1.0)), seed=0, epoch=0)
    np.testing.assert_array_equal(_u8(same["hr"]), hr)
    np.testing.assert_array_equal(_u8(same["lr"]), np.stack([resize(h, (LR, LR), "bicubic-pil") for h in hr]))
    torch.testing.assert_close(same["heatmap"], b["heatmap"])
    out = augment_batch(b, AugmentConfig(rescale=(1.0, 1.3)), seed=0, epoch=0)
    new_hr = _u8(out["hr"])
    assert not np.array_equal(new_hr, hr)
    np.testing.assert_array_equal(_u8(out["lr"]), np.stack([resize(h, (LR, LR), "bicubic-pil") for h in new_hr]))


def test_deterministic_per_sample():
    hr, lr, heat, parsing, pts = _faces(8)
    cfg = AugmentConfig(hflip=0.5, rot90=True, rescale=(1.0, 1.3))
    b = _float_batch(hr, lr, heat, parsing, pts, ids=range(100, 108))
    a1, a2 = augment_batch(b, cfg, 7, 2), augment_batch(b, cfg, 7, 2)
    for k in ("hr", "lr", "heatmap", "parsing", "landmarks"):
        assert a1[k].equal(a2[k]), k
    assert not augment_batch(b, cfg, 7, 3)["hr"].equal(a1["hr"])  # a new epoch draws anew
    assert not augment_batch(b, cfg, 8, 2)["hr"].equal(a1["hr"])  # so does another seed
    # a sample's transform depends on (seed, epoch, id) only, not on its batch
    sub = _float_batch(hr[5:6], lr[5:6], heat[5:6], parsing[5:6], pts[5:6], ids=[105])
    assert augment_batch(sub, cfg, 7, 2)["hr"][0].equal(a1["hr"][5])


def test_raw_and_float_layouts_agree():
    hr, lr, heat, parsing, pts = _faces()
    cfg = AugmentConfig(hflip=0.5, rot90=True, rescale=(1.0, 1.3))
    f = augment_batch(_float_batch(hr, lr, heat, parsing, pts), cfg, 1, 0)
    raw = {"hr": torch.from_numpy(hr), "lr": torch.from_numpy(lr), "heatmap": torch.from_numpy(heat).half(),
           "parsing": torch.from_numpy(parsing), "index": torch.arange(len(hr))}
    r = augment_batch(raw, cfg, 1, 0)
    assert r["hr"].dtype == torch.uint8 and r["parsing"].dtype == torch.uint8 and r["heatmap"].dtype == torch.float16
    np.testing.assert_array_equal(r["hr"].numpy(), _u8(f["hr"]))
    np.testing.assert_array_equal(r["lr"].numpy(), _u8(f["lr"]))
    np.testing.assert_array_equal(r["parsing"].numpy(), f["parsing"].numpy())
    torch.testing.assert_close(r["heatmap"].float(), f["heatmap"][:, 0], atol=1e-3, rtol=0)


def test_config_errors_and_from_config():
    with pytest.raises(ConfigError):
        AugmentConfig(hflip=1.5)
    with pytest.raises(ConfigError):
        AugmentConfig(rescale=(1.3, 1.0))
    with pytest.raises(ConfigError, match="hflp") as info:
        AugmentConfig.from_dict({"hflp": 0.5})
    assert "hflip" in info.value.hint
    hr, lr, heat, parsing, pts = _faces(2)
    b = _float_batch(hr, lr, heat, parsing, pts)
    with pytest.raises(ConfigError, match="boxes"):
        augment_batch({**b, "boxes": torch.zeros(2, 4, 6)}, AugmentConfig(hflip=1.0), 0, 0)

    class TrainAugment:  # the shape of facesr.train.config.AugmentConfig
        hflip, rot90, rescale = 1.0, False, ()

    f = from_config(TrainAugment(), seed=0, lr="bicubic-pil_16")
    assert f.config.degradation == "bicubic-pil"
    assert f(b, 0)["hr"].equal(b["hr"].flip(-1))
