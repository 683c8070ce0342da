"""``facesr priors status``: per stage, its key and which chunks are committed, read from the store's record
(the ``pipeline`` group attribute) and the commit markers, without the build options."""

from __future__ import annotations

import os
from typing import Any

from facesr.pipeline.lock import Ledger, state_dir

__all__ = ["pipeline_status"]


def pipeline_status(store: str | os.PathLike) -> dict[str, Any]:
    """Per stage: key, chunks done/total (from the markers), complete flag; plus the last verify verdict."""
    from facesr.data.store import FaceStore

    fs = FaceStore.open(store)
    ledger = Ledger(store)
    rec = fs.attrs.get("pipeline", {})
    nchunks = len(fs.chunk_slices())
    out: dict[str, Any] = {"store": str(store), "n": fs.n, "chunk": fs.chunk, "chunks": nchunks,
                           "state_dir": str(state_dir(store)), "stages": {}}
    for name, entry in rec.items():
        key = entry.get("key", "")
        if name in ("ingest", "verify"):
            total = 1
            done_idx = {0} if entry.get("complete") else set()
        else:
            total = nchunks
            done_idx = ledger.committed(name, key, nchunks, bool(entry.get("complete")))
        out["stages"][name] = {
            "key": key,
            "done": len(done_idx),
            "total": total,
            "pending": [i for i in range(total) if i not in done_idx],
            "complete": len(done_idx) == total,
            "deps": entry.get("deps", []),
            "outputs": entry.get("outputs", []),
        }
    v = fs.attrs.get("verify")
    if v:
        out["verify"] = {"ok": v.get("ok"), "stage_key": v.get("stage_key")}
    return out
