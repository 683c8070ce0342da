"""Complexity table of every registered model: params, GMACs, latency, throughput, peak memory.

    python bench/models.py [--out bench/results/models.json] [--models gvtnet wnet ...] [--batch 16]
                           [--iters 3] [--warmup 1] [--no-memory] [--no-cuda] [--update]

Each row is measured by :func:`facesr.metrics.complexity.profile` on the CPU (fp32, eager, the process's
torch thread count) — latency at batch 1, throughput at ``--batch``, peak memory at batch 1 — and, when CUDA
is available, again on the GPU with AMP (float16), channels-last and ``torch.compile`` (falling back to
eager when compilation fails; the row says which ran). Besides every registered name (GVTNet's default is the
released variant), the paper variants of GVTNet are profiled as ``gvtnet[variant=paper]`` and
``gvtnet_x4[variant=paper]``, and facesr's earlier narrow W-Net as ``wnet[down_widths=…,decoder_skips=additive]``.
The JSON holds the settings (device, torch version, thread count, date) next to the rows, and is rewritten
after every model so that an interrupted run keeps what it measured.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

EXTRA = [("gvtnet", {"variant": "paper"}), ("gvtnet_x4", {"variant": "paper"}),
         ("wnet", {"down_widths": (16, 32, 64), "decoder_skips": "additive"})]  # the narrow W-Net


def _label(name: str, overrides: dict) -> str:
    return name + ("[" + ",".join(f"{k}={v}" for k, v in overrides.items()) + "]" if overrides else "")


def _parse(spec: str) -> tuple[str, dict]:
    """``"gvtnet[variant=released]"`` → ``("gvtnet", {"variant": "released"})`` (string values)."""
    if "[" not in spec:
        return spec, {}
    name, rest = spec.split("[", 1)
    pairs = [kv.split("=", 1) for kv in rest.rstrip("]").split(",") if kv]
    return name, {k: v for k, v in pairs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="bench/results/models.json")
    ap.add_argument("--models", nargs="*", help="registered names, optionally with string overrides: gvtnet[variant=released] "
                    "(default: all, plus the GVTNet paper variants and the narrow W-Net)")
    ap.add_argument("--batch", type=int, default=16, help="throughput batch size")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocess")
    ap.add_argument("--no-cuda", action="store_true", help="CPU only even when CUDA is available")
    ap.add_argument("--update", action="store_true", help="re-measure only --models; keep the other rows of --out")
    args = ap.parse_args(argv)

    from facesr.runtime import offline_env, restore_threads

    offline_env()
    import torch

    restore_threads()
    from facesr.metrics.complexity import default_lr_size, profile
    from facesr.models import build, list_models

    specs = [_parse(n) for n in (args.models or list_models())]
    if not args.models:
        specs += EXTRA
    cuda = torch.cuda.is_available() and not args.no_cuda
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    table = {
        "settings": {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "cuda_device": torch.cuda.get_device_name(0) if cuda else None,
            "cpu_settings": "fp32, eager, latency at batch 1 (median), throughput at batch "
            f"{args.batch}, peak memory at batch 1 (peak RSS delta in a subprocess)",
            "cuda_settings": "AMP float16, channels_last, torch.compile (eager fallback)" if cuda else None,
            "macs": "torch.utils.flop_counter.FlopCounterMode at batch 1 (conv, mm, bmm incl. attention matmuls, SDPA) "
            "+ facesr formulas (interpolation 1/4/16 per output element, cdist, CPU SDPA); norms, softmax and "
            "element-wise ops uncounted",
            "warmup": args.warmup,
            "iters": args.iters,
        },
        "models": [],
    }
    if args.update and out.exists():
        redo = {_label(n, o) for n, o in specs}
        table["models"] = [r for r in json.loads(out.read_text())["models"] if r["model"] not in redo]
    for name, overrides in specs:
        label = _label(name, overrides)
        row: dict = {"model": label, "measured": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                     "loadavg_1min": round(os.getloadavg()[0], 2)}  # other work on the machine skews latency
        t0 = time.perf_counter()
        try:
            model = build(name, **overrides)
            size = default_lr_size(model)
            row["input"] = [3, size, size]
            res = profile(
                model, (3, size, size), batch_sizes=(1, args.batch), warmup=args.warmup, iters=args.iters,
                memory=not args.no_memory,
            )
            row.update(
                params=res["params"], params_str=res["params_str"], gmacs=round(res["gmacs"], 4),
                uncounted_ops=res["uncounted_ops"],
                cpu={k: res[k] for k in ("device", "threads", "latency_ms", "latency_batch", "throughput",
                                         "throughput_batch", "peak_memory_mb", "peak_memory_batch", "times_ms")},
            )
            if cuda:
                row["cuda"] = _cuda_row(profile, build(name, **overrides), size, args)
        except Exception as exc:  # one broken model must not lose the others
            row["error"] = f"{type(exc).__name__}: {exc}"
        row["seconds"] = round(time.perf_counter() - t0, 1)
        table["models"].append(row)
        out.write_text(json.dumps(table, indent=2) + "\n")
        print(f"{label:34s} {row.get('params_str', '-'):>8s} {row.get('gmacs', float('nan')):8.2f} GMACs "
              f"{row.get('cpu', {}).get('latency_ms', float('nan')):9.1f} ms  {row.get('error', '')}", flush=True)
    print(f"wrote {out}")
    return 0


def _cuda_row(profile, model, size: int, args) -> dict:
    keys = ("device", "latency_ms", "latency_batch", "throughput", "throughput_batch", "peak_memory_mb", "times_ms")
    for compile_ in (True, False):
        try:
            res = profile(
                model, (3, size, size), device="cuda", batch_sizes=(1, args.batch), amp=True, channels_last=True,
                compile=compile_, warmup=max(args.warmup, 3), iters=max(args.iters, 10), memory=not args.no_memory,
            )
            return {"amp": True, "channels_last": True, "compile": compile_, **{k: res[k] for k in keys}}
        except Exception as exc:  # compile can fail on some graphs: retry eager
            err = f"{type(exc).__name__}: {exc}"
    return {"error": err}


if __name__ == "__main__":
    sys.exit(main())
