"""Zarr codecs for the store's three kinds of array: photos, float heatmaps, class maps.

For each array kind and codec: compression ratio (raw bytes / stored bytes), write throughput (whole
array, chunk by chunk, to a local directory store, fsync not included) and read throughput (every chunk
once in random order, page cache warm, best of ``--repeat``), in MB/s of *uncompressed* data, one
thread in the caller (zarr's own codec pipeline as configured).

Arrays (N along the first axis, chunked by ``--chunk`` rows like the store):

* ``hr``: (N, 128, 128, 3) uint8, aligned CelebA crops when ``../shared/faces/celeba`` exists
  (else smooth synthetic images, stated in the JSON);
* ``heatmap``: (N, 128, 128) float16 in [0, 1]: ``facesr.priors.heatmap.render_heatmap`` (preset
  ``paper``) on the same faces, with part boxes at the aligned-CelebA template positions jittered by a
  few pixels (no detector needed) — what ``priors/heatmap`` holds; ``--synthetic-heatmap`` uses sums of
  Gaussians instead;
* ``parsing``: (N, 128, 128) uint8 class ids 0–5: nested jittered ellipses (face, brows, eyes, nose,
  lips) on background 0 — the shape of ``priors/parsing`` (synthetic).

``--store STORE`` takes all three from a built store instead (first ``--n`` usable rows of ``hr``,
``priors/heatmap``, ``priors/parsing``), i.e. the real pipeline's heatmaps and class maps.

Usage::

    python bench/codecs.py --n 2048 --out bench/results/codecs.json
    python bench/codecs.py --store stores/celeba.zarr --n 1024 --out bench/results/codecs_store.json

``checksum_cost`` in the JSON: the store's own chain per array (``facesr.data.schema.codec_chain``) with
and without its CRC32C checksum, read in alternation in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import zarr
from zarr.codecs import BloscCodec, ZstdCodec

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CODECS = {
    "none": (),
    "blosc-lz4-shuffle": (BloscCodec(cname="lz4", clevel=5, shuffle="shuffle"),),
    "blosc-lz4-bitshuffle": (BloscCodec(cname="lz4", clevel=5, shuffle="bitshuffle"),),
    "blosc-zstd-shuffle": (BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"),),
    "zstd-1": (ZstdCodec(level=1),),
    "zstd-3": (ZstdCodec(level=3),),
}
#: what the store writes per array (facesr.data.schema: codec key of the spec; +crc32c = with its checksum)
STORE_KIND = {"hr": "image", "heatmap": "float", "parsing": "dense"}
STORE_NAME = {"image": "blosc-lz4-shuffle", "float": "blosc-lz4-shuffle", "dense": "zstd-3"}


def faces(n: int) -> tuple[np.ndarray, str]:
    sys.path.insert(0, str(ROOT / "bench"))
    from loader import load_faces  # same faces as the loader benchmark

    return load_faces(n)


def real_heatmaps(hr: np.ndarray, seed: int = 0) -> np.ndarray:
    """The project's heatmap renderer on real faces, boxes at template positions ± a few pixels."""
    from facesr.priors.boxes import make_boxes
    from facesr.priors.heatmap import render_heatmap

    parts = [  # x1, y1, x2, y2, class (aligned-CelebA 128×128 layout)
        (41, 61, 58, 72, "eye"), (69, 61, 86, 72, "eye"), (38, 52, 60, 60, "eyebrows"), (67, 52, 89, 60, "eyebrows"),
        (55, 66, 72, 88, "nose"), (57, 78, 70, 88, "nosetip"), (47, 89, 80, 102, "mouth"), (48, 102, 80, 120, "chin"),
        (30, 44, 98, 122, "face"), (16, 6, 112, 126, "head"),
    ]
    rng = np.random.default_rng(seed)
    out = np.empty(hr.shape[:3], np.float16)
    base = np.array([p[:4] for p in parts], np.float32)
    cls = [p[4] for p in parts]
    for i, img in enumerate(hr):
        xyxy = np.clip(base + rng.integers(-3, 4, (1, 4)).repeat(len(parts), 0), 0, 127)
        out[i] = render_heatmap(img, make_boxes(xyxy, cls), "paper").astype(np.float16)
    return out


def heatmaps(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:128, 0:128].astype(np.float32)
    parts = [((50, 66), 6, 1.0), ((78, 66), 6, 1.0), ((64, 82), 8, 0.8), ((64, 96), 9, 0.9), ((64, 75), 30, 0.4)]
    out = np.zeros((n, 128, 128), np.float32)
    for i in range(n):
        dx, dy = rng.normal(0, 3, 2)
        for (cx, cy), s, w in parts:
            s2 = (s * rng.uniform(0.85, 1.15)) ** 2
            g = w * np.exp(-((xx - cx - dx) ** 2 + (yy - cy - dy) ** 2) / (2 * s2))
            g[g < 1e-3] = 0.0  # windows: exactly zero outside the part
            out[i] += g
    return np.clip(out, 0, 1).astype(np.float16)


