"""One GPU, measured in one call: priors, training step, latency and the heatmap-loss ablation (issue 14).

Writes ``bench/results/gpu.json`` (or ``--out``) with sections ``priors``, ``train``, ``latency``,
``ablation`` (+ ``meta``, ``loader``). Every section is timed against ``--budget-s`` (default 450 s) and
records its own error instead of failing the run.

1. Here (with ``../shared``), pack the compact inputs (40 MiB, git-ignored; ``bench/gpu_data.py``)::

       .venv/bin/python bench/gpu.py --prepare bench/gpu_inputs

   2,500 CelebA JPEGs of the train partition (bytes as shipped) + their part boxes (dlib landmarks →
   the landmark box provider, computed here: dlib cannot travel), 400 DIC test HR PNGs + their
   landmark parsing maps (for eyes/nose/mouth PSNR), and cp312 wheels of what the device lacks
   (``ultralytics-opencv-headless``, ``ultralytics-thop``, ``facexlib``, ``zarr``, ``numcodecs``, ``donfig``,
   ``google-crc32c``), fetched with ``pip download``; a wheel that cannot be fetched is left out.

2. On the device, the one command (GPU tests first, then the bench; ``run`` with ``carry=["bench/gpu_inputs"]``)::

       export PYTHONUNBUFFERED=1; for w in bench/gpu_inputs/wheels/*.whl; do python3 -m pip install -q
       --no-index --no-deps --no-compile --target /tmp/site $w; done; export PYTHONPATH=$PWD:/tmp/site;
       python3 -m pytest -p no:cacheprovider -o addopts="" -q -rs tests/test_gpu.py 2>&1 | tee $OUT/gpu_tests.log;
       python3 bench/gpu.py --no-install --data bench/gpu_inputs --out $OUT/gpu.json 2>&1 | tee $OUT/gpu_bench.log

   (one line; ``timeout_s=600``); then copy the returned ``gpu.json`` to ``bench/results/gpu.json``.

   The wheels go in with ``pip --no-index --no-deps --target`` (without ``--no-install`` the bench does it
   itself, into a temp folder). Without
   ultralytics (no wheel) the ``priors`` section reports ``yoloworld: skipped`` and measures BiSeNet and
   the GPU heatmap renderer alone; without zarr the loader feed is measured from pinned host memory only.
   facexlib is imported past its ``__init__`` (which needs filterpy) by registering the package path.

``python bench/gpu.py --dry-run`` runs every section on the CPU at toy sizes (about 30 s of CPU time;
``tests/bench/test_gpu.py``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

from gpu_data import aligned, dic_test, faces, install_wheels, prepare  # noqa: E402
PEAK_BF16 = 989e12  # H100/H200 SXM dense bf16, datasheet
MODELS = ("unet_light", "unet_light_1rh", "sparnet_light", "mrrnet", "gvtnet", "ufvnet", "wnet")


# ------------------------------------------------------------------------------------------ helpers


def _sync(dev):
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize()


def _timeit(fn, dev, reps: int, warm: int = 2) -> float:
    """Median seconds of ``fn()`` over ``reps`` runs after ``warm`` runs (synchronised)."""
    for _ in range(warm):
        fn()
    _sync(dev)
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        _sync(dev)
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def _flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as fc:
        fn()
    return float(fc.get_total_flops())


def _import_bisenet():
    """facexlib's BiSeNet without ``facexlib/__init__`` (it imports the tracker, which needs filterpy)."""
    import importlib.util

    spec = importlib.util.find_spec("facexlib")
    if spec is None:
        raise ImportError("facexlib is not installed (no wheel carried)")
    if "facexlib" not in sys.modules:
        pkg = types.ModuleType("facexlib")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["facexlib"] = pkg
    from facexlib.parsing.bisenet import BiSeNet

    return BiSeNet


# ------------------------------------------------------------------------------------------ sections


