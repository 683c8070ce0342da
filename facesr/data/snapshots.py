"""Immutable per-build snapshots of a local store, and the stamp that says a build finished.

State lives beside the store, in ``<store>.facesr/`` (shared with :mod:`facesr.pipeline.lock`)::

    <store>.facesr/
        building                 JSON {holder, started}: a build began changing the store and has not committed
        snapshots/<id>/          a hard link to every file of the store at the commit (no data copied)
        snapshots/<id>.json      the stamp (id, created, files, bytes) -- written last: no stamp, no snapshot
        snapshots/<id>.readers   ``flock(LOCK_SH)``-ed by every process reading that snapshot

Rules:

1. A build writes ``building`` when it takes the store's lock and removes it when it commits; ``kill -9``
   leaves it, so an interrupted build is seen as such. A build that failed before changing anything
   (same files as the last snapshot) clears it again.
2. :func:`commit` links the store into a new snapshot. zarr's ``LocalStore`` writes every file to a
   temporary name and renames it over the old one, and deleting an array unlinks files: a later build
   only replaces *directory entries* of the live store, never an inode a snapshot links, so a snapshot
   never changes, and a training reading it is neither changed nor crashed by a rebuild.
3. Readers (training, evaluation) open the newest snapshot (or a pinned id) and hold a shared lock on its
   ``.readers`` file while they live; :func:`gc` keeps the newest ``KEEP`` snapshots and every one with
   a reader.
4. A snapshot id is ``<UTC time of the commit, YYYYmmddTHHMMSSZ>-<first 8 hex of sha256 over every file's
   (relative path, inode, size, mtime_ns)>``, e.g. ``20261201T210455Z-3f9a1c2b``.

Snapshots need a local file system with hard links (any POSIX one, NFS included). A store at a URL
(``s3://`` …) has **no snapshots**: its readers see the live store, and asking for a pinned snapshot id
is a :class:`~facesr.errors.StoreError`. Rule 1 holds there too: ``<url>.facesr/building`` is an object
on the same storage, readers refuse the store while it exists, and a failed build that changed nothing
(same listing digest -- key, size, ETag -- as at the last commit, ``<url>.facesr/committed.json``)
clears it again. Whether a build is *running* there is its lease's business (:mod:`facesr.pipeline.lock`).
"""

from __future__ import annotations

import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

from facesr.data.storage import Location, locate
from facesr.errors import StoreError, StoreIncompleteError, StoreNotFoundError

__all__ = ["KEEP", "ReaderPin", "begin", "building", "build_running", "clear_if_unchanged", "commit",
           "commit_url", "gc", "list_snapshots", "resolve", "state_dir", "state_url"]

Where = str | os.PathLike | Location

KEEP = 3


def state_dir(store_path: str | os.PathLike) -> Path:
    """The state folder of a store: ``<store>.facesr`` beside it."""
    p = Path(store_path).absolute()
    return p.with_name(p.name + ".facesr")


def state_url(loc: Location) -> tuple[Any, str]:
    """(fsspec filesystem, path in it) of a URL store's state folder: ``<url>.facesr`` on the same storage."""
    fs, root = loc.filesystem()
    return fs, f"{root.rstrip('/')}.facesr"


def _url(store: Where) -> Location | None:
    """The store's Location when it is at a URL, else None (a local path)."""
    loc = locate(store)
    return None if loc.is_local else loc


def _local(store: Where) -> Path:
    """The local folder of a store known not to be at a URL."""
    return locate(store).path


def _snap_root(store: Path) -> Path:
    return state_dir(store) / "snapshots"


def _atomic_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _files(root: Path) -> list[tuple[str, os.stat_result]]:
    out = []
    for dirpath, _, names in os.walk(root):
        for n in names:
            if n.endswith(".partial"):  # a zarr write in flight
                continue
            p = Path(dirpath) / n
            out.append((p.relative_to(root).as_posix(), p.stat()))
    return sorted(out, key=lambda t: t[0])