def classmaps(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.zeros((n, 128, 128), np.uint8)
    for i in range(n):
        dx, dy = (int(v) for v in rng.normal(0, 3, 2))
        m = out[i]
        cv2.ellipse(m, (64 + dx, 72 + dy), (40, 52), 0, 0, 360, 1, -1)  # skin
        for sx in (-1, 1):
            cv2.ellipse(m, (64 + sx * 14 + dx, 58 + dy), (9, 3), 0, 0, 360, 2, -1)  # brows
            cv2.ellipse(m, (64 + sx * 14 + dx, 66 + dy), (6, 3), 0, 0, 360, 3, -1)  # eyes
        cv2.ellipse(m, (64 + dx, 82 + dy), (6, 9), 0, 0, 360, 4, -1)  # nose
        cv2.ellipse(m, (64 + dx, 97 + dy), (12, 5), 0, 0, 360, 5, -1)  # lips
    return out


def checksum_cost(root: Path, name: str, data: np.ndarray, chunk: int, rounds: int) -> dict:
    """The store's chain for this array with and without its CRC32C, read in alternation in the same run
    (chunk by chunk, best of ``rounds`` per chunk), so machine load hits both alike."""
    from facesr.data.schema import codec_chain

    kind = STORE_KIND[name]
    arrs = {}
    for tag, checksum in (("plain", False), ("crc32c", True)):
        path = root / f"{name}-store-{tag}.zarr"
        a = zarr.create_array(str(path), shape=data.shape, dtype=data.dtype, chunks=(chunk, *data.shape[1:]),
                              compressors=codec_chain(kind, checksum=checksum), fill_value=0)
        for s in range(0, len(data), chunk):
            a[s : s + chunk] = data[s : s + chunk]
        arrs[tag] = zarr.open_array(str(path), mode="r")
        np.asarray(arrs[tag][:])  # warm the page cache
    starts = list(range(0, len(data), chunk))
    # per chunk, the best of ``rounds`` reads, alternating the two arrays: a loaded machine disturbs single
    # reads, and the sum of per-chunk minima is what the codec chain itself costs
    per_chunk = {tag: np.full(len(starts), np.inf) for tag in arrs}
    for r in range(rounds):
        for k, s0 in enumerate(starts):
            for tag in (("plain", "crc32c") if (r + k) % 2 == 0 else ("crc32c", "plain")):
                t0 = time.perf_counter()
                arrs[tag][s0 : s0 + chunk]
                per_chunk[tag][k] = min(per_chunk[tag][k], time.perf_counter() - t0)
    best = {tag: float(v.sum()) for tag, v in per_chunk.items()}
    mb = data.nbytes / 1e6
    return {"array": name, "chain": f"{STORE_NAME[kind]} (+crc32c)", "rounds": rounds,
            "read_mb_s_plain": round(mb / best["plain"], 1), "read_mb_s_crc32c": round(mb / best["crc32c"], 1),
            "read_time_ratio_crc32c_over_plain": round(best["crc32c"] / best["plain"], 3),
            "bytes_per_chunk_added": 4}


def measure(root: Path, name: str, data: np.ndarray, codec: str, chunk: int, repeat: int) -> dict:
    path = root / f"{name}-{codec}.zarr"
    arr = zarr.create_array(str(path), shape=data.shape, dtype=data.dtype,
                            chunks=(chunk, *data.shape[1:]), compressors=CODECS[codec], fill_value=0)
    t0 = time.perf_counter()
    for s in range(0, len(data), chunk):
        arr[s : s + chunk] = data[s : s + chunk]
    write_s = time.perf_counter() - t0
    stored = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and p.name != "zarr.json")
    arr = zarr.open_array(str(path), mode="r")
    starts = list(range(0, len(data), chunk))
    order = np.random.default_rng(0).permutation(len(starts))
    np.asarray(arr[:])  # warm the page cache
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        for k in order:
            x = arr[starts[k] : starts[k] + chunk]
        best = min(best, time.perf_counter() - t0)
    assert np.array_equal(np.asarray(x), data[starts[order[-1]] : starts[order[-1]] + chunk])
    mb = data.nbytes / 1e6
    return {
        "array": name, "codec": codec, "raw_mb": round(mb, 2), "stored_mb": round(stored / 1e6, 2),
        "ratio": round(data.nbytes / stored, 2), "write_mb_s": round(mb / write_s, 1),
        "read_mb_s": round(mb / best, 1),
        "read_us_per_sample": round(best / len(data) * 1e6, 2),
    }