def bench_priors(dev, hr, jpegs, boxes, dry: bool) -> dict:
    """End-to-end priors: JPEG decode + crop on CPU threads (overlapped), then on the GPU the YOLO-World
    forward at imgsz 640 (fp16), box decoding + batched NMS, BiSeNet at 512 (fp16) with the class map, and
    the released heatmap from the carried boxes."""
    import torch
    import torch.nn.functional as F
    import torchvision

    from facesr.priors.heatmap_torch import render_batch_torch

    res: dict = {"settings": {}}
    imgsz, psize, bs = (32, 32, 4) if dry else (640, 512, 256)
    half = torch.float16 if dev.type == "cuda" else torch.float32
    nets = {}
    try:
        os.environ.setdefault("YOLO_OFFLINE", "1")
        os.environ.setdefault("YOLO_AUTOINSTALL", "False")
        os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp())
        from ultralytics import YOLO

        yolo = YOLO("yolov8s-world.yaml")  # v1, facesr's default (facesr/priors/detectors.py YOLOWORLD_VERSIONS)
        m = yolo.model
        k = 9
        m.model[-1].nc = k
        m.names = {i: str(i) for i in range(k)}
        nets["yolo"] = m.to(dev).eval().to(half)
        m.txt_feats = F.normalize(torch.randn(1, k, 512), dim=-1).to(dev, half)
    except Exception as exc:  # noqa: BLE001 - recorded, not raised
        res["yoloworld"] = f"skipped: {type(exc).__name__}: {str(exc)[:160]}"
    try:
        nets["bisenet"] = _import_bisenet()(num_class=19).to(dev).eval().to(half)
    except Exception as exc:  # noqa: BLE001
        res["bisenet"] = f"skipped: {type(exc).__name__}: {str(exc)[:160]}"
    lut = torch.zeros(19, dtype=torch.uint8, device=dev)  # BiSeNet 19 → facesr ids (1 skin, 2 brows, 3 eyes, 4 nose, 5 mouth)
    for src, dst in ((1, 1), (2, 2), (3, 2), (4, 3), (5, 3), (10, 4), (11, 5), (12, 5), (13, 5)):
        lut[src] = dst
    mean = torch.tensor([0.485, 0.456, 0.406], device=dev).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=dev).view(1, 3, 1, 1)
    boxes_t = torch.from_numpy(boxes)

    def gpu_part(u8: torch.Tensor, bx: torch.Tensor):
        x = u8.to(dev, non_blocking=True)
        f = x.permute(0, 3, 1, 2).to(half) / 255
        out = {}
        with torch.inference_mode():
            if "yolo" in nets:
                pred = nets["yolo"](F.interpolate(f, size=imgsz, mode="bilinear", align_corners=False))
                pred = pred[0] if isinstance(pred, (tuple, list)) else pred  # (B, 4 + K, A)
                score, cls = pred[:, 4:].float().max(1)
                top = score.topk(min(300, score.shape[1]), dim=1)
                xywh = pred[:, :4].float().gather(2, top.indices[:, None].expand(-1, 4, -1)).transpose(1, 2)
                xyxy = torch.cat([xywh[..., :2] - xywh[..., 2:] / 2, xywh[..., :2] + xywh[..., 2:] / 2], -1) * (128 / imgsz)
                c = cls.gather(1, top.indices)
                img_id = torch.arange(len(x), device=dev)[:, None].expand_as(c)
                keep = torchvision.ops.batched_nms(xyxy.reshape(-1, 4), top.values.reshape(-1), (img_id * 9 + c).reshape(-1), 0.1)
                out["boxes"] = keep
            if "bisenet" in nets:
                p = F.interpolate(f, size=psize, mode="bilinear", align_corners=False)
                logits = nets["bisenet"](((p - mean) / std).to(half))[0]
                cm = lut[logits.argmax(1)]
                out["parsing"] = F.interpolate(cm[:, None].float(), size=128, mode="nearest")[:, 0].to(torch.uint8)
            out["heatmap"] = render_batch_torch(x, bx.to(dev, non_blocking=True), "released")
        return out

    n = len(jpegs)
    batches = [(i, min(n, i + bs)) for i in range(0, n, bs)]
    pool = ThreadPoolExecutor(8)

    def decode(span):
        a, b = span
        u8 = torch.from_numpy(np.stack(list(pool.map(aligned, jpegs[a:b]))))
        return u8.pin_memory() if dev.type == "cuda" else u8

    gpu_part(decode(batches[0]), boxes_t[: batches[0][1]])  # warm-up (cuDNN plans, allocator)
    _sync(dev)
    t = time.perf_counter()
    nxt = pool.submit(decode, batches[0])
    for j, (a, b) in enumerate(batches):  # decode of batch j+1 overlaps the GPU work of batch j
        u8 = nxt.result()
        if j + 1 < len(batches):
            nxt = pool.submit(decode, batches[j + 1])
        gpu_part(u8, boxes_t[a:b])
    _sync(dev)
    secs = time.perf_counter() - t
    pool.shutdown()
    one = torch.from_numpy(hr[:1])
    flops = _flops(lambda: gpu_part(one, boxes_t[:1]))
    ips = n / secs
    res.update(images=n, seconds=round(secs, 3), images_per_s=round(ips, 1), gflops_per_image=round(flops / 1e9, 2),
               achieved_fraction_of_bf16_peak=round(ips * flops / PEAK_BF16, 4), goal_images_per_s=2500)
    res["settings"] = {"yolo_imgsz": imgsz, "bisenet_size": psize, "batch": bs, "dtype": str(half), "nms_iou": 0.1,
                       "heatmap": "released, render_batch_torch", "decode": "cv2 JPEG + crop, 8 threads, overlapped"}
    return res


