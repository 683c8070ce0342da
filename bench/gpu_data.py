"""Inputs of ``bench/gpu.py``: ``--prepare`` packs them here (with ``../shared``), the device reads them back.

Packed (about 40 MiB, in the git-ignored ``bench/gpu_inputs/``): ``celeba.npz`` (JPEG bytes of the train
partition + part boxes from dlib landmarks → the landmark box provider, computed here because dlib cannot
travel), ``dic.npz`` (DIC test HR PNG bytes + landmark parsing maps) and ``wheels/`` (cp312 wheels the
device lacks, fetched with ``pip download``; one that cannot be fetched is left out).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

WHEELS = ("ultralytics-opencv-headless==8.4.190", "ultralytics-thop==2.2.3", "facexlib==0.3.0", "zarr==3.1.6",
          "numcodecs==0.16.6", "donfig==0.8.1.post1", "google-crc32c==1.9.0")


def aligned(jpeg: bytes):
    """The seed-000 crop of aligned CelebA: centre 178×178 → 128 (INTER_AREA), RGB uint8."""
    import cv2

    im = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
    t = (im.shape[0] - 178) // 2
    return cv2.resize(np.ascontiguousarray(im[t : t + 178, :178]), (128, 128), interpolation=cv2.INTER_AREA)


def prepare(out: Path, n_celeba: int, n_dic: int, shared: Path, wheels: bool = True) -> dict:
    """Pack the device inputs under ``out`` (see the module docstring)."""
    import cv2

    from facesr.priors.boxes import pad_boxes
    from facesr.priors.detectors import LandmarkDetector
    from facesr.priors.landmarks import DlibLandmarker
    from facesr.priors.parsing import LandmarkParser

    out.mkdir(parents=True, exist_ok=True)
    celeba = shared / "faces" / "celeba"
    part = dict(line.split() for line in (celeba / "list_eval_partition.txt").read_text().splitlines() if line.strip())
    files = [f for f in sorted((celeba / "img_align_celeba").glob("*.jpg")) if part.get(f.name) == "0"][:n_celeba]
    jpegs = np.array([f.read_bytes() for f in files], dtype=object)
    hr = np.stack([aligned(b) for b in jpegs])
    boxes = pad_boxes(LandmarkDetector().detect(hr, DlibLandmarker()(list(hr))), 16)
    np.savez(out / "celeba.npz", jpeg=jpegs, ids=np.array([f.stem for f in files]), boxes=boxes)
    dic = sorted((shared / "benchmarks" / "celeba_test_dic" / "HR").glob("*.png"))[:n_dic]
    pngs = np.array([f.read_bytes() for f in dic], dtype=object)
    dhr = np.stack([cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for b in pngs])
    parsing = LandmarkParser().parse(dhr, DlibLandmarker()(list(dhr)))
    np.savez_compressed(out / "dic.npz", png=pngs, ids=np.array([f.stem for f in dic]), parsing=parsing)
    if wheels:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform",
               "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64", "-d", str(out / "wheels")]
        for w in WHEELS:  # one by one, so a missing one only leaves itself out
            subprocess.run([*cmd, w], capture_output=True, timeout=300)
    sizes = {p.name: p.stat().st_size for p in out.rglob("*") if p.is_file()}
    return {"files": len(sizes), "mib": round(sum(sizes.values()) / 2**20, 1), "celeba": len(files), "dic": len(dic),
            "wheels": sorted(n for n in sizes if n.endswith(".whl"))}


def install_wheels(data: Path) -> list[str]:
    wheels = sorted((data / "wheels").glob("*.whl")) if data else []
    if not wheels:
        return []
    target = Path(tempfile.mkdtemp(prefix="facesr_site_"))
    done = []
    for w in wheels:  # one by one: a wheel this Python cannot take leaves only itself out
        r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                            "--target", str(target), str(w)], check=False, capture_output=True, timeout=300)
        done.append(w.name if r.returncode == 0 else f"{w.name}: not installed")
    sys.path.insert(0, str(target))
    return done


def faces(data: Path | None, n: int, dry: bool):
    """HR (n, 128, 128, 3) uint8 and boxes (n, 16, 6): the carried CelebA, or synthetic faces in a dry run."""
    if data and (data / "celeba.npz").exists():
        z = np.load(data / "celeba.npz", allow_pickle=True)
        with ThreadPoolExecutor(8) as ex:
            hr = np.stack(list(ex.map(aligned, z["jpeg"][:n])))
        return hr, z["boxes"][:n].astype(np.float32), list(z["jpeg"][:n])
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (n, 128, 128, 3), dtype=np.uint8)
    from facesr.priors.boxes import make_boxes, pad_boxes

    sets = [np.concatenate([make_boxes([[30, 40, 55, 56], [72, 40, 97, 56]], "eye"), make_boxes([[20, 10, 108, 120]], "face"),
                            make_boxes([[50, 60, 78, 88]], "nose"), make_boxes([[40, 90, 88, 108]], "mouth")])] * n
    import cv2

    return hr, pad_boxes(sets, 16), [cv2.imencode(".jpg", h)[1].tobytes() for h in hr]


def dic_test(data: Path | None, n: int):
    import cv2

    if data and (data / "dic.npz").exists():
        z = np.load(data / "dic.npz", allow_pickle=True)
        hr = np.stack([cv2.imdecode(np.frombuffer(b, np.uint8), cv2.IMREAD_COLOR)[..., ::-1] for b in z["png"][:n]])
        return hr, z["parsing"][:n]
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (n, 128, 128, 3), dtype=np.uint8)
    parsing = np.zeros((n, 128, 128), np.uint8)
    parsing[:, 40:56, 30:98], parsing[:, 60:88, 50:78], parsing[:, 90:108, 40:88] = 3, 4, 5
    return hr, parsing
