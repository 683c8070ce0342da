"""The ``verify`` stage: is a built store complete, in range and covering its faces?

Reads the store chunk by chunk (memory stays at one chunk) and returns a JSON-able report::

    {"ok": bool, "errors": [...], "warnings": [...], "stats": {...}, "no_face": [ids], "no_boxes": [ids], ...}

Errors (``ok`` false; ``facesr priors verify`` exits 1): fewer usable samples than ``min_usable`` (a share,
default 0.9; with ``strict`` any failed sample); a planned stage with uncommitted chunks; a missing array
or a wrong shape/dtype; a usable sample with an all-black HR or LR; NaN or values outside [0, 1] in
``priors/heatmap``; class ids outside ``PARSING_CLASSES`` in ``priors/parsing``; box columns out of the image
or unknown classes; finite landmarks on failed samples.
Warnings (listed, not fatal unless ``strict``): usable faces without landmarks, without boxes, with an
all-zero heatmap or an all-background class map.

Statistic ``heatmap_argmax_on_parts``: the share of faces with boxes whose heatmap maximum lies inside a
key part box (eye, eyebrows, nose, nose tip, mouth; ``boxes.KEY_CLASSES``) -- a check that the hot
regions sit on the features.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from facesr.data import schema
from facesr.errors import StoreCorruptError

__all__ = ["MIN_USABLE", "verify_store"]

#: default share of samples that must be usable (``failure == ""``) for a store to pass
MIN_USABLE = 0.9
_HR, _LM, _BOX, _HEAT, _PAR = (schema.HR.name, schema.LANDMARKS.name, schema.BOXES.name, schema.HEATMAP.name,
                               schema.PARSING.name)


def _stage_completeness(fs, ledger, plan, errors: list[str]) -> None:
    rec = fs.attrs.get("pipeline", {})
    nchunks = len(fs.chunk_slices())
    names = plan.names() if plan is not None else list(rec)
    for name in names:
        if name in ("ingest", "verify"):
            continue
        entry = rec.get(name, {})
        key = plan[name].key if plan is not None else entry.get("key")
        trusted = bool(entry.get("complete")) and entry.get("key") == key
        done = nchunks if trusted else 0
        if ledger is not None:
            done = len(ledger.committed(name, key, nchunks, trusted))
        if done < nchunks:
            errors.append(f"stage {name}: {nchunks - done} of {nchunks} chunks not built")


def _corrupt_report(errors: list[str], warnings: list[str], corrupt: list, n: int) -> dict[str, Any]:
    return {"ok": False, "errors": errors + [str(e) for e in corrupt], "warnings": warnings,
            "corrupt": [e.context for e in corrupt], "stats": {"n": n, "corrupt_chunks": len(corrupt)},
            "no_face": [], "no_boxes": [], "zero_heatmap": [], "no_parsing": []}


def verify_store(fs, *, plan=None, ledger=None, strict: bool = False, min_usable: float = MIN_USABLE,
                 max_list: int = 50) -> dict[str, Any]:
    """Check the store ``fs`` (a :class:`FaceStore`); see the module docstring."""
    from facesr.priors.boxes import CLASS_ID, KEY_CLASSES, PART_CLASSES
    from facesr.priors.parsing import PARSING_CLASSES

    errors: list[str] = []
    warnings: list[str] = []
    _stage_completeness(fs, ledger, plan, errors)
    # Every chunk's CRC32C is checked by the reads below (one pass over the store); the first bad chunk
    # stops them, so only then is the whole store scrubbed, to list every bad chunk.
    try:
        n, s = fs.n, fs.hr_size
        ids = fs.ids
        valid = fs.valid()
        names = set(fs.names())
        lr_names = sorted(x for x in names if x.startswith(schema.LR_GROUP + "/"))
        expect = {_HR: ((n, s, s, 3), "uint8"), _LM: ((n, 68, 2), "float32"), _HEAT: ((n, s, s), None),
                  _PAR: ((n, s, s), "uint8"), _BOX: (None, "float32")}
        has_priors = any(x.startswith(schema.PRIORS_GROUP + "/") for x in names)
        present = {}
        for name, (shape, dtype) in expect.items():
            if name not in names:
                if name in (_HEAT, _PAR, _BOX) and not has_priors:
                    continue  # a data-only store (`data prepare`): no priors expected
                if name == _LM and _HEAT not in names:
                    continue
                errors.append(f"missing array {name!r}")
                continue
            arr = fs.array(name)
            if shape is not None and tuple(arr.shape) != shape:
                errors.append(f"{name}: shape {tuple(arr.shape)}, expected {shape}")
                continue
            if dtype is not None and str(arr.dtype) != dtype:
                errors.append(f"{name}: dtype {arr.dtype}, expected {dtype}")
                continue
            present[name] = arr
        if _BOX in present:
            b = present[_BOX]
            if b.ndim != 3 or b.shape[0] != n or b.shape[2] != 6:
                errors.append(f"{_BOX}: shape {tuple(b.shape)}, expected (N, K, 6)")
                present.pop(_BOX)

        key_ids = np.array(sorted(CLASS_ID[c] for c in KEY_CLASSES), np.float32)
        black_hr = []
        black_lr: dict[str, int] = {x: 0 for x in lr_names}
        no_face, no_boxes, zero_heat, no_parse, lm_on_failed = [], [], [], [], 0
        lm_out_of_range = box_bad = heat_nan = heat_range = parse_bad = 0
        on_parts = with_boxes = 0
        heat_max_sum = 0.0
        parse_fg = 0.0
        for sl in fs.chunk_slices():
            v = valid[sl]
            cid = ids[sl]
            hr = fs.read(_HR, sl)
            blk = v & (hr.reshape(len(hr), -1).max(axis=1) == 0)
            black_hr += cid[blk].tolist()
            for x in lr_names:
                lr = fs.read(x, sl)
                black_lr[x] += int((v & (lr.reshape(len(lr), -1).max(axis=1) == 0)).sum())
            lm = fs.read(_LM, sl) if _LM in present else None
            if lm is not None:
                miss = ~np.isfinite(lm).all(axis=(1, 2))
                no_face += cid[v & miss].tolist()
                lm_on_failed += int((~v & ~np.isnan(lm).all(axis=(1, 2))).sum())
                fin = lm[np.isfinite(lm)]
                lm_out_of_range += int(((fin < -s) | (fin > 2 * s)).sum())
            boxes = fs.read(_BOX, sl) if _BOX in present else None
            if boxes is not None:
                real = ~np.isnan(boxes).any(axis=2)
                nb = real.sum(axis=1)
                no_boxes += cid[v & (nb == 0)].tolist()
                rb = boxes[real]
                if len(rb):
                    bad = (rb[:, :4] < -0.5).any(axis=1) | (rb[:, [0, 2]] > s + 0.5).any(axis=1)
                    bad |= (rb[:, [1, 3]] > s + 0.5).any(axis=1) | (rb[:, 5] < 0) | (rb[:, 5] >= len(PART_CLASSES))
                    box_bad += int(bad.sum())
            heat = fs.read(_HEAT, sl) if _HEAT in present else None
            if heat is not None:
                h = heat.astype(np.float32).reshape(len(heat), s * s)
                nan = np.isnan(h)
                nan_rows = nan.any(axis=1)
                heat_nan += int(nan_rows.sum())
                if nan_rows.any():  # NaN never counts as a minimum or maximum (it is counted above)
                    hmin = np.where(nan, np.float32(np.inf), h).min(axis=1) if h.size else np.zeros(0)
                    h = np.where(nan, np.float32(-1), h)
                    hmax = np.where(nan.all(axis=1), 0.0, h.max(axis=1)) if h.size else np.zeros(0)
                else:
                    hmin = h.min(axis=1) if h.size else np.zeros(0)
                    hmax = h.max(axis=1) if h.size else np.zeros(0)
                heat_range += int(((hmin < 0) | (hmax > 1)).sum())
                zero_heat += cid[v & (hmax <= 0)].tolist()
                heat_max_sum += float(hmax[v].sum())
                if boxes is not None:
                    flat = h.argmax(axis=1)
                    yy, xx = np.divmod(flat, s)
                    px, py = xx + 0.5, yy + 0.5  # pixel centre in box coordinates (x2/y2 exclusive edges)
                    rows = v & (hmax > 0) & real.any(axis=1)  # ``real``: the (B, K) box rows that exist
                    key = real & np.isin(np.nan_to_num(boxes[..., 5], nan=-1.0), key_ids)
                    qx, qy = px[:, None], py[:, None]
                    inside = (key & (boxes[..., 0] <= qx) & (qx <= boxes[..., 2])
                              & (boxes[..., 1] <= qy) & (qy <= boxes[..., 3]))
                    with_boxes += int(rows.sum())
                    on_parts += int((rows & inside.any(axis=1)).sum())
            par = fs.read(_PAR, sl) if _PAR in present else None
            if par is not None:
                parse_bad += int((par >= len(PARSING_CLASSES)).any(axis=(1, 2)).sum())
                fg = (par > 0).reshape(len(par), -1).mean(axis=1)
                no_parse += cid[v & (fg == 0)].tolist()
                parse_fg += float(fg[v].sum())

        unread = [x for x in names if x not in present and x not in lr_names]
    except StoreCorruptError:
        return _corrupt_report(errors, warnings, fs.scrub(), fs.n)
    corrupt = fs.scrub(unread)  # arrays the checks above do not read (ids, split, failure were read already)
    if corrupt:
        return _corrupt_report(errors, warnings, corrupt, fs.n)

    nv = int(valid.sum())
    counted = [
        (len(black_hr), f"{_HR}: {len(black_hr)} usable samples are all black (e.g. {black_hr[:5]})"),
        *((c, f"{x}: {c} usable samples are all black") for x, c in black_lr.items()),
        (lm_on_failed, f"{_LM}: {lm_on_failed} failed samples have landmarks"),
        (lm_out_of_range, f"{_LM}: {lm_out_of_range} coordinates far outside the {s}x{s} crop"),
        (box_bad, f"{_BOX}: {box_bad} boxes outside the image or with unknown classes"),
        (heat_nan, f"{_HEAT}: {heat_nan} maps contain NaN"),
        (heat_range, f"{_HEAT}: {heat_range} maps outside [0, 1]"),
        (parse_bad, f"{_PAR}: {parse_bad} maps have class ids >= {len(PARSING_CLASSES)}"),
    ]
    errors += [msg for count, msg in counted if count]
    errors += _usable_errors(fs, valid, strict, min_usable)
    for label, lst in (("without landmarks", no_face), ("without part boxes", no_boxes),
                       ("with an all-zero heatmap", zero_heat), ("with an all-background parsing map", no_parse)):
        if lst:
            warnings.append(f"{len(lst)} of {nv} usable faces {label} (e.g. {', '.join(lst[:5])})")

    def coverage(missing: list, name: str) -> float | None:
        return round(1 - len(missing) / nv, 4) if nv and name in present else None

    stats = {
        "n": n,
        "usable": nv,
        "failed": n - nv,
        "usable_share": round(nv / n, 4) if n else None,
        "min_usable": float(min_usable),
        "landmarks_coverage": coverage(no_face, _LM),
        "boxes_coverage": coverage(no_boxes, _BOX),
        "heatmap_coverage": coverage(zero_heat, _HEAT),
        "parsing_coverage": coverage(no_parse, _PAR),
        "parsing_foreground_mean": round(parse_fg / nv, 4) if nv and _PAR in present else None,
        "heatmap_argmax_on_parts": round(on_parts / with_boxes, 4) if with_boxes else None,
        "heatmap_argmax_on_parts_count": [on_parts, with_boxes],
        "lr": lr_names,
    }
    ok = not errors and not (strict and warnings)
    return {
        "ok": ok,
        "errors": errors,
        "warnings": warnings,
        "stats": stats,
        "no_face": no_face[:max_list],
        "no_boxes": no_boxes[:max_list],
        "zero_heatmap": zero_heat[:max_list],
        "no_parsing": no_parse[:max_list],
    }


def _usable_errors(fs, valid: np.ndarray, strict: bool, min_usable: float) -> list[str]:
    """The usable-share rule: below ``min_usable`` (or any failure with ``strict``) is an error naming the
    most common failure reason."""
    n, nv = len(valid), int(valid.sum())
    if n == 0 or (nv == n) or (not strict and nv / n >= min_usable):
        return []
    reasons: dict[str, int] = {}
    for r in fs.failures()[~valid].tolist():
        reasons[r] = reasons.get(r, 0) + 1
    top = max(reasons, key=reasons.get) if reasons else ""
    rule = "--strict allows none" if strict and nv / n >= min_usable else f"below the {min_usable:.0%} threshold"
    return [f"only {nv} of {n} samples are usable ({nv / n:.1%}; {rule}); most common failure "
            f"({reasons.get(top, 0)}x): {top[:120]}"]