def bench_train(dev, dry: bool, budget_end: float) -> tuple[dict, dict]:
    """Per model: training images/s (bf16 autocast, channels_last, fused Adam, losses read every N steps),
    batch-1 inference latency (eager, and a CUDA graph where possible), peak memory."""
    import torch

    from facesr.models import build, sr_of

    train, lat = {}, {}
    names = ("unet_light_1rh",) if dry else MODELS
    for name in names:
        if time.perf_counter() > budget_end:
            train[name] = "skipped: time budget"
            continue
        try:
            over = {"base_channels": 8} if dry else {}
            net = build(name, **over).to(dev).to(memory_format=torch.channels_last)
            bs = 2 if dry else (4 if name == "wnet" else 64)
            opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=dev.type == "cuda")
            lr = torch.rand(bs, 3, 16, 16, device=dev).to(memory_format=torch.channels_last)
            hr = torch.rand(bs, 3, 128, 128, device=dev)
            ac = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")
            losses = []

            def step():
                with ac:
                    loss = (sr_of(net(lr)).float() - hr).abs().mean()
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.detach())  # read every N steps, not per step (no host sync)

            if dev.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            reps = 2 if dry else 20
            secs = _timeit(step, dev, reps, warm=1 if dry else 3)
            float(torch.stack(losses).mean())
            peak = torch.cuda.max_memory_allocated() / 2**30 if dev.type == "cuda" else None
            train[name] = {"batch": bs, "images_per_s": round(bs / secs, 1), "step_ms": round(secs * 1e3, 2),
                           "peak_gib": None if peak is None else round(peak, 2),
                           "params": sum(p.numel() for p in net.parameters())}
            net.eval()
            x1 = lr[:1]
            with torch.inference_mode(), ac:
                eager = _timeit(lambda: net(x1), dev, 2 if dry else 50, warm=1 if dry else 5)
            row = {"eager_bf16_ms": round(eager * 1e3, 3)}
            if dev.type == "cuda":
                try:  # CUDA graph of the static batch-1 forward
                    g = torch.cuda.CUDAGraph()
                    s = torch.cuda.Stream()
                    s.wait_stream(torch.cuda.current_stream())
                    with torch.inference_mode(), ac, torch.cuda.stream(s):
                        for _ in range(3):
                            net(x1)
                    torch.cuda.current_stream().wait_stream(s)
                    with torch.inference_mode(), ac, torch.cuda.graph(g):
                        net(x1)
                    row["cuda_graph_bf16_ms"] = round(_timeit(g.replay, dev, 100) * 1e3, 3)
                except Exception as exc:  # noqa: BLE001
                    row["cuda_graph"] = f"failed: {type(exc).__name__}: {str(exc)[:120]}"
            lat[name] = row
            del net, opt
        except Exception as exc:  # noqa: BLE001
            train[name] = f"failed: {type(exc).__name__}: {str(exc)[:200]}"
    if not dry and dev.type == "cuda" and time.perf_counter() < budget_end - 120:
        train["compile_unet_light_1rh"] = _compile_modes(dev)
    return train, lat