def recommend(results: list[dict]) -> dict:
    """Per array: the fastest-reading codec within 5 % of the best ratio, and whether the store's choice
    (Blosc-LZ4 + shuffle for images, Zstd(3) for dense) is it or close to it."""
    out = {}
    store_choice = {k: STORE_NAME[v] for k, v in STORE_KIND.items()}
    for name in store_choice:
        rows = [r for r in results if r["array"] == name]
        by = {r["codec"]: r for r in rows}
        best_ratio = max(r["ratio"] for r in rows)
        fastest_read = max(r["read_mb_s"] for r in rows)
        mine = by[store_choice[name]]
        out[name] = {
            "store_codec": store_choice[name],
            "store_ratio": mine["ratio"],
            "store_read_mb_s": mine["read_mb_s"],
            "best_ratio": {"codec": max(rows, key=lambda r: r["ratio"])["codec"], "ratio": best_ratio},
            "fastest_read": {"codec": max(rows, key=lambda r: r["read_mb_s"])["codec"], "read_mb_s": fastest_read},
        }
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--chunk", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--tmp", type=Path, default=None)
    ap.add_argument("--synthetic-heatmap", action="store_true", help="Gaussian sums instead of rendered heatmaps")
    ap.add_argument("--store", type=Path, default=None, help="take hr / priors/heatmap / priors/parsing from a store")
    ap.add_argument("--checksum-rounds", type=int, default=7, help="alternating rounds for the crc32c cost")
    ap.add_argument("--only-checksum", action="store_true", help="measure only the crc32c cost (not every codec)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "codecs.json")
    args = ap.parse_args(argv)

    load0 = list(os.getloadavg())
    hm_kind, pm_kind = "synthetic Gaussian sums", "synthetic uint8 ellipse class maps, 6 classes"
    if args.store:
        from facesr.data.store import FaceStore

        st = FaceStore.open(args.store)
        rows = st.indices(None)[: args.n]
        span = slice(0, int(rows[-1]) + 1)
        local = rows - span.start
        hr, source = st.read("hr", span)[local], f"store {args.store} ({len(rows)} usable rows)"
        hm, pm = st.read("priors/heatmap", span)[local], st.read("priors/parsing", span)[local]
        hm_kind = f"{hm.dtype} priors/heatmap of {args.store} ({st.array('priors/heatmap').attrs.get('provider', '')})"
        pm_kind = f"{pm.dtype} priors/parsing of {args.store}"
        args.n = len(rows)
    else:
        hr, source = faces(args.n)
        pm = classmaps(args.n)
    if args.store:
        pass  # heatmaps come from the store
    elif args.synthetic_heatmap:
        hm = heatmaps(args.n)
    else:
        try:
            hm = real_heatmaps(hr)
            hm_kind = "facesr.priors.heatmap.render_heatmap('paper') on the HR faces, template part boxes ±3 px"
        except ImportError:
            hm = heatmaps(args.n)
    arrays = {"hr": hr, "heatmap": hm, "parsing": pm}
    tmp = Path(tempfile.mkdtemp(prefix="facesr-codecs-", dir=args.tmp))
    results = []
    try:
        for name, data in arrays.items():
            for codec in () if args.only_checksum else CODECS:
                r = measure(tmp, name, data, codec, args.chunk, args.repeat)
                results.append(r)
                print(f"{name:8s} {codec:22s} ratio {r['ratio']:6.2f}  write {r['write_mb_s']:8.1f} MB/s  "
                      f"read {r['read_mb_s']:8.1f} MB/s  ({r['read_us_per_sample']} µs/sample)", flush=True)
        checksums = []
        for name, data in arrays.items():
            c = checksum_cost(tmp, name, data, args.chunk, args.checksum_rounds)
            checksums.append(c)
            print(f"{name:8s} {c['chain']:28s} read {c['read_mb_s_plain']:8.1f} MB/s → {c['read_mb_s_crc32c']:8.1f} "
                  f"MB/s with crc32c (time ×{c['read_time_ratio_crc32c_over_plain']})", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    import numcodecs

    import facesr

    report = {
        "benchmark": "zarr codecs for facesr store arrays",
        "settings": {
            "n": args.n, "chunk_rows": args.chunk, "hr_source": source,
            "heatmap": f"float16 in [0,1]: {hm_kind}",
            "parsing": pm_kind,
            "write": "whole array chunk by chunk to a local directory store (no fsync)",
            "read": f"each chunk once in random order, page cache warm, best of {args.repeat}",
            "units": "MB/s of uncompressed data (1 MB = 1e6 bytes)",
        },
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(), "loadavg_start": load0,
                    "loadavg_end": list(os.getloadavg())},
        "versions": {"python": platform.python_version(), "facesr": facesr.__version__, "zarr": zarr.__version__,
                     "numcodecs": numcodecs.__version__, "numpy": np.__version__},
        "results": results,
        "store_choice": recommend(results) if results else None,
        "checksum_cost": checksums,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(report["store_choice"], indent=1))
    return report


if __name__ == "__main__":
    main()
