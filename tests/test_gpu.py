"""GPU checks for issue 14 items 1–3 (``gpu`` marker; skipped without CUDA). Run on the device by the one
command in ``bench/gpu.py``'s docstring, before the benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def _faces(n: int = 24, seed: int = 0):
    from facesr.priors.boxes import make_boxes, pad_boxes

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:128, 0:128]
    base = 128 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    hr = np.clip(base[None, ..., None] + rng.normal(0, 25, (n, 128, 128, 3)), 0, 255).astype(np.uint8)
    sets = []
    for _ in range(n):
        xy = np.sort(rng.uniform(-5, 133, (9, 2, 2)), axis=1).reshape(9, 4)
        sets.append(make_boxes(xy, list(range(9))))
    return hr, pad_boxes(sets)


@pytest.mark.parametrize("preset", ["paper", "released"])
def test_heatmap_on_cuda_matches_numpy(preset):
    from facesr.priors.heatmap import render_batch, render_batch_torch

    hr, boxes = _faces()
    got = render_batch_torch(torch.from_numpy(hr).cuda(), torch.from_numpy(boxes).cuda(), preset)
    assert got.is_cuda
    diff = np.abs(got.cpu().numpy() - render_batch(hr, boxes, preset))
    assert diff.mean() <= 2e-3 and diff.max() <= 1e-3, (diff.mean(), diff.max())


def test_released_fade_on_cuda_equals_cpu_torch():
    from facesr.priors.heatmap import render_batch_torch

    hr, boxes = _faces(8, seed=1)
    a = render_batch_torch(hr, boxes, "released", device="cuda").cpu()
    b = render_batch_torch(hr, boxes, "released", device="cpu")
    torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def test_augment_on_cuda_equals_cpu():
    from facesr.data.augment import AugmentConfig, augment_batch

    rng = np.random.default_rng(2)
    batch = {"hr": torch.from_numpy(rng.random((6, 3, 32, 32), np.float32)),
             "lr": torch.from_numpy(rng.random((6, 3, 8, 8), np.float32)),
             "heatmap": torch.from_numpy(rng.random((6, 1, 32, 32), np.float32)),
             "parsing": torch.from_numpy(rng.integers(0, 6, (6, 32, 32))),
             "landmarks": torch.from_numpy(rng.uniform(0, 31, (6, 68, 2)).astype(np.float32)),
             "index": torch.arange(6)}
    cfg = AugmentConfig(hflip=0.5, rot90=True, rescale=(1.0, 1.3))
    cpu = augment_batch(batch, cfg, 5, 1)
    gpu = augment_batch({k: v.cuda() for k, v in batch.items()}, cfg, 5, 1)
    for k in ("hr", "lr", "parsing", "landmarks"):
        assert gpu[k].is_cuda
        torch.testing.assert_close(gpu[k].cpu(), cpu[k], atol=1e-6, rtol=0)
    torch.testing.assert_close(gpu["heatmap"].cpu(), cpu["heatmap"], atol=1e-5, rtol=0)


def test_training_step_features():
    """bf16 autocast, channels_last, fused Adam, uint8 batch non_blocking → float on the GPU: a finite step."""
    from facesr.models import build, sr_of

    net = build("unet_light_1rh").cuda().to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
    lr_u8 = torch.randint(0, 256, (8, 16, 16, 3), dtype=torch.uint8).pin_memory()
    hr_u8 = torch.randint(0, 256, (8, 128, 128, 3), dtype=torch.uint8).pin_memory()
    lr = lr_u8.cuda(non_blocking=True).permute(0, 3, 1, 2).float().div_(255).contiguous(memory_format=torch.channels_last)
    hr = hr_u8.cuda(non_blocking=True).permute(0, 3, 1, 2).float().div_(255)
    before = [p.detach().clone() for p in net.parameters()]
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = (sr_of(net(lr)).float() - hr).abs().mean()
    loss.backward()
    opt.step()
    assert torch.isfinite(loss) and any(not torch.equal(a, p) for a, p in zip(before, net.parameters(), strict=True))


def test_heatmap_stage_renders_on_the_gpu():
    """The build's heatmap stage takes the torch renderer when CUDA is present (needs zarr: the carried wheel)."""
    pytest.importorskip("zarr")
    from facesr.data import schema
    from facesr.pipeline import stages
    from facesr.priors.heatmap import get_params, render_batch, torch_is_faster

    assert torch_is_faster()
    hr, boxes = _faces(6, seed=3)
    heat = stages.heatmap_chunk({schema.HR.name: hr, schema.BOXES.name: boxes},
                                {"preset": "released", "params": get_params("released").to_dict()})[schema.HEATMAP.name]
    assert heat.dtype == np.float16
    np.testing.assert_allclose(heat.astype(np.float32), render_batch(hr, boxes, "released"), atol=1e-3)
