"""``facesr data info`` and ``facesr data show``: look inside a store. Parse, call the library, render.

Lives in its own file so that ``facesr/commands/data.py`` only mounts it.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Optional

import numpy as np
import typer
from rich import box
from rich.console import Console
from rich.table import Table

def _size(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _short(v: Any, width: int = 90) -> str:
    s = v if isinstance(v, str) else json.dumps(v, default=str, ensure_ascii=False)
    return s if len(s) <= width else s[: width - 1] + "…"


def _codec_short(fs: Any, name: str) -> str:
    """``blosc-lz4+shuffle``, ``zstd-3``, ``none`` from the array's codec configuration."""
    parts = []
    for c in fs.array(name).compressors:
        d = c.to_dict()
        cfg, kind = d.get("configuration", {}), str(d.get("name", type(c).__name__)).lower()
        if kind == "blosc":
            shuf = cfg.get("shuffle", "noshuffle")
            tag = {"noshuffle": "", "shuffle": "+shuf", "bitshuffle": "+bitshuf"}.get(str(shuf), f"+{shuf}")
            parts.append(f"blosc-{cfg.get('cname')}{tag}")
        elif kind == "zstd":
            parts.append(f"zstd-{cfg.get('level')}")
        else:
            parts.append(kind)
    return ",".join(parts) or "none"


def store_summary(store: Any) -> dict[str, Any]:
    """Everything ``facesr data info`` shows, as plain data (also its ``--json`` output)."""
    from facesr.data.store import FaceStore

    fs = store if isinstance(store, FaceStore) else FaceStore.open(store)
    info = fs.info()
    fails = fs.failures()
    bad = np.flatnonzero(fails != "")
    reasons = Counter(fails[bad].tolist())
    valid = fs.valid()
    arrays = {}
    for name, a in info.arrays.items():
        raw = None
        if a["dtype"] not in ("str", "<U0") and not a["dtype"].startswith(("<U", "|S", "StringDType")):
            try:
                raw = int(np.prod(a["shape"])) * np.dtype(a["dtype"]).itemsize
            except TypeError:
                raw = None
        stored = a["stored_bytes"]
        if a["dtype"].startswith("StringDType"):
            a = {**a, "dtype": "str"}
        a = {**a, "codec_short": _codec_short(fs, name)}
        arrays[name] = {**a, "raw_bytes": raw,
                        "ratio": round(raw / stored, 2) if raw and stored else None}
    attrs = info.attrs
    return {
        "path": info.path,
        "n": info.n,
        "chunk": info.chunk,
        "chunks": len(fs.chunk_slices()),
        "splits": {s: {"samples": c, "usable": int((valid & (fs.splits == s)).sum())} for s, c in info.splits.items()},
        "failures": info.failures,
        "failure_reasons": [{"reason": r, "count": c, "first_id": str(fs.ids[bad[fails[bad] == r][0]])}
                            for r, c in reasons.most_common()],
        "arrays": arrays,
        "attrs": attrs,
    }


def info(
    store: Path = typer.Argument(..., help="The zarr store."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    reasons: int = typer.Option(5, "--reasons", help="How many failure reasons to list."),
) -> None:
    """Samples, splits, failures, arrays (shape, dtype, chunks, codec, stored size) and provenance."""
    _out = Console(highlight=False)  # created per call so COLUMNS is honoured
    s = store_summary(store)
    if json_out:
        _out.print_json(json.dumps(s, default=str))
        return
    a = s["attrs"]
    _out.print(f"[bold]{s['path']}[/]: {s['n']} samples in {s['chunks']} chunks of {s['chunk']} "
               f"(schema {a.get('schema_version')}, facesr {a.get('facesr_version')}, created {a.get('created')})")
    splits = "  ".join(f"{k} {v['samples']} ({v['usable']} usable)" for k, v in s["splits"].items())
    _out.print(f"splits: {splits}")
    if s["failures"]:
        _out.print(f"failures: {s['failures']}")
        for r in s["failure_reasons"][:reasons]:
            _out.print(f"  {r['count']:>6} × {_short(r['reason'], 100)}  (e.g. {r['first_id']})")
        more = len(s["failure_reasons"]) - reasons
        if more > 0:
            _out.print(f"  … {more} more reasons (--reasons N, or --json)")
    else:
        _out.print("failures: 0")

    t = Table(title=f"arrays (per sample; chunks of {s['chunk']} along N)", title_justify="left",
              box=box.SIMPLE_HEAD, pad_edge=False)
    for col, just in (("name", "left"), ("shape", "right"), ("dtype", "left"), ("codec", "left"),
                      ("stored", "right"), ("ratio", "right")):
        t.add_column(col, justify=just, no_wrap=True)
    for name, arr in s["arrays"].items():
        r = arr["ratio"]
        t.add_row(name, "×".join(map(str, arr["shape"][1:])) or "-", arr["dtype"], arr["codec_short"],
                  _size(arr["stored_bytes"]), "" if not r else f"{r:.2f}×" if r < 10 else f"{r:.0f}×")
    _out.print(t)
    for name, arr in s["arrays"].items():
        if arr["attrs"]:
            _out.print(f"  {name}: {_short(arr['attrs'], 200)}", soft_wrap=True)

    t = Table(title="provenance", title_justify="left", show_header=False)
    t.add_column("key")
    t.add_column("value")
    for key in ("source", "crop", "lr", "codecs", "versions", "hr_size"):
        if key in a:
            t.add_row(key, _short(a[key], 110))
    for key, v in a.items():
        if key not in ("source", "crop", "lr", "codecs", "versions", "hr_size", "schema_version", "facesr_version",
                       "created", "chunk"):
            t.add_row(key, _short(v, 110))
    _out.print(t)
    _out.print(f"next: facesr data show {store} -n 16 -o grid.png")


def show(
    store: Path = typer.Argument(..., help="The zarr store."),
    n: int = typer.Option(16, "-n", help="How many samples."),
    out: Path = typer.Option(Path("grid.png"), "-o", "--out", help="PNG to write."),
    split: Optional[str] = typer.Option(None, "--split", help="train | val | test (default: all)."),
    seed: int = typer.Option(0, "--seed", help="Which random samples."),
    lr: Optional[str] = typer.Option(None, "--lr", help="LR set, e.g. bicubic-pil:16 (default: the first)."),
    per_row: int = typer.Option(4, "--per-row", help="Samples per grid row."),
) -> None:
    """Write a labelled grid: per sample HR | LR (nearest) | heatmap overlay | parsing overlay."""
    from facesr.data.visualize import sample_grid, save_png

    _out = Console(highlight=False)
    img = sample_grid(store, n=n, split=split, seed=seed, lr=lr, per_row=per_row)
    save_png(out, img)
    _out.print(f"wrote {out} ({img.shape[1]}×{img.shape[0]}): {n} random usable samples"
               f"{' of ' + split if split else ''} (seed {seed}; fewer if the split is smaller)")
