"""Zarr store loader vs a BasicSR-style paired folder loader, and the loader before/after a change, in one run.

What is compared (same samples, same batch size, same DataLoader settings):

* ``folder``: a map-style dataset in the manner of BasicSR's ``PairedImageDataset`` with on-the-fly
  degradation: read the HR PNG's bytes, ``cv2.imdecode``, BGR→RGB, LR made per sample with Pillow
  bicubic to 16×16 (``facesr.data.degrade``'s ``bicubic-pil``), both to float32 CHW tensors in [0, 1];
  ``RandomSampler``, ``default_collate``.
* ``zarr-raw``: ``StoreDataset`` uint8 batches through a ``DataLoader``, ``to_float`` on the CPU (counted);
  ``zarr-raw-gpuconv``: not converted (``to_float`` runs on the accelerator in training).
* ``zarr-thread``: the batches through ``ThreadLoader`` (one background thread, 0 workers only),
  ``to_float`` on the CPU; ``zarr-thread-gpuconv`` without it — the training setup.

``before_after_paired``: the training path (``zarr-thread-gpuconv``) in alternation, ``--rounds`` epochs
each: before, the current loader alone, plus checksums, plus the snapshot (= after); best and median
ratios. On a loaded machine this is the figure to read; the table rows see whatever load they ran under.

Variants of the zarr rows (``--variants``), each on its own store of the same faces:

* ``before``: the loader of git revision ``--before-rev`` (``git show REV:facesr/data/loader.py``,
  imported beside the current one) on a store without chunk checksums, read in place — "today".
* ``after``: the current loader on a store with CRC32C on every chunk, committed, and read through its
  snapshot (``FaceStore.open(path, snapshot="latest")``), as training now reads it.

One warm-up epoch precedes the ``--epochs`` timed epochs (worker start, imports and the page cache are
outside the timing). ``--cache cold`` evicts the store's / PNGs' pages with ``posix_fadvise(DONTNEED)``
before each timed epoch. Per-core throughput is samples per CPU-second: user+system time of the main
process (all its threads, getrusage) and its workers (/proc) during the timed epochs. Headlines: zarr
per-core over folder per-core at the same worker count (best zarr mode; and excluding the *-gpuconv rows),
and ``after`` over ``before`` per configuration.

Usage: ``python bench/loader.py`` (4096 CelebA faces if ../shared is there, else synthetic), e.g. with
``--workers 0 --cache warm --rounds 31 --out bench/results/loader.json``; ``--icechunk`` (icechunk importable)
compares plain / snapshot / icechunk chunk reads instead (``bench/results/loader_icechunk.json``).
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
from torch.utils.data import DataLoader, Dataset, RandomSampler

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facesr.data import schema  # noqa: E402
from facesr.data.loader import StoreDataset, to_float  # noqa: E402
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
    from facesr.data.degrade import degrade

    return degrade(hr, LR_SPEC)


def build_store(path: Path, faces: np.ndarray, chunk: int, checksum: bool = True, commit: bool = True) -> FaceStore:
    """A one-split store of ``faces`` + their LR; ``checksum=False`` writes ``hr`` and the LR without
    CRC32C (the store before checksums); ``commit`` links its snapshot, as a build does."""
    from facesr.data.schema import codec_chain

    n = len(faces)
    st = FaceStore.create(path, ids=[f"{i:06d}" for i in range(n)], splits=["train"] * n, chunk=chunk,
                          attrs={"source": {"name": "bench"}, "lr": [LR_SPEC]})
    lr = schema.lr(LR_SPEC)
    if not checksum:
        st.delete(schema.HR)
        for spec, shape in ((schema.HR, (n, 128, 128, 3)), (lr, (n, 16, 16, 3))):
            st._group.create_array(spec.name, shape=shape, dtype="uint8", chunks=(chunk, *shape[1:]),
                                   compressors=codec_chain(spec.codec, checksum=False), fill_value=0)
    else:
        st.require(lr)
    for sl in st.chunk_slices():
        st.write(schema.HR, sl.start, faces[sl])
        st.write(lr, sl.start, np.stack([degrade_lr(f) for f in faces[sl]]))
    if commit:
        st.commit()
    return st


def old_loader(rev: str):
    """``facesr.data.loader`` as it was at git revision ``rev``, imported as a separate module."""
    import importlib.util
    import subprocess

    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:facesr/data/loader.py"], check=True,
                         capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp(prefix="facesr-oldloader-")) / "loader_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("loader_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["loader_before"] = mod
    spec.loader.exec_module(mod)
    return mod


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
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
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
    n, wall, cpu, checksum = 0, 0.0, 0.0, 0.0
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
        "threads": 1 if name.startswith("zarr-thread") else 0,
        "cache": cache,
        "samples": n,
        "epochs": epochs,
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "samples_per_s": round(n / wall, 1),
        "samples_per_cpu_s": round(n / cpu, 1) if cpu > 0 else None,
        "processes": len(pids),
    }


def _zarr_loaders(variant: str, path: Path, nw: int, batch: int, common: dict, before_mod):
    """(name, loader, to_float or None) for one variant of the zarr rows."""
    if variant == "before":
        kw = dict(split="train", lr=LR_SPEC, priors=(), shuffle=True, seed=0, batch_size=batch, raw=True)
        make = lambda: before_mod.StoreDataset(path, **kw)  # noqa: E731
        conv = make().to_float
    else:
        kw = dict(split="train", lr=LR_SPEC, priors=(), shuffle=True, seed=0, batch_size=batch)
        make = lambda: StoreDataset(path, **kw)  # noqa: E731  (a path: its newest snapshot)
        conv = to_float
    rows = [("zarr-raw", DataLoader(make(), batch_size=None, **common), conv),
            ("zarr-raw-gpuconv", DataLoader(make(), batch_size=None, **common), None)]
    if nw == 0:
        rows += [("zarr-thread", make().loader(), conv), ("zarr-thread-gpuconv", make().loader(), None)]
    return rows


def paired(stores: dict[str, Path], before_mod, batch: int, rounds: int) -> list[dict]:
    """The training path (ThreadLoader, no conversion) in alternation, one epoch each per round: ``before``;
    the current loader on that same store (``loader``: the code alone); on the checksummed store read live
    (``+crc32c``); and through its snapshot (``after``). Best and median epoch, wall and CPU, over ``before``."""
    kw = dict(split="train", lr=LR_SPEC, priors=(), shuffle=True, seed=0, batch_size=batch)
    loaders = {"before": before_mod.StoreDataset(stores["before"], raw=True, **kw).loader(),
               "loader": StoreDataset(FaceStore.open(stores["before"]), **kw).loader(),
               "+crc32c": StoreDataset(FaceStore.open(stores["after"]), **kw).loader(),
               "after": StoreDataset(stores["after"], **kw).loader()}
    times: dict[str, list[tuple[float, float]]] = {v: [] for v in loaders}
    for v, dl in loaders.items():  # warm-up
        sum(len(b["index"]) for b in dl)
    for r in range(rounds):
        for v in (list(loaders) if r % 2 == 0 else list(loaders)[::-1]):
            cpu0, t0 = _cpu_seconds([os.getpid()]), time.perf_counter()
            n = sum(len(b["index"]) for b in loaders[v])
            times[v].append((time.perf_counter() - t0, _cpu_seconds([os.getpid()]) - cpu0))
    out = []
    for k, label in ((0, "wall"), (1, "cpu")):
        b = sorted(t[k] for t in times["before"])
        for v in list(loaders)[1:]:
            a = sorted(t[k] for t in times[v])
            out.append({"measure": label, "variant": v, "rounds": rounds, "samples_per_epoch": n,
                        "before_median_samples_per_s": round(n / b[len(b) // 2], 1),
                        "variant_median_samples_per_s": round(n / a[len(a) // 2], 1),
                        "over_before_best": round(b[0] / a[0], 3),
                        "over_before_median": round(b[len(b) // 2] / a[len(a) // 2], 3)})
    return out


def icechunk_compare(faces: np.ndarray, chunk: int, rounds: int, tmp: Path) -> dict:
    """Random whole-chunk reads of ``hr`` (the store's codec chain, CRC32C included) from a plain zarr folder,
    from its hard-link snapshot (:mod:`facesr.data.snapshots`) and from an icechunk repository, in
    alternation; plus the cost of making each snapshot. Needs ``icechunk`` importable."""
    import icechunk
    import zarr

    from facesr.data import snapshots
    from facesr.data.schema import codec_chain

    comp, shape = codec_chain(schema.HR.codec), (len(faces), *faces.shape[1:])
    fs = FaceStore.create(tmp / "plain.zarr", ids=[str(i) for i in range(len(faces))],
                          splits=["train"] * len(faces), chunk=chunk)
    fs.write(schema.HR, 0, faces)
    t = time.perf_counter()
    sid = snapshots.commit(tmp / "plain.zarr")["id"]
    link_s = time.perf_counter() - t
    repo = icechunk.Repository.create(icechunk.local_filesystem_storage(str(tmp / "ice")))
    session = repo.writable_session("main")
    arr = zarr.group(store=session.store).create_array(schema.HR.name, shape=shape, dtype="uint8",
                                                       chunks=(chunk, *shape[1:]), compressors=comp, fill_value=0)
    arr[:] = faces
    t = time.perf_counter()
    ice_sid = session.commit("hr")
    commit_s = time.perf_counter() - t
    arrays = {"plain": zarr.open_array(str(tmp / "plain.zarr" / schema.HR.name), mode="r"),
              "snapshot": FaceStore.open(tmp / "plain.zarr", snapshot=sid).array(schema.HR),
              "icechunk": zarr.open_array(repo.readonly_session(snapshot_id=ice_sid).store, path=schema.HR.name,
                                          mode="r")}
    starts = list(range(0, len(faces), chunk))
    order = np.random.default_rng(0).permutation(len(starts))

    def epoch(a) -> float:
        t0 = time.perf_counter()
        for k in order:
            a[starts[k] : starts[k] + chunk]
        return time.perf_counter() - t0

    times: dict[str, list[float]] = {k: [] for k in arrays}
    for a in arrays.values():
        epoch(a)  # warm the page cache
    for r in range(rounds):
        for k in (list(arrays) if r % 2 == 0 else list(arrays)[::-1]):
            times[k].append(epoch(arrays[k]))
    mb = faces.nbytes / 1e6
    out = {k: {"best_mb_s": round(mb / min(v), 1), "median_mb_s": round(mb / sorted(v)[len(v) // 2], 1)}
           for k, v in times.items()}
    return {**out, "rounds": rounds, "snapshot_link_s": round(link_s, 4), "icechunk_commit_s": round(commit_s, 4),
            "icechunk_over_plain_best": round(min(times["plain"]) / min(times["icechunk"]), 3),
            "snapshot_over_plain_best": round(min(times["plain"]) / min(times["snapshot"]), 3),
            "versions": {"icechunk": icechunk.__version__, "zarr": zarr.__version__}}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--store", type=Path, help="take the faces from this store's hr (default: CelebA / synthetic)")
    ap.add_argument("--n", type=int, default=4096, help="samples (CelebA has 5,340 here)")
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", default="0,1,2", help="comma-separated DataLoader worker counts")
    ap.add_argument("--cache", default="warm,cold", help="warm, cold or both (comma-separated)")
    ap.add_argument("--variants", default="before,after", help="before, after or both (module docstring)")
    ap.add_argument("--before-rev", default="a471a3d", help="git revision of the 'before' loader")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration (after 1 warm-up)")
    ap.add_argument("--rounds", type=int, default=15, help="alternating before/after rounds of the training path")
    ap.add_argument("--threads", type=int, default=1, help="torch/cv2 threads in the main process")
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: a temp dir, removed)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "loader.json")
    ap.add_argument("--icechunk", action="store_true", help="only compare plain / snapshot / icechunk chunk reads")
    args = ap.parse_args(argv)
    if args.icechunk:
        faces, source = load_faces(args.n)
        tmp = Path(tempfile.mkdtemp(prefix="facesr-bench-", dir=args.tmp))
        try:
            report = {"benchmark": "hr chunk reads: plain zarr folder vs its hard-link snapshot vs icechunk",
                      "source": source, "samples": len(faces), "chunk": args.chunk,
                      "machine": {"cpu_count": os.cpu_count(), "loadavg": list(os.getloadavg())},
                      **icechunk_compare(faces, args.chunk, args.rounds, tmp)}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=1))
        return report

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    load0 = list(os.getloadavg())
    variants = [v.strip() for v in args.variants.split(",")]
    before_mod = old_loader(args.before_rev) if "before" in variants else None
    tmp = Path(tempfile.mkdtemp(prefix="facesr-bench-", dir=args.tmp))
    try:
        t = time.perf_counter()
        if args.store:
            st = FaceStore.open(args.store)
            n = min(args.n, st.n)
            faces, source = st.read(schema.HR, slice(0, n)), f"store {args.store} (first {n} rows)"
        else:
            faces, source = load_faces(args.n)
        stores = {v: tmp / f"{v}.zarr" for v in variants}
        for v, path in stores.items():
            build_store(path, faces, args.chunk, checksum=v == "after", commit=v == "after")
        pngs = write_pngs(tmp / "hr_png", faces)
        prep_s = time.perf_counter() - t
        n = len(faces)
        files = {v: _all_files(p) for v, p in stores.items()}
        if "after" in stores:  # what training reads: the snapshot's links
            files["after"] += _all_files(tmp / "after.zarr.facesr")
        sizes = {v: sum(p.stat().st_size for p in _all_files(path)) for v, path in stores.items()}
        png_bytes = sum(p.stat().st_size for p in pngs)
        print(f"{n} faces from {source}; stores {sizes} bytes, PNGs {png_bytes / 2**20:.1f} MiB "
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
                runs = [("folder", "-", folder, pngs, None)]
                # interleave the variants configuration by configuration, so load drifts hit both alike
                per_variant = {v: _zarr_loaders(v, stores[v], nw, args.batch, common, before_mod) for v in variants}
                for k in range(len(per_variant[variants[0]])):
                    for v in variants:
                        name, dl, conv = per_variant[v][k]
                        runs.append((name, v, dl, files[v], conv))
                for name, variant, dl, fls, conv in runs:
                    r = {**run_one(name, dl, fls, cache, conv, args.epochs), "variant": variant}
                    results.append(r)
                    print(f"  {cache:4s} workers={nw} {variant:6s} {name:19s} {r['samples_per_s']:>9.0f} samples/s  "
                          f"{r['samples_per_cpu_s'] or 0:>9.0f} samples/CPU-s  ({r['cpu_s']:.2f} CPU-s)", flush=True)
                del runs, per_variant

        pairs = paired(stores, before_mod, args.batch, args.rounds) if set(variants) == {"before", "after"} else []
        for p in pairs:
            print(f"paired {p['measure']:4s} {p['variant']:8s} over before ({p['rounds']} rounds): best "
                  f"{p['over_before_best']}×, median {p['over_before_median']}×", flush=True)
        summary, change = [], []
        for cache in caches:
            for nw in worker_counts:
                rows = [r for r in results if r["cache"] == cache and r["num_workers"] == nw]
                base = next(r for r in rows if r["loader"] == "folder")
                for z in rows:
                    if z["loader"] == "folder":
                        continue
                    summary.append({
                        "cache": cache, "num_workers": nw, "zarr": z["loader"], "variant": z["variant"],
                        "ratio_samples_per_s": round(z["samples_per_s"] / base["samples_per_s"], 1),
                        "ratio_per_core": round(z["samples_per_cpu_s"] / base["samples_per_cpu_s"], 1)
                        if z["samples_per_cpu_s"] and base["samples_per_cpu_s"] else None,
                    })
                    other = next((r for r in rows if r["loader"] == z["loader"] and r["variant"] == "before"), None)
                    if z["variant"] == "after" and other is not None:
                        change.append({
                            "cache": cache, "num_workers": nw, "zarr": z["loader"],
                            "before_samples_per_s": other["samples_per_s"], "after_samples_per_s": z["samples_per_s"],
                            "after_over_before": round(z["samples_per_s"] / other["samples_per_s"], 3),
                            "after_over_before_per_core": round(z["samples_per_cpu_s"] / other["samples_per_cpu_s"], 3)
                            if z["samples_per_cpu_s"] and other["samples_per_cpu_s"] else None,
                        })
        now = [s for s in summary if s["ratio_per_core"] and s["variant"] == variants[-1]]
        best = max(now, key=lambda s: s["ratio_per_core"])
        cpu_best = max((s for s in now if not s["zarr"].endswith("gpuconv")), key=lambda s: s["ratio_per_core"])
        report = {
            "benchmark": "facesr loader: zarr StoreDataset vs BasicSR-style paired PNG folder + on-the-fly "
                         "degradation; the loader before/after (checksums + snapshot reads) in the same run",
            "settings": {
                "samples": n, "source": source, "hr": "128x128x3 uint8", "lr": LR_SPEC, "batch_size": args.batch,
                "chunk": args.chunk, "workers": worker_counts, "persistent_workers": True, "prefetch_factor": 4,
                "shuffle": "zarr: chunk order + 512-sample buffer; folder: RandomSampler",
                "main_process_threads": args.threads, "variants": variants, "before_rev": args.before_rev,
                "store_codecs": {v: FaceStore.open(p).attrs.get("codecs") for v, p in stores.items()},
                "checksums": {v: v == "after" for v in variants},
                "png_compression": 3, "store_bytes": sizes, "png_bytes": png_bytes,
                "warmup": "one full epoch per configuration before the timed epochs (same persistent workers)",
                "timed_epochs": args.epochs,
                "cache": {"warm": "page cache holds the files (written, then read in the warm-up epoch)",
                          "cold": "posix_fadvise(DONTNEED) on every file before each timed epoch; reads go to the "
                                  "(virtual) disk, which the VM host may still cache"},
                "per_core": "samples per CPU-second of main process (all threads, getrusage) + workers (/proc) "
                            "during the timed epochs",
            },
            "machine": {"cpu_count": os.cpu_count(), "cpu_affinity": len(os.sched_getaffinity(0)),
                        "cpu_model": _cpu_model(), "loadavg_start": load0, "loadavg_end": list(os.getloadavg()),
                        "platform": platform.platform()},
            "versions": _versions(),
            "results": results,
            "summary": summary,
            "before_after": change,
            "before_after_paired": pairs,
            "headline": {**best, "goal_per_core": 20.0, "meets_goal": best["ratio_per_core"] >= 20.0},
            "headline_float_on_cpu": {**cpu_best, "meets_goal": cpu_best["ratio_per_core"] >= 20.0},
        }
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        for c in change:
            print(f"after/before {c['zarr']:19s} {c['cache']} workers={c['num_workers']}: "
                  f"{c['after_over_before']:.3f}× samples/s, {c['after_over_before_per_core']}× per core")
        print(f"best per-core ratio vs folder {best['ratio_per_core']}× ({best['zarr']}, {best['num_workers']} "
              f"workers, {best['cache']} cache); float on the CPU {cpu_best['ratio_per_core']}× → {args.out}")
        return report
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cpu_model() -> str:
    models = [ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
              if ln.startswith("model name")] if Path("/proc/cpuinfo").is_file() else []
    return models[0] if models else platform.processor()


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