def _compile_modes(dev) -> dict:
    """torch.compile modes for the 1-RH U-Net training step, chosen by measurement (compile seconds too)."""
    import torch

    from facesr.models import build

    out = {}
    t_start = time.perf_counter()
    for mode in ("default", "reduce-overhead"):  # max-autotune's conv search would not fit the 8 minutes
        if time.perf_counter() - t_start > 90:
            out[mode] = "skipped: time budget"
            continue
        try:
            net = build("unet_light_1rh").to(dev).to(memory_format=torch.channels_last)
            opt = torch.optim.Adam(net.parameters(), lr=1e-4, fused=True)
            cnet = torch.compile(net, mode=mode)
            lr = torch.rand(256, 3, 16, 16, device=dev).to(memory_format=torch.channels_last)
            hr = torch.rand(256, 3, 128, 128, device=dev)

            def step():
                with torch.autocast("cuda", dtype=torch.bfloat16):
                    loss = (cnet(lr).float() - hr).abs().mean()
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)

            t = time.perf_counter()
            step()
            _sync(dev)
            compile_s = time.perf_counter() - t
            secs = _timeit(step, dev, 20)
            out[mode] = {"batch": 256, "images_per_s": round(256 / secs, 1), "compile_s": round(compile_s, 1)}
        except Exception as exc:  # noqa: BLE001
            out[mode] = f"failed: {type(exc).__name__}: {str(exc)[:160]}"
    ok = {m: r["images_per_s"] for m, r in out.items() if isinstance(r, dict)}
    out["chosen"] = max(ok, key=ok.get) if ok else None
    return out


