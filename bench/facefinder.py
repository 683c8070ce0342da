"""Face finder recall and cost: HOG, the CNN, and the HOG+CNN chain, on real in-the-wild photos, full size and
shrunk so that faces are 16-24 px; and the CNN → HOG box calibration with the landmark error it leaves.

Sets (``--shared``, default ``../shared/faces``): ``helen_smoke`` (62 loosely cropped photos, 99-545 px) and
``utkface_smoke`` (200×200 crops; ``--utk-limit`` of the 468, every k-th). Each photo shows one face.

* ``full``: every photo as it is. Found = the detector returns a face.
* ``alone``: each photo whose face is known (HOG's box, else the calibrated CNN's) shrunk with ``INTER_AREA``
  so the face is 16-24 px (uniform, seeded), the face centred on a 128×128 canvas (beyond the photo its edge
  is replicated). ``group``: the shrunk photos six to a frame (3×2 cells of 72×96 px: 216×192 frames; the
  CNN then runs on every frame, upsampled within :data:`~facesr.priors.facefinder.CNN_PIXELS_EXHAUSTIVE`
  pixels (×4 here), as `facesr sr` does). Found = a detected box
  with IoU ≥ 0.3 against the shrunk known box. Shrunk copies exist only in memory.
* ``calibration``: on the faces both detectors find (IoU ≥ 0.3), the least-squares (ax, ay, s) of
  :data:`facesr.priors.facefinder.CNN_TO_HOG`, and the mean 68-point distance (px, and % of the eye
  distance) between the predictor on the HOG box and on the CNN box, raw and calibrated.

Times are process CPU seconds per image (the machine is shared; wall time is not meaningful). Usage::

    python bench/facefinder.py                 # → bench/results/facefinder.json
    python bench/facefinder.py --utk-limit 48  # the recorded run (~16 min of one contended core)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))


def _images(folder: Path, limit: int) -> list[tuple[str, np.ndarray]]:
    from facesr.data.images import IMAGE_EXTENSIONS, read_image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    if limit and len(files) > limit:
        files = files[:: max(1, len(files) // limit)][:limit]
    return [(p.name, read_image(p)) for p in files]


def _timed(fn, *args):
    c0 = time.process_time()
    out = fn(*args)
    return out, time.process_time() - c0


def _best(faces, ref, thr=0.3):
    from facesr.priors.facefinder import iou

    return max((f for f in faces if iou(f.box, ref) >= thr), key=lambda f: iou(f.box, ref), default=None)


def run_full(images, finder):
    """Per photo: HOG faces, CNN faces (raw boxes), their CPU seconds."""
    rows = []
    for name, img in images:
        hog, th = _timed(finder.hog, img)
        cnn, tc = _timed(lambda im: finder.cnn(im, calibrated=False), img)
        rows.append({"name": name, "shape": img.shape[:2], "hog": hog, "cnn": cnn, "t_hog": th, "t_cnn": tc})
    return rows


def calibrate(sets, landmarker):
    """(ax, ay, s) and the landmark error on faces both detectors find."""
    from facesr.priors.facefinder import calibrate_box, iou

    pairs = []
    for images, rows in sets:
        for (_, img), r in zip(images, rows):
            if r["hog"] and r["cnn"]:
                h = max(r["hog"], key=lambda f: f.side)
                c = max(r["cnn"], key=lambda f: iou(f.box, h.box))
                if iou(c.box, h.box) >= 0.3:
                    pairs.append((img, np.array(h.box, float), np.array(c.box, float)))
    hb = np.stack([p[1] for p in pairs])
    cb = np.stack([p[2] for p in pairs])
    w = cb[:, 2] - cb[:, 0]
    ax = float(np.mean(((hb[:, 0] + hb[:, 2]) - (cb[:, 0] + cb[:, 2])) / 2 / w))
    ay = float(np.mean(((hb[:, 1] + hb[:, 3]) - (cb[:, 1] + cb[:, 3])) / 2 / w))
    s = float(np.sum((hb[:, 2] - hb[:, 0]) * w) / np.sum(w * w))
    calib = (round(ax, 4), round(ay, 4), round(s, 4))
    err_raw, err_cal, iod = [], [], []
    for img, h, c in pairs:
        ph = landmarker.points_in_box(img, h)
        pr = landmarker.points_in_box(img, c)
        pc = landmarker.points_in_box(img, calibrate_box(c, calib))
        err_raw.append(np.linalg.norm(pr - ph, axis=1).mean())
        err_cal.append(np.linalg.norm(pc - ph, axis=1).mean())
        iod.append(np.linalg.norm(ph[36:42].mean(0) - ph[42:48].mean(0)))
    er, ec, d = np.array(err_raw), np.array(err_cal), np.array(iod)
    return {"faces_both_find": len(pairs), "cnn_to_hog": list(calib),
            "landmark_err_px_raw": round(float(er.mean()), 2), "landmark_err_px_calibrated": round(float(ec.mean()), 2),
            "landmark_err_eye_pct_raw": round(float((er / d).mean() * 100), 2),
            "landmark_err_eye_pct_calibrated": round(float((ec / d).mean() * 100), 2),
            "face_side_px_median": round(float(np.median(hb[:, 2] - hb[:, 0])), 1)}


def summarise_full(rows, calib):
    from facesr.priors.facefinder import calibrate_box

    hog = sum(bool(r["hog"]) for r in rows)
    cnn = sum(bool(r["cnn"]) for r in rows)
    chain = sum(bool(r["hog"] or r["cnn"]) for r in rows)
    t_chain = [r["t_hog"] + (0 if r["hog"] else r["t_cnn"]) for r in rows]
    refs = []
    for r in rows:  # the known face of each photo, for the shrunk sets
        if r["hog"]:
            refs.append(max(r["hog"], key=lambda f: f.side).box)
        elif r["cnn"]:
            refs.append(calibrate_box(max(r["cnn"], key=lambda f: f.side).box, calib))
        else:
            refs.append(None)
    out = {"photos": len(rows), "found_hog": hog, "found_cnn": cnn, "found_hog+cnn": chain,
           "missed_by_all": [r["name"] for r in rows if not (r["hog"] or r["cnn"])],
           "cpu_s_per_image": {"hog": round(float(np.mean([r["t_hog"] for r in rows])), 3),
                               "cnn": round(float(np.mean([r["t_cnn"] for r in rows])), 3),
                               "hog+cnn": round(float(np.mean(t_chain)), 3)}}
    return out, refs


def shrunk(images, refs, rng):
    """(image, box) with the face 16-24 px on a 128 canvas; photos without a known face are skipped."""
    import cv2

    out = []
    for (_, img), ref in zip(images, refs):
        if ref is None:
            continue
        side = max(ref[2] - ref[0], ref[3] - ref[1])
        f = rng.uniform(16, 24) / side
        h, w = img.shape[:2]
        nh, nw = max(1, round(h * f)), max(1, round(w * f))
        fx, fy = nw / w, nh / h
        small = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA)
        c = 128  # the face centred on a c×c canvas; beyond the photo its edge is replicated
        box = [(ref[0] + 0.5) * fx - 0.5, (ref[1] + 0.5) * fy - 0.5, (ref[2] + 0.5) * fx - 0.5, (ref[3] + 0.5) * fy - 0.5]
        dx, dy = round(c / 2 - (box[0] + box[2]) / 2), round(c / 2 - (box[1] + box[3]) / 2)
        m = np.float32([[1, 0, dx], [0, 1, dy]])
        canvas = cv2.warpAffine(small, m, (c, c), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
        box = (box[0] + dx, box[1] + dy, box[2] + dx, box[3] + dy)
        out.append((canvas, box))
    return out


def group_frames(alone, per=6, cell=(96, 72)):
    """The shrunk photos six to a frame (3×2 cells of ``cell`` (h, w), centre crops of the 128 canvases)."""
    frames = []
    ch, cw = cell
    for i in range(0, len(alone) - per + 1, per):
        frame = np.zeros((2 * ch, 3 * cw, 3), np.uint8)
        boxes = []
        for k, (img, box) in enumerate(alone[i:i + per]):
            r, q = divmod(k, 3)
            y0, x0 = (128 - ch) // 2, (128 - cw) // 2
            frame[r * ch:(r + 1) * ch, q * cw:(q + 1) * cw] = img[y0:y0 + ch, x0:x0 + cw]
            boxes.append((box[0] - x0 + q * cw, box[1] - y0 + r * ch, box[2] - x0 + q * cw, box[3] - y0 + r * ch))
        frames.append((frame, boxes))
    return frames


def recall_shrunk(alone, frames, finders):
    res = {}
    for name, finder in finders.items():
        if name.endswith(" exhaustive"):
            continue
        found, t = 0, 0.0
        for img, box in alone:
            faces, dt = _timed(finder.find, img)
            t += dt
            found += _best(faces, box) is not None
        gfound, gt, gtot = 0, 0.0, 0
        group_finder = finders.get(name + " exhaustive", finder)
        for img, boxes in frames:
            faces, dt = _timed(group_finder.find, img)
            gt += dt
            gtot += len(boxes)
            gfound += sum(_best(faces, b) is not None for b in boxes)
        res[name] = {"alone_found": found, "alone_faces": len(alone), "alone_recall": round(found / max(1, len(alone)), 3),
                     "alone_cpu_s_per_image": round(t / max(1, len(alone)), 3),
                     "group_found": gfound, "group_faces": gtot, "group_recall": round(gfound / max(1, gtot), 3),
                     "group_cpu_s_per_frame": round(gt / max(1, len(frames)), 3)}
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=ROOT.parent / "shared" / "faces")
    ap.add_argument("--utk-limit", type=int, default=96)
    ap.add_argument("--helen-limit", type=int, default=0, help="0: all 62")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "facefinder.json")
    args = ap.parse_args(argv)

    from facesr.priors.facefinder import FaceFinder
    from facesr.priors.landmarks import DlibLandmarker
    from facesr.runtime import offline_env

    offline_env()
    finder = FaceFinder("hog+cnn")
    lm = DlibLandmarker(fallback=None)
    sets = {"helen_smoke": _images(args.shared / "helen_smoke", args.helen_limit),
            "utkface_smoke": _images(args.shared / "utkface_smoke", args.utk_limit)}
    full = {k: run_full(v, finder) for k, v in sets.items()}
    calib = calibrate([(sets[k], full[k]) for k in sets], lm)
    cal = tuple(calib["cnn_to_hog"])
    rng = np.random.default_rng(args.seed)
    result = {"bench": "face finder: HOG, CNN (MMOD), HOG+CNN; recall and CPU s per image",
              "timing": "process CPU seconds (machine shared by other jobs: wall time not used)",
              "loadavg": [round(x, 2) for x in os.getloadavg()], "calibration": calib, "sets": {}}
    # one face per photo: the CNN only where HOG misses; group frames: the CNN on every frame (as `facesr sr`)
    finders = {"hog": FaceFinder("hog"), "hog+cnn": FaceFinder("hog+cnn", calibration=cal),
               "hog+cnn exhaustive": FaceFinder("hog+cnn", exhaustive=True, calibration=cal)}
    for k, images in sets.items():
        summary, refs = summarise_full(full[k], cal)
        alone = shrunk(images, refs, rng)
        frames = group_frames(alone)
        summary["shrunk_16_24px"] = recall_shrunk(alone, frames, finders)
        result["sets"][k] = summary
        print(k, json.dumps(summary), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("calibration", json.dumps(calib))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