def _digest(files: list[tuple[str, os.stat_result]]) -> str:
    h = hashlib.sha256()
    for rel, st in files:
        h.update(f"{rel}\0{st.st_ino}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def begin(store: Where, holder: str) -> None:
    """Mark the store as being built (rule 1)."""
    data = {"holder": holder, "started": _now()}
    if (loc := _url(store)) is not None:
        fs, base = state_url(loc)
        fs.pipe_file(f"{base}/building", json.dumps(data).encode())  # one PUT: atomic
        return
    _atomic_json(state_dir(_local(store)) / "building", data)


def building(store: Where) -> dict[str, Any] | None:
    """The ``building`` marker's content, or None when no build is running or was interrupted."""
    try:
        if (loc := _url(store)) is not None:
            fs, base = state_url(loc)
            return json.loads(fs.cat_file(f"{base}/building"))
        return json.loads((state_dir(_local(store)) / "building").read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"holder": "unknown"}


def build_running(store: Where) -> bool:
    """Whether a build holds the store's lock right now (as opposed to one that died)."""
    if (loc := _url(store)) is not None:
        from facesr.pipeline.lock import lease_held  # the lease is the lock's business

        return lease_held(loc)
    return _lock_refused(state_dir(_local(store)) / "lock", fcntl.LOCK_SH, other_errors=False)


def _clear_building(store: Where) -> None:
    if (loc := _url(store)) is not None:
        fs, base = state_url(loc)
        try:
            fs.rm_file(f"{base}/building")
        except FileNotFoundError:
            pass
        return
    (state_dir(_local(store)) / "building").unlink(missing_ok=True)


def _url_digest(loc: Location) -> str | None:
    """sha256 over every object of a URL store (key, size, ETag or modification time); None if absent."""
    fs, root = loc.filesystem()
    root = root.rstrip("/")
    try:
        found = fs.find(root, detail=True)
    except FileNotFoundError:
        return None
    if not found:
        return None
    h = hashlib.sha256()
    for name in sorted(found):
        info = found[name]
        version = info.get("ETag") or info.get("mtime") or info.get("LastModified") or info.get("created") or ""
        h.update(f"{name[len(root):]}\0{info.get('size')}\0{version}\n".encode())
    return h.hexdigest()


def commit_url(store: Where) -> dict[str, Any]:
    """The end of a build of a URL store: record its listing digest and clear ``building`` (no snapshot)."""
    loc = _url(store)
    if loc is None:
        raise StoreError(f"{store} is a local store; use commit()")
    fs, base = state_url(loc)
    info = {"digest": _url_digest(loc), "created": _now()}
    fs.pipe_file(f"{base}/committed.json", json.dumps(info).encode())
    _clear_building(loc)
    return info


def list_snapshots(store: Where) -> list[dict[str, Any]]:
    """Stamps of the complete snapshots, oldest first; each gains ``readers`` (True while one is held).
    A URL store has none."""
    if _url(store) is not None:
        return []
    root = _snap_root(_local(store))
    if not root.is_dir():
        return []
    out = []
    for stamp in root.glob("*.json"):
        try:
            info = json.loads(stamp.read_text())
        except (OSError, ValueError):
            continue
        if (root / info.get("id", "")).is_dir():
            out.append({**info, "readers": _has_readers(root / f"{info['id']}.readers")})
    # ``seq`` orders commits made within one second (ids then share their time and differ only in hex)
    return sorted(out, key=lambda s: (s.get("seq", 0), s["created"], s["id"]))


def commit(store: Where, keep: int = KEEP) -> dict[str, Any]:
    """Link the live store into a new snapshot, stamp it, clear ``building`` and collect old snapshots
    (a URL store: :func:`commit_url`, no snapshot)."""
    if _url(store) is not None:
        return commit_url(store)
    store = _local(store)
    files = _files(store)
    digest = _digest(files)
    latest = (list_snapshots(store) or [None])[-1]
    if latest is not None and latest.get("digest") == digest:  # nothing changed since the last commit
        (state_dir(store) / "building").unlink(missing_ok=True)
        return latest
    created = _now()
    sid = f"{created.replace('-', '').replace(':', '').replace('+0000', 'Z')}-{digest[:8]}"
    root = _snap_root(store)
    tmp = root / f".{sid}.{os.getpid()}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, _ in files:
        dst = tmp / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.link(store / rel, dst)
    final = root / sid
    if final.exists():  # the same second and content: keep the existing one
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        os.replace(tmp, final)
    info = {"id": sid, "seq": int(latest.get("seq", 0)) + 1 if latest else 1, "created": created, "digest": digest,
            "files": len(files),
            "bytes": int(sum(st.st_size for _, st in files))}
    _atomic_json(root / f"{sid}.json", info)
    (state_dir(store) / "building").unlink(missing_ok=True)
    gc(store, keep)
    return info


def clear_if_unchanged(store: Where) -> bool:
    """Remove ``building`` when the store's files are those of its last snapshot (a build that failed
    before writing anything); returns whether it did. At a URL: its objects are those of the last commit,
    or there is no store at all."""
    if (loc := _url(store)) is not None:
        fs, base = state_url(loc)
        now = _url_digest(loc)
        try:
            then = json.loads(fs.cat_file(f"{base}/committed.json")).get("digest")
        except (FileNotFoundError, ValueError):
            then = None
        if now is not None and now != then:
            return False
        _clear_building(loc)
        return True
    store = _local(store)
    snaps = list_snapshots(store)
    if not store.is_dir() or not snaps or snaps[-1].get("digest") != _digest(_files(store)):
        return False
    (state_dir(store) / "building").unlink(missing_ok=True)
    return True


def gc(store: str | os.PathLike, keep: int = KEEP) -> list[str]:
    """Delete snapshots beyond the newest ``keep`` that no process is reading; returns the ids removed."""
    snaps = list_snapshots(store)
    root = _snap_root(Path(store))
    gone = []
    for s in snaps[: max(0, len(snaps) - keep)]:
        if s["readers"]:
            continue
        (root / f"{s['id']}.json").unlink(missing_ok=True)  # unstamp first: never a stamped half-snapshot
        shutil.rmtree(root / s["id"], ignore_errors=True)
        (root / f"{s['id']}.readers").unlink(missing_ok=True)
        gone.append(s["id"])
    return gone


def resolve(store: Where, snapshot: str = "latest") -> tuple[Path | Location, str | None]:
    """(folder to read, snapshot id) for a reader (rule 3).

    ``"latest"``: the newest snapshot; a store with a ``building`` marker is refused with
    :class:`StoreIncompleteError` (running or interrupted); a store never committed by a build (made by
    hand, or copied without its state folder) is read as it is, with id None. Any other value pins that
    snapshot id. A URL store has no snapshots: ``"latest"`` is the live store (``building`` refused alike),
    any id is a :class:`StoreError`.
    """
    url = _url(store)
    if url is not None and snapshot != "latest":
        raise StoreError(f"{url} is at a URL, where facesr keeps no snapshots; it has no snapshot {snapshot!r}",
                         hint="read the live store (snapshot='latest'), or copy it to a local folder to get snapshots",
                         url=str(url))
    store = url if url is not None else _local(store)
    if snapshot != "latest":
        path = _snap_root(store) / snapshot
        if not (path.is_dir() and (_snap_root(store) / f"{snapshot}.json").is_file()):
            have = ", ".join(s["id"] for s in list_snapshots(store)) or "none"
            raise StoreNotFoundError(f"{store} has no snapshot {snapshot!r} (it has: {have})",
                                     hint=f"see `facesr data info {store}`", path=str(store))
        return path, snapshot
    marker = building(store)
    if marker is not None:
        who = marker.get("holder", "a build")
        if build_running(store):
            raise StoreIncompleteError(f"{store} is being built by {who}; wait for it to finish",
                                       hint="or pass a snapshot id from `facesr data info` to read an older build",
                                       path=str(store))
        raise StoreIncompleteError(f"{store}: its build ({who}, started {marker.get('started')}) was interrupted "
                                   "or failed",
                                   hint="rerun the same `facesr data prepare` / `facesr priors build` to finish it",
                                   path=str(store))
    snaps = list_snapshots(store)
    if not snaps:
        return store, None
    return _snap_root(store) / snaps[-1]["id"], snaps[-1]["id"]


class ReaderPin:
    """A shared lock on a snapshot's ``.readers`` file, held while this object lives (rule 3)."""

    def __init__(self, store: str | os.PathLike, snapshot: str) -> None:
        path = _snap_root(Path(store)) / f"{snapshot}.readers"
        try:
            self._fd: int | None = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
        except OSError:  # someone else's store on a read-only share: read without a pin (gc may then collect
            self._fd = None  # it, but only after KEEP newer builds)
            return
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def __getstate__(self) -> dict:  # a pickled copy (a spawned worker) must not close our descriptor
        return {"_fd": None}

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.release()


def _has_readers(path: Path) -> bool:
    # any flock failure counts as a reader: gc must never collect a snapshot it cannot prove unread
    return _lock_refused(path, fcntl.LOCK_EX, other_errors=True)


def _lock_refused(path: Path, op: int, *, other_errors: bool) -> bool:
    """Whether a non-blocking ``flock(op)`` on ``path`` is refused because another process holds a lock.

    False when the file cannot be opened; ``other_errors`` is the answer when flock fails otherwise.
    """
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError as exc:
        return exc.errno in (errno.EAGAIN, errno.EACCES) or other_errors
    finally:
        os.close(fd)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+0000")


def holder() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"