def bench_loader(dev, hr: np.ndarray, dry: bool) -> dict:
    """uint8 HR+LR batches into the GPU (pinned, non_blocking, to_float there); from host memory and,
    where zarr is importable, from a zarr array on local disk."""
    import torch

    from facesr.data.degrade import resize

    n = len(hr)
    lr = np.stack([resize(h, (16, 16), "bicubic-pil") for h in hr])
    bs = min(64 if dry else 256, n)

    def feed(get) -> float:
        t = time.perf_counter()
        for a in range(0, n - bs + 1, bs):
            h, lo = get(a)
            th, tl = torch.from_numpy(h), torch.from_numpy(lo)
            if dev.type == "cuda":
                th, tl = th.pin_memory(), tl.pin_memory()
            x = th.to(dev, non_blocking=True).permute(0, 3, 1, 2).float().mul_(1 / 255)
            y = tl.to(dev, non_blocking=True).permute(0, 3, 1, 2).float().mul_(1 / 255)
            del x, y
        _sync(dev)
        return (n // bs) * bs / (time.perf_counter() - t)

    res = {"batch": bs, "memory_images_per_s": round(feed(lambda a: (hr[a : a + bs], lr[a : a + bs])), 1)}
    try:
        import zarr

        d = tempfile.mkdtemp()
        zh = zarr.create_array(f"{d}/hr", shape=hr.shape, chunks=(bs, 128, 128, 3), dtype="uint8")
        zl = zarr.create_array(f"{d}/lr", shape=lr.shape, chunks=(bs, 16, 16, 3), dtype="uint8")
        zh[:], zl[:] = hr, lr
        res["zarr_images_per_s"] = round(feed(lambda a: (zh[a : a + bs], zl[a : a + bs])), 1)
        res["zarr"] = zarr.__version__
    except Exception as exc:  # noqa: BLE001
        res["zarr_images_per_s"] = f"skipped: {type(exc).__name__}: {str(exc)[:120]}"
    return res


def bench_ablation(dev, hr, boxes, dic_hr, dic_parsing, steps: int, dry: bool, seconds_left: float = 1e9) -> dict:
    """Light U-Net 1-RH, seed 0, equal steps, with and without the heatmap loss (MSE + 2.0·heatmap vs MSE),
    on real CelebA faces (released heatmaps rendered on the GPU from the carried boxes, hflip 0.5 via
    facesr.data.augment), scored on the DIC test set under ``dic`` plus eyes/nose/mouth PSNR; bicubic beside."""
    import torch

    from facesr.data.augment import AugmentConfig, augment_batch
    from facesr.data.degrade import resize, upscale_back
    from facesr.metrics.protocols import psnr_ssim
    from facesr.metrics.regions import region_psnr
    from facesr.models import build, sr_of
    from facesr.priors.heatmap_torch import render_batch_torch
    from facesr.train.losses import heatmap_l1

    lr = np.stack([resize(h, (16, 16), "bicubic-pil") for h in hr])
    heat = torch.cat([render_batch_torch(hr[i : i + 512], boxes[i : i + 512], "released", device=dev)
                      for i in range(0, len(hr), 512)])
    hr_t = torch.from_numpy(hr).to(dev).permute(0, 3, 1, 2).float().div_(255)
    lr_t = torch.from_numpy(lr).to(dev).permute(0, 3, 1, 2).float().div_(255)
    dic_lr = np.stack([resize(h, (16, 16), "bicubic-pil") for h in dic_hr])  # bit-exact with the DIC LR files
    bs = 4 if dry else 64
    cfg = AugmentConfig(hflip=0.5)
    ac = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda")

    def score(pred_u8: np.ndarray) -> dict:
        s = psnr_ssim(pred_u8, dic_hr, "dic").means()
        s.update({k: float(np.nanmean(v)) for k, v in region_psnr(pred_u8, dic_hr, dic_parsing).items()})
        return {k: round(v, 4) for k, v in s.items()}

    out = {"settings": {"model": "unet_light_1rh", "seed": 0, "steps": steps, "batch": bs, "optim": "Adam 5e-4 (fused)",
                        "loss_with": "mse + 2.0*heatmap_l1(gamma 1.3, floor 0.1)", "loss_without": "mse",
                        "heatmap": "released", "augment": "hflip 0.5", "train_images": len(hr),
                        "test": f"DIC HR[:{len(dic_hr)}], LR = bicubic-pil 16"}}
    up = np.stack([upscale_back(x, 128, "bicubic-pil") for x in dic_lr])
    out["bicubic"] = score(up)
    for arm, w_heat in (("without_heatmap", 0.0), ("with_heatmap", 2.0)):
        torch.manual_seed(0)
        net = build("unet_light_1rh", **({"base_channels": 8} if dry else {})).to(dev).to(memory_format=torch.channels_last)
        opt = torch.optim.Adam(net.parameters(), lr=5e-4, fused=dev.type == "cuda")
        g = torch.Generator().manual_seed(0)
        t = time.perf_counter()
        step = 0
        while step < steps:
            if arm == "without_heatmap" and step == 50:  # equal steps for both arms, within the time left
                _sync(dev)
                per_step = (time.perf_counter() - t) / 50
                steps = max(50, min(steps, int(0.8 * seconds_left / 2 / per_step)))
                out["settings"]["steps"] = steps
            idx = torch.randint(0, len(hr), (bs,), generator=g)
            b = augment_batch({"hr": hr_t[idx.to(dev)], "lr": lr_t[idx.to(dev)], "heatmap": heat[idx.to(dev)][:, None],
                               "index": idx}, cfg, seed=0, epoch=step)
            with ac:
                sr = sr_of(net(b["lr"].contiguous(memory_format=torch.channels_last))).float()
            loss = torch.nn.functional.mse_loss(sr, b["hr"])
            if w_heat:
                loss = loss + w_heat * heatmap_l1(sr, b["hr"], b["heatmap"])
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            step += 1
        _sync(dev)
        train_s = time.perf_counter() - t
        net.eval()
        preds = []
        with torch.inference_mode(), ac:
            for i in range(0, len(dic_lr), 256):
                x = torch.from_numpy(dic_lr[i : i + 256]).to(dev).permute(0, 3, 1, 2).float().div_(255)
                y = sr_of(net(x)).float().clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)
                preds.append(y.cpu().numpy())
        out[arm] = {**score(np.concatenate(preds)), "train_s": round(train_s, 1), "final_loss": round(loss.item(), 5)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prepare", type=Path, help="pack the device inputs into this folder and exit")
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    ap.add_argument("--celeba", type=int, default=2500)
    ap.add_argument("--dic", type=int, default=400)
    ap.add_argument("--no-wheels", action="store_true", help="--prepare: fetch no wheels")
    ap.add_argument("--no-install", action="store_true", help="the carried wheels are installed already")
    ap.add_argument("--data", type=Path, default=ROOT / "bench" / "gpu_inputs")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "gpu.json")
    ap.add_argument("--dry-run", action="store_true", help="every section on the CPU at toy sizes")
    ap.add_argument("--budget-s", type=float, default=450.0)
    ap.add_argument("--steps", type=int, default=3000, help="training steps per ablation arm (fewer if time is short)")
    a = ap.parse_args(argv)
    if a.prepare:
        print(json.dumps(prepare(a.prepare, a.celeba, a.dic, a.shared, not a.no_wheels), indent=1))
        return 0
    t0 = time.perf_counter()
    import torch

    dry = a.dry_run
    dev = torch.device("cpu" if dry or not torch.cuda.is_available() else "cuda")
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    data = None if dry else a.data
    wheels = [] if dry or a.no_install else install_wheels(a.data)
    res: dict = {"meta": {"torch": torch.__version__, "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
                          "dry_run": dry, "wheels": wheels, "python": sys.version.split()[0]}}
    hr, boxes, jpegs = faces(data, 8 if dry else 2500, dry)
    dic_hr, dic_parsing = dic_test(data, 4 if dry else 400)
    end = t0 + a.budget_s
    for name, fn in (("priors", lambda: bench_priors(dev, hr[:4], jpegs[:4], boxes[:4], dry) if dry else
                      bench_priors(dev, hr, jpegs, boxes, dry)),
                     ("loader", lambda: bench_loader(dev, hr, dry)),
                     ("train", lambda: bench_train(dev, dry, end - 200)),
                     ("ablation", lambda: bench_ablation(dev, hr, boxes, dic_hr, dic_parsing, 2 if dry else a.steps, dry,
                                                      end - time.perf_counter()))):
        t = time.perf_counter()
        try:
            r = fn()
            if name == "train":
                res["train"], res["latency"] = r
            else:
                res[name] = r
        except Exception as exc:  # noqa: BLE001 - one failed section must not lose the others
            res[name] = f"failed: {type(exc).__name__}: {str(exc)[:300]}"
        print(f"{name}: {time.perf_counter() - t:.1f} s", flush=True)
    res["meta"]["seconds"] = round(time.perf_counter() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1)[-3000:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
