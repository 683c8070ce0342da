"""Zarr store loader vs a BasicSR-style paired folder loader, on the same faces, in one run.

What is compared (same samples, same batch size, same DataLoader settings):

* ``folder``: a map-style dataset in the manner of BasicSR's ``PairedImageDataset`` with on-the-fly
  degradation: read the HR PNG's bytes, ``cv2.imdecode``, BGR→RGB, LR made per sample with Pillow
  bicubic to 16×16 (``facesr.data.degrade``'s ``bicubic-pil``), both to float32 CHW tensors in [0, 1];
  ``RandomSampler``, ``default_collate``.
* ``zarr-sample``: :class:`facesr.data.loader.StoreDataset` yielding float samples + ``default_collate``.
* ``zarr-batch``: the same dataset yielding float batches (``batch_size`` in the dataset).
* ``zarr-raw``: batches of stored uint8, converted with ``to_float`` on the batch in the main process
  (here on the CPU, so its cost is counted).
* ``zarr-thread``: ``zarr-raw`` through :class:`facesr.data.loader.ThreadLoader` (one background thread,
  no worker processes; only with 0 workers), ``to_float`` on the CPU — the recommended training setup
  except that there the conversion runs on the GPU.
* ``zarr-raw-gpuconv``: the same uint8 batches, not converted: the loader's cost when ``to_float`` runs
  on the accelerator after the (4× smaller) uint8 transfer, as a trainer does. The conversion itself is
  not timed in this row.

Each configuration runs with 0 workers (everything in the main process) and with 1–2 DataLoader workers
(persistent). One warm-up epoch precedes the ``--epochs`` timed epochs (worker start, imports and the
page cache are outside the timing). ``--cache cold`` evicts the store's / PNGs' pages with
``posix_fadvise(DONTNEED)`` before each timed epoch, so reads go to the disk.

Per-core throughput is samples per CPU-second: user+system time of the main process (all its threads,
getrusage) and its workers (/proc) during the timed epochs, so a loader that burns two cores is not
flattered. The headline ratio is zarr per-core over folder per-core at the same worker count, for the
best zarr mode; a second headline excludes ``zarr-raw-gpuconv`` (float conversion counted on the CPU).

Usage::

    python bench/loader.py                       # 4096 CelebA faces if ../shared is there, else synthetic
    python bench/loader.py --store STORE --n 2048 --out bench/results/loader.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facesr.data.loader import StoreDataset  # noqa: E402
from facesr.data.store import FaceStore  # noqa: E402

CELEBA = Path(os.environ.get("FACESR_SHARED", ROOT.parent / "shared")) / "faces" / "celeba" / "img_align_celeba"
LR_SPEC = "bicubic-pil:16"


# ----------------------------------------------------------------------------------------- data
def load_faces(n: int, seed: int = 0) -> tuple[np.ndarray, str]:
    """n uint8 128×128×3 HR faces: aligned CelebA crops if available, else smooth synthetic images."""
    if CELEBA.is_dir():
        from facesr.data.crop import aligned_crop
        from facesr.data.images import read_image

        files = sorted(CELEBA.glob("*.jpg"))[:n]
        faces = np.stack([aligned_crop(read_image(f)) for f in files])
        return faces, f"CelebA aligned ({len(files)} of {CELEBA}), aligned_crop 178→128"
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (n, 16, 16, 3), dtype=np.uint8)
    faces = np.stack([cv2.resize(s, (128, 128), interpolation=cv2.INTER_CUBIC) for s in small])
    noise = rng.integers(-6, 7, faces.shape)
    return np.clip(faces.astype(np.int16) + noise, 0, 255).astype(np.uint8), "synthetic (no CelebA found)"


def degrade_lr(hr: np.ndarray) -> np.ndarray:
    try:
        from facesr.data.degrade import degrade

        return degrade(hr, LR_SPEC)
    except ImportError:  # pragma: no cover - before degrade.py existed
        return np.asarray(Image.fromarray(hr).resize((16, 16), Image.BICUBIC))


def build_store(path: Path, faces: np.ndarray, chunk: int, image_codec: str | None = None) -> FaceStore:
    """A one-split store of ``faces`` + their LR; ``image_codec`` overrides the store's image codec
    (a :data:`facesr.data.store.CODECS` key, e.g. ``"none"``) for ``hr`` and ``lr``."""
    n = len(faces)
    st = FaceStore.create(path, ids=[f"{i:06d}" for i in range(n)], splits=["train"] * n, chunk=chunk,
                          attrs={"source": {"name": "bench"}, "lr": [LR_SPEC]})
    if image_codec:
        st.delete("hr")
        st.require("hr", (128, 128, 3), "uint8", codec=image_codec)
    st.require("lr/bicubic-pil_16", (16, 16, 3), "uint8", codec=image_codec)
    for sl in st.chunk_slices():
        st.write("hr", sl.start, faces[sl])
        st.write("lr/bicubic-pil_16", sl.start, np.stack([degrade_lr(f) for f in faces[sl]]))
    return st


def write_pngs(folder: Path, faces: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(faces):
        p = folder / f"{i:06d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(f, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])  # BasicSR's level
        paths.append(p)
    return paths


class PairedFolderDataset(Dataset):
    """BasicSR-style: decode the HR PNG with cv2, degrade on the fly, float32 CHW tensors in [0, 1]."""

    def __init__(self, paths: list[Path]) -> None:
        self.paths = [str(p) for p in paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        with open(self.paths[i], "rb") as f:  # BasicSR's FileClient('disk').get → bytes
            buf = np.frombuffer(f.read(), np.uint8)
        hr = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        lr = degrade_lr(hr)
        return {
            "lr": torch.from_numpy(lr.transpose(2, 0, 1).astype(np.float32) / 255.0),
            "hr": torch.from_numpy(hr.transpose(2, 0, 1).astype(np.float32) / 255.0),
            "index": torch.tensor(i),
        }


# ------------------------------------------------------------------------------------- measuring
def _cpu_seconds(pids: list[int]) -> float:
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        if pid == os.getpid():  # all threads of this process, µs resolution
            ru = resource.getrusage(resource.RUSAGE_SELF)
            total += ru.ru_utime + ru.ru_stime
            continue
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def _evict(paths: list[Path]) -> None:
    for p in paths:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _all_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.is_dir() else [root]


def run_one(name: str, loader, files: list[Path], cache: str, to_float=None, epochs: int = 3) -> dict:
    it = iter(loader)  # persistent workers: one iterator per epoch, same processes
    n = 0
    for b in it:  # warm-up epoch
        if to_float is not None:
            b = to_float(b)
        n += len(b["index"])
    inner = getattr(loader, "_iterator", None)
    workers = [w.pid for w in getattr(inner, "_workers", [])] if inner is not None else []
    pids = [os.getpid(), *workers]
    n, wall, cpu = 0, 0.0, 0.0
    checksum = 0.0
    for _ in range(epochs):
        if cache == "cold":
            _evict(files)
        cpu0, t0 = _cpu_seconds(pids), time.perf_counter()
        for b in loader:
            if to_float is not None:
                b = to_float(b)
            n += len(b["index"])
            checksum += float(b["hr"].reshape(-1)[::4096].sum())  # touch the data
        wall += time.perf_counter() - t0
        cpu += _cpu_seconds(pids) - cpu0
    return {
        "loader": name,
        "num_workers": getattr(loader, "num_workers", 0),
        "threads": 1 if name == "zarr-thread" else 0,
        "cache": cache,
        "samples": n,
        "epochs": epochs,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "samples_per_s": round(n / wall, 1),
        "samples_per_cpu_s": round(n / cpu, 1) if cpu > 0 else None,
        "processes": len(pids),
    }


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, help="use this store's hr and lr/bicubic-pil_16 (default: build one)")
    ap.add_argument("--n", type=int, default=4096, help="samples (CelebA has 5,340 here)")
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", default="0,1,2", help="comma-separated DataLoader worker counts")
    ap.add_argument("--cache", default="warm,cold", help="warm, cold or both (comma-separated)")
    ap.add_argument("--image-codec", default=None, help="override the store's image codec (store.CODECS key, e.g. none)")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration (after 1 warm-up)")
    ap.add_argument("--threads", type=int, default=1, help="torch/cv2 threads in the main process")
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: a temp dir, removed)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "loader.json")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    load0 = list(os.getloadavg())
    tmp = Path(tempfile.mkdtemp(prefix="facesr-bench-", dir=args.tmp))
    try:
        t = time.perf_counter()
        if args.store:
            st = FaceStore.open(args.store)
            n = min(args.n, st.n)
            faces = st.read("hr", slice(0, n))
            source = f"store {args.store} (first {n} rows)"
            store_path = tmp / "bench.zarr"  # re-pack into a single-split store of exactly these faces
            st = build_store(store_path, faces, args.chunk, args.image_codec)
        else:
            faces, source = load_faces(args.n)
            store_path = tmp / "bench.zarr"
            st = build_store(store_path, faces, args.chunk, args.image_codec)
        pngs = write_pngs(tmp / "hr_png", faces)
        prep_s = time.perf_counter() - t
        n = len(faces)
        store_files, png_files = _all_files(store_path), pngs
        store_bytes = sum(p.stat().st_size for p in store_files)
        png_bytes = sum(p.stat().st_size for p in png_files)
        print(f"{n} faces from {source}; store {store_bytes / 2**20:.1f} MiB, PNGs {png_bytes / 2**20:.1f} MiB "
              f"(prepared in {prep_s:.1f} s)", flush=True)

        results = []
        worker_counts = [int(w) for w in args.workers.split(",")]
        caches = [c.strip() for c in args.cache.split(",")]
        for cache in caches:
            for nw in worker_counts:
                common = dict(num_workers=nw, persistent_workers=nw > 0)
                if nw > 0:
                    common["prefetch_factor"] = 4
                folder = DataLoader(PairedFolderDataset(pngs), batch_size=args.batch,
                                    sampler=RandomSampler(range(n), generator=torch.Generator().manual_seed(0)),
                                    **common)
                kw = dict(split="train", lr=LR_SPEC, priors=(), shuffle=True, seed=0)
                zs = DataLoader(StoreDataset(store_path, **kw), batch_size=args.batch, **common)
                zb = DataLoader(StoreDataset(store_path, batch_size=args.batch, **kw), batch_size=None, **common)
                raw_ds = StoreDataset(store_path, batch_size=args.batch, raw=True, **kw)
                zr = DataLoader(raw_ds, batch_size=None, **common)
                zr2 = DataLoader(StoreDataset(store_path, batch_size=args.batch, raw=True, **kw), batch_size=None,
                                 **common)
                for name, dl, files, conv in (
                    ("folder", folder, png_files, None),
                    ("zarr-sample", zs, store_files, None),
                    ("zarr-batch", zb, store_files, None),
                    ("zarr-raw", zr, store_files, raw_ds.to_float),
                    ("zarr-raw-gpuconv", zr2, store_files, None),
                    *([("zarr-thread", raw_ds.loader(), store_files, raw_ds.to_float)] if nw == 0 else []),
                ):
                    r = run_one(name, dl, files, cache, conv, args.epochs)
                    results.append(r)
                    print(f"  {cache:4s} workers={nw} {name:12s} {r['samples_per_s']:>9.0f} samples/s  "
                          f"{r['samples_per_cpu_s'] or 0:>9.0f} samples/CPU-s  ({r['cpu_s']:.2f} CPU-s)", flush=True)
                    del dl

        summary = []
        for cache in caches:
            for nw in worker_counts:
                rows = {r["loader"]: r for r in results if r["cache"] == cache and r["num_workers"] == nw}
                base = rows["folder"]
                for name in ("zarr-sample", "zarr-batch", "zarr-raw", "zarr-raw-gpuconv", "zarr-thread"):
                    if name not in rows:
                        continue
                    z = rows[name]
                    summary.append({
                        "cache": cache, "num_workers": nw, "zarr": name,
                        "ratio_samples_per_s": round(z["samples_per_s"] / base["samples_per_s"], 1),
                        "ratio_per_core": round(z["samples_per_cpu_s"] / base["samples_per_cpu_s"], 1)
                        if z["samples_per_cpu_s"] and base["samples_per_cpu_s"] else None,
                    })
        best = max((s for s in summary if s["ratio_per_core"]), key=lambda s: s["ratio_per_core"])
        cpu_best = max((s for s in summary if s["ratio_per_core"] and s["zarr"] != "zarr-raw-gpuconv"),
                       key=lambda s: s["ratio_per_core"])
        report = {
            "benchmark": "facesr loader: zarr StoreDataset vs BasicSR-style paired PNG folder + on-the-fly degradation",
            "settings": {
                "samples": n, "source": source, "hr": "128x128x3 uint8", "lr": LR_SPEC, "batch_size": args.batch,
                "chunk": args.chunk, "workers": worker_counts, "persistent_workers": True, "prefetch_factor": 4,
                "shuffle": "zarr: chunk order + 512-sample buffer; folder: RandomSampler",
                "main_process_threads": args.threads,
                "store_codecs": FaceStore.open(store_path).attrs.get("codecs"),
                "image_codec_override": args.image_codec,
                "png_compression": 3,
                "store_bytes": store_bytes, "png_bytes": png_bytes,
                "warmup": "one full epoch per configuration before the timed epochs (same persistent workers)",
                "timed_epochs": args.epochs,
                "cache": {"warm": "page cache holds the files (written, then read in the warm-up epoch)",
                          "cold": "posix_fadvise(DONTNEED) on every file before each timed epoch; reads go to the "
                                  "(virtual) disk, which the VM host may still cache"},
                "per_core": "samples per CPU-second of main process (all threads, getrusage) + workers (/proc) "
                            "during the timed epochs",
            },
            "machine": {
                "cpu_count": os.cpu_count(),
                "cpu_affinity": len(os.sched_getaffinity(0)),
                "cpu_model": _cpu_model(),
                "loadavg_start": load0,
                "loadavg_end": list(os.getloadavg()),
                "platform": platform.platform(),
            },
            "versions": _versions(),
            "results": results,
            "summary": summary,
            "headline": {**best, "goal_per_core": 20.0, "meets_goal": best["ratio_per_core"] >= 20.0},
            "headline_float_on_cpu": {**cpu_best, "meets_goal": cpu_best["ratio_per_core"] >= 20.0},
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"best per-core ratio {best['ratio_per_core']}× ({best['zarr']}, {best['num_workers']} workers, "
              f"{best['cache']} cache); with float conversion on the CPU {cpu_best['ratio_per_core']}× "
              f"({cpu_best['zarr']}, {cpu_best['num_workers']} workers, {cpu_best['cache']}) → {args.out}")
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _versions() -> dict:
    import numcodecs
    import PIL
    import zarr

    import facesr

    return {"python": platform.python_version(), "facesr": facesr.__version__, "torch": torch.__version__,
            "zarr": zarr.__version__, "numcodecs": numcodecs.__version__, "numpy": np.__version__,
            "opencv": cv2.__version__, "pillow": PIL.__version__}


if __name__ == "__main__":
    main()
