"""Tiny synthetic stores for the trainer tests: smooth random 'faces' so a tiny net can learn something."""

from __future__ import annotations

import numpy as np


def make_store(path, n_train: int = 24, n_val: int = 8, n_test: int = 4, chunk: int = 8, seed: int = 0,
               lr_size: int = 16):
    """A FaceStore (on disk at ``path``, or in memory for None) with hr, lr/bicubic-pil_16, heatmap, parsing."""
    from PIL import Image

    from facesr.data.store import FaceStore

    n = n_train + n_val + n_test
    rng = np.random.default_rng(seed)
    ids = [f"{i:06d}" for i in range(n)]
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    store = FaceStore.create(path, ids=ids, splits=splits, chunk=chunk)
    yy, xx = np.mgrid[0:128, 0:128] / 127.0
    hr = np.empty((n, 128, 128, 3), np.uint8)
    for i in range(n):
        c = rng.uniform(0.2, 0.8, size=(3, 3))
        img = np.stack([c[k, 0] + 0.3 * np.sin(6 * c[k, 1] * xx + 3 * c[k, 2] * yy) for k in range(3)], -1)
        cx, cy, r = rng.uniform(40, 88), rng.uniform(40, 88), rng.uniform(10, 25)
        img[((xx * 127 - cx) ** 2 + (yy * 127 - cy) ** 2) < r**2] *= 0.5
        hr[i] = np.clip(img * 255, 0, 255).astype(np.uint8)
    lr = np.stack([np.asarray(Image.fromarray(h).resize((lr_size, lr_size), Image.BICUBIC)) for h in hr])
    heat = np.exp(-(((xx - 0.5) ** 2 + (yy - 0.45) ** 2) / 0.05)).astype(np.float32)
    parsing = np.zeros((n, 128, 128), np.uint8)
    parsing[:, 30:100, 30:100] = 1
    parsing[:, 55:62, 40:55] = 3
    parsing[:, 85:92, 50:78] = 5
    store.write("hr", 0, hr)
    store.require(f"lr/bicubic-pil_{lr_size}", (lr_size, lr_size, 3), "uint8")
    store.write(f"lr/bicubic-pil_{lr_size}", 0, lr)
    store.require("priors/heatmap", (128, 128), "float32")
    store.write("priors/heatmap", 0, np.broadcast_to(heat, (n, 128, 128)).copy())
    store.require("priors/parsing", (128, 128), "uint8")
    store.write("priors/parsing", 0, parsing)
    return store


#: overrides that make any seed-000-style preset tiny and offline
TINY = [
    "model.name=unet_light",
    "model.args={base_channels: 4, refine_blocks: 1}",
    "data.batch_size=4",
    "data.val_batch_size=8",
    "data.priors=[heatmap]",
    "loss.perceptual=0",
    "loss.lpips=0",
    "val.lpips=false",
    "pretrained=false",
    "device=cpu",
    "amp=off",
    "log_every=1",
]
