"""Losses: hand-computed small cases, a naive loop for the heatmap loss, gradients, frozen trunks."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from facesr.train import losses as L


@pytest.fixture(autouse=True)
def _no_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("FACESR_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))


def test_registry_names():
    assert {"mse", "l1", "heatmap_l1", "vgg_perceptual", "lpips", "parsing_mse", "key_region", "wnet", "rahinge_g",
            "rahinge_d", "ufvnet_weight_ce", "ufvnet", "seed000"} <= set(L.LOSSES.names())


def test_pixel_losses_hand_computed():
    sr = torch.tensor([[[[0.0, 0.5], [1.0, 0.25]]]])
    hr = torch.zeros_like(sr)
    assert L.LOSSES.build("mse")(sr, hr).item() == pytest.approx((0.25 + 1 + 0.0625) / 4)
    assert L.LOSSES.build("l1")(sr, hr).item() == pytest.approx(1.75 / 4)


def test_heatmap_weights_hand_computed():
    hm = torch.tensor([[[2.0, 3.0, 4.0]]])  # min-max → 0, 0.5, 1
    w = L.heatmap_weights(hm)
    want = [0.1, 0.1 + 0.9 * 0.5**1.3, 1.0]
    assert w.shape == (1, 1, 1, 3)
    assert w.flatten().tolist() == pytest.approx(want)
    assert torch.equal(L.heatmap_weights(torch.full((1, 4, 4), 0.3)), torch.ones(1, 1, 4, 4))  # flat → uniform


def _naive_heatmap_l1(sr, hr, hm, gamma=1.3, floor=0.1):
    total = 0.0
    for i in range(sr.shape[0]):
        h = hm[i].tolist()
        flat = [v for row in h for v in row]
        lo, hi = min(flat), max(flat)
        num = den = 0.0
        for y in range(sr.shape[2]):
            for x in range(sr.shape[3]):
                n = (h[y][x] - lo) / (hi - lo) if hi - lo > 1e-8 else 1.0
                w = floor + (1 - floor) * n**gamma
                for c in range(sr.shape[1]):
                    num += w * abs(sr[i, c, y, x].item() - hr[i, c, y, x].item())
                    den += w
        total += num / den
    return total / sr.shape[0]


def test_heatmap_l1_equals_naive_loop_and_grad():
    torch.manual_seed(0)
    sr = torch.rand(3, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    hr = torch.rand(3, 3, 5, 4, dtype=torch.float64)
    hm = torch.rand(3, 5, 4, dtype=torch.float64, requires_grad=True)
    hm.data[1] = 0.7  # a flat map (no detection)
    got = L.LOSSES.build("heatmap_l1")(sr, hr, hm)
    assert got.item() == pytest.approx(_naive_heatmap_l1(sr.detach(), hr, hm.detach()), rel=1e-12)
    got.backward()
    assert sr.grad.abs().sum() > 0 and hm.grad is None  # weights are detached


def test_lpips_loss_frozen_and_differentiable():
    loss = L.LOSSES.build("lpips", net="alex", pnet_rand=True)
    hr = torch.rand(2, 3, 32, 32)
    assert loss(hr, hr).item() == pytest.approx(0.0, abs=1e-6)
    sr = torch.rand(2, 3, 32, 32, requires_grad=True)
    loss(sr, hr).backward()
    assert sr.grad.abs().sum() > 0 and not any(p.requires_grad for p in loss.parameters())


def test_parsing_and_key_region_hand_computed():
    sr = torch.zeros(1, 3, 4, 4)
    hr = torch.zeros(1, 3, 4, 4)
    classes = torch.zeros(1, 4, 4, dtype=torch.long)
    classes[0, 0, :2] = 3  # eyes, 2 px
    classes[0, 3, :] = 5  # mouth, 4 px
    sr[0, :, 0, 0] = 1.0  # error 1 on one of the 2 eye pixels → eye MSE 0.5
    sr[0, :, 3, :2] = 0.5  # error 0.5 on 2 of 4 mouth pixels → mouth MSE 0.125
    sr[0, :, 2, 2] = 9.0  # outside every key region: ignored
    assert L.key_region_loss(sr, hr, classes).item() == pytest.approx(0.5 + 0.125)
    calls = []

    def fake_perceptual(a, b):
        calls.append((a.clone(), b.clone()))
        return (a - b).abs().sum()

    got = L.LOSSES.build("key_region", perceptual=fake_perceptual)(sr, hr, classes)
    # perceptual on masked images: eyes Σ|·| = 3, mouth 6 × 0.5 = 3; eyebrows/nose empty → 0
    assert got.item() == pytest.approx(0.625 + 3.0 + 3.0)
    assert len(calls) == 4 and all(c[0][0, :, 2, 2].abs().sum() == 0 for c in calls)
    p_sr, p_hr = torch.full((1, 1, 4, 4), 0.5), torch.zeros(1, 1, 4, 4)
    assert L.parsing_mse(p_sr, p_hr).item() == pytest.approx(0.25)
    wnet = L.LOSSES.build("wnet", modules={"key_region": L.KeyRegionLoss()})  # the eq. 29 recipe, no VGG term
    total, parts = wnet({"sr": sr, "hr": hr, "parsing_sr": p_sr, "parsing_hr": p_hr, "classes": classes})
    assert parts["key_region"].item() == pytest.approx(0.625)
    assert total.item() == pytest.approx(parts["mse"].item() + 0.25 + 0.5 * 0.625)


def test_rahinge_hand_computed_and_grad():
    real, fake = torch.tensor([2.0]), torch.tensor([-1.0])
    assert L.rahinge_d_loss(real, fake).item() == 0.0
    assert L.rahinge_g_loss(real, fake).item() == pytest.approx(8.0)
    real = torch.tensor([[0.5, 0.0], [1.0, 0.5]])  # mean 0.5
    fake = torch.tensor([[0.0, 0.0], [0.0, 1.0]], requires_grad=True)  # mean 0.25
    # D: mean relu(1 - (r - 0.25)) = mean[0.75, 1.25, 0.25, 0.75] = 0.75; mean relu(1 + (f - 0.5)) = mean[.5,.5,.5,1.5] = 0.75
    assert L.LOSSES.build("rahinge_d")(real, fake).item() == pytest.approx(1.5)
    g = L.LOSSES.build("rahinge_g")(real, fake)
    g.backward()
    assert fake.grad.abs().sum() > 0


def test_ufvnet_losses_hand_computed():
    from facesr.models.ufvnet import anchor_target_weights

    w = anchor_target_weights([16, 32, 24])  # LR side lengths against the 16/32/64 anchors
    assert w[0].tolist() == pytest.approx([0.5, 0.375, 0.125])
    assert w.sum(1).tolist() == pytest.approx([1.0, 1.0, 1.0])
    logits = torch.zeros(3, 3, requires_grad=True)
    ce = L.LOSSES.build("ufvnet_weight_ce")(logits, w)
    assert ce.item() == pytest.approx(math.log(3))
    sr, hr = torch.full((3, 3, 2, 2), 0.5), torch.zeros(3, 3, 2, 2)
    total, parts = L.LOSSES.build("ufvnet")({"sr": sr, "hr": hr, "logits": logits, "target": w})
    assert total.item() == pytest.approx(0.5 + 0.1 * math.log(3))
    total.backward()
    assert logits.grad.abs().sum() > 0


def test_seed000_ramp_checkpoints():
    r = L.seed000_ramp
    assert r(0) == {"mse": 1.0, "perceptual": 0.0, "heatmap": pytest.approx(1.2), "lpips": 0.0}
    assert r(30) == {"mse": 1.0, "perceptual": pytest.approx(0.01), "heatmap": pytest.approx(1.6), "lpips": 0.0}
    assert r(60) == {"mse": 1.0, "perceptual": pytest.approx(0.02), "heatmap": pytest.approx(2.0), "lpips": 0.0}
    assert r(115)["lpips"] == pytest.approx(0.075) and r(115)["heatmap"] == pytest.approx(2.0)
    assert r(170) == {"mse": 1.0, "perceptual": pytest.approx(0.02), "heatmap": pytest.approx(2.0), "lpips": pytest.approx(0.15)}
    assert r(200)["heatmap"] == pytest.approx(1.5) and r(185, total=200)["heatmap"] == pytest.approx(1.75)
    for e in (59.999, 60.001, 169.999, 170.001):  # continuous at the phase boundaries
        assert r(e)["heatmap"] == pytest.approx(r(round(e))["heatmap"], abs=1e-3)


def test_composite_seed000():
    torch.manual_seed(0)
    sr = torch.rand(2, 3, 8, 8, requires_grad=True)
    hr, hm = torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8)
    calls = []

    def perc(a, b):
        calls.append("perceptual")
        return (a - b).abs().mean()

    def lp(a, b):
        calls.append("lpips")
        return (a - b).pow(2).mean()

    loss = L.PaperLoss(L.RECIPES["seed000"], modules={"perceptual": perc, "lpips": lp}, evaluate_zero=False)
    inputs = {"sr": sr, "hr": hr, "heatmap": hm}
    total, parts = loss(inputs, epoch=0)
    assert calls == [] and set(parts) == {"mse", "heatmap"}  # zero-weight terms are not evaluated
    # pixel terms weighted as released, on [-1, 1] images
    assert 4 * parts["mse"].item() == pytest.approx(F.mse_loss(2 * sr - 1, 2 * hr - 1).item(), rel=1e-6)
    assert 2 * parts["heatmap"].item() == pytest.approx(L.heatmap_l1(2 * sr - 1, 2 * hr - 1, hm).item(), rel=1e-6)
    assert total.item() == pytest.approx(4 * parts["mse"].item() + 1.2 * 2 * parts["heatmap"].item(), rel=1e-6)
    w = L.seed000_ramp(200)
    total, parts = loss(inputs, epoch=200)
    assert calls == ["perceptual", "lpips"]
    scale = {"mse": 4.0, "heatmap": 2.0}
    assert total.item() == pytest.approx(sum(w[k] * scale.get(k, 1.0) * parts[k].item() for k in parts), rel=1e-6)
    total.backward()
    assert sr.grad.abs().sum() > 0


def _released_mrrgan(sr, hr, d_real, d_fake, features):
    """MRRGAN's loss written from SYLan2019/MRRNet (models/mrrnet_model.py, models/loss.py) on its own terms:
    images in [-1, 1]; PCPFeat: (x + 1) / 2, ImageNet mean/std, bilinear to 224, VGG19 features cut at
    [0, 3, 8, 17, 26, 35] with torchvision's in-place ReLUs (so each stored map is rectified by the next
    slice's first layer); PCPLoss: Σ w·L1 with w = 1/32, 1/16, 1/8, 1/4, 1; RaHingeGANLoss('rahinge') /2;
    G total = λpix·(L1·λpix) + λG·G + λpcp·PCP with 1, 0.01, 0.01."""
    import copy

    vgg = copy.deepcopy(features)
    for m in vgg:
        if isinstance(m, torch.nn.ReLU):
            m.inplace = True
    cuts = [0, 3, 8, 17, 26, 35]
    slices = [vgg[a:b] for a, b in zip(cuts, cuts[1:])]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def feats(x):
        x = ((x + 1) / 2 - mean) / std
        if x.shape[3] < 224:
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        out = []
        for m in slices:
            x = m(x)
            out.append(x)
        return out

    x_g, x_h = sr * 2 - 1, hr * 2 - 1
    pcp = sum(w * F.l1_loss(a, b.detach()) for a, b, w in zip(feats(x_g), feats(x_h), [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1]))
    relu = torch.nn.ReLU()
    g = (torch.mean(relu(1 + (d_real - d_fake.mean()))) + torch.mean(relu(1 - (d_fake - d_real.mean())))) / 2
    d = (torch.mean(relu(1 - (d_real - d_fake.mean()))) + torch.mean(relu(1 + (d_fake - d_real.mean())))) / 2
    pix = F.l1_loss(x_g, x_h) * 1.0  # criterionL1(img_SR, img_HR) * lambda_pix, on [-1, 1] images
    return 1.0 * pix + 0.01 * g + 0.01 * pcp, d, pix


def test_mrrgan_losses_equal_the_released_code():
    """facesr's ``mrrgan`` recipe on [0, 1] images against the released formulas on the same tensors."""
    from facesr.train.config import load_config
    from facesr.train.objective import Objective

    torch.manual_seed(0)
    obj = Objective(load_config("mrrgan", ["pretrained=false"]))
    sr = torch.rand(1, 3, 32, 32)
    hr = torch.rand(1, 3, 32, 32)
    d_real, d_fake = torch.randn(1, 1, 8, 8), torch.randn(1, 1, 8, 8)
    terms = obj(sr, {"hr": hr, "lr": torch.rand(1, 3, 4, 4)}, {"d_real": d_real, "d_fake": d_fake})
    assert set(terms) == {"l1", "gan", "perceptual"}
    per = obj.loss.terms["perceptual"]
    features = torch.nn.Sequential(*[m for s in per.slices for m in s])
    want_g, want_d, pix = _released_mrrgan(sr, hr, d_real, d_fake, features)
    # the raw L1 term is on [0, 1]; the recipe weighs it as on [-1, 1] (×2), as released
    assert terms["l1"].item() == pytest.approx(pix.item() / 2, rel=1e-6)
    assert obj.total(terms, epoch=0).item() == pytest.approx(want_g.item(), rel=1e-5)
    assert obj.disc_loss(d_real, d_fake).item() == pytest.approx(want_d.item(), rel=1e-6)
    # the paper's recipe: eq. 10 unweighted, RaHinge not halved
    paper = Objective(load_config("mrrgan", ["pretrained=false", "loss.recipe=mrrgan-paper"]))
    assert paper.disc_loss(d_real, d_fake).item() == pytest.approx(2 * want_d.item(), rel=1e-6)
