"""Safe concurrent and interrupted builds: one lock per store, one commit marker per (stage, chunk), and a
snapshot when a build ends.

State lives *next to* the store, in ``<store>.facesr/`` (``stores/celeba.zarr`` → ``stores/celeba.zarr.facesr``),
so that recreating the store never deletes the lock its creator holds::

    <store>.facesr/
        lock                               fcntl.flock'ed by the build that owns the store
        building                           written when a build takes the lock, removed when it commits
        done/<stage>/<key>/<chunk:05d>     one small JSON marker per finished chunk
        snapshots/                         immutable per-build snapshots (:mod:`facesr.data.snapshots`)

Rules:

* A build holds :class:`StoreLock` (an exclusive ``flock``) from planning to the end; a second build on the
  same store waits for it (and then finds every chunk done). The kernel drops the lock when its holder
  dies, ``kill -9`` included, so a stale lock never needs cleaning.
* Taking the lock marks the store ``building``; leaving it normally commits: consolidated metadata, a new
  snapshot, marker removed (:meth:`facesr.data.store.FaceStore.commit`). Leaving it on an exception
  keeps the marker unless nothing changed since the last snapshot; ``kill -9`` keeps it. Readers
  (training, evaluation) refuse a marked store and read the newest snapshot otherwise.
* A chunk's outputs are written first (zarr writes each chunk file atomically: temp file + rename), then
  its marker (again temp file + rename). A marker therefore proves its chunk; a chunk without a marker is
  recomputed and overwritten on the next run. Chunk-aligned writes never share a zarr chunk file.
* Markers are keyed by stage key (:mod:`facesr.pipeline.hashing`). Before a stage runs under key K, the
  markers of any other key of that stage are removed (:meth:`Ledger.prune`) -- its array is about to be
  overwritten, so they no longer describe it.

A store at a URL (``s3://`` …) has no ``flock``; its state folder ``<url>.facesr/`` is on the same storage:

* **The lock is a lease**, the object ``<url>.facesr/lock`` (JSON: holder, token, beat number, time, ttl),
  created with a conditional create (S3 ``If-None-Match: *``) that the server grants to one writer only.
  Its holder renews it every ``ttl / 4`` seconds with a compare-and-swap on its ETag (``If-Match``); a
  renewal refused or impossible for ``ttl`` seconds marks the lease *lost*, and the build then refuses to
  commit (:class:`~facesr.errors.StoreLockedError`). A waiter takes over a lease it has watched unchanged
  for ``ttl`` seconds, or whose last beat is older than ``2 × ttl`` by the wall clock (a holder that died
  long ago), again with ``If-Match`` on the stale ETag, so of two waiters only one wins. Releasing deletes
  the lease (``If-Match``: only while it is still ours).
* **Guarantees**: on S3 (and servers that honour those headers; each acquire checks it with a second
  conditional create that must be refused) at most one build holds the lease at a time, as long as a
  holder that stops renewing for ``ttl`` seconds has stopped writing -- a paused process that wakes after
  its lease was taken writes chunks (harmless: a chunk's outputs and marker are rewritten identically by
  whoever recomputes it) but cannot commit. On other fsspec backends (and S3 servers that ignore the
  conditions) the lease is *write-then-read-back*: create if absent, wait ``settle`` seconds, read the
  owner token back; exclusive unless two builds start within the same ``settle`` window.
* ``<url>.facesr/building`` marks a URL store as being built exactly as locally, and readers refuse it;
  the commit writes consolidated metadata, records the store's listing digest (``committed.json``) and
  removes the marker; a failed build whose objects match that digest clears it again.
* Markers are ``<url>.facesr/done/...`` objects (one PUT each, atomic), so an interrupted build into
  ``s3://`` resumes as a local one does. **Snapshots are not supported at URLs**: readers see the live
  store, which the ``building`` marker guards; a pinned snapshot id is refused with a
  :class:`~facesr.errors.StoreError` (:func:`facesr.data.snapshots.resolve`).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from facesr.data import snapshots
from facesr.data.snapshots import state_dir, state_url
from facesr.data.storage import locate
from facesr.errors import StoreLockedError
from facesr.pipeline.lease import LEASE_TTL, Lease, lease_held

__all__ = ["LEASE_TTL", "Lease", "Ledger", "StoreLock", "lease_held", "state_dir"]


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class StoreLock:
    """An exclusive, process-level lock on one store (``with StoreLock(path, on_wait=print): ...``).

    ``timeout=None`` waits for as long as the other build runs; a number of seconds raises StoreLockedError
    after that long. ``on_wait(message)`` is called once if the lock is busy. A URL store's lock is a
    :class:`~facesr.pipeline.lease.Lease` (module docstring) renewed every ``lease_ttl / 4`` seconds.
    """

    # defaults for subclasses that set up their own state (facesr.train.runlock.RunLock)
    commit = False
    location = None
    _lease: Lease | None = None

    def __init__(
        self,
        store_path: str | os.PathLike,
        *,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
        commit: bool = True,
        lease_ttl: float = LEASE_TTL,
    ) -> None:
        self.location = locate(store_path)
        self.commit = commit
        self.dir = state_dir(self.location.path) if self.location.is_local else None
        self.path = self.dir / "lock" if self.dir is not None else None
        self.timeout = timeout
        self.on_wait = on_wait
        self._fd: int | None = None
        self._lease = None if self.location.is_local else Lease(self.location, ttl=lease_ttl)

    def holder(self) -> str:
        if self._lease is not None:
            return self._lease.holder()
        try:
            return self.path.read_text().strip() or "another build"
        except OSError:
            return "another build"

    def acquire(self) -> None:
        if self._lease is not None:
            self._lease.acquire(timeout=self.timeout, on_wait=self.on_wait)
            if self.commit:
                snapshots.begin(self.location, snapshots.holder())
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline: float | None = None
        waiting = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise
            if not waiting:  # busy: say so once, then poll
                waiting = True
                if self.on_wait is not None:
                    self.on_wait(f"{self.dir.name[:-7]} is being built by {self.holder()}; waiting for it to finish")
                deadline = None if self.timeout is None else time.monotonic() + self.timeout
            elif deadline is not None and time.monotonic() > deadline:
                os.close(fd)
                raise StoreLockedError(
                    f"store is locked by {self.holder()} (waited {self.timeout:.0f} s)",
                    hint="wait for that build to finish (the lock goes when its process ends)",
                    path=str(self.location),
                )
            time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{snapshots.holder()}\n".encode(), 0)
        self._fd = fd
        if self.commit:
            snapshots.begin(self.location.path, snapshots.holder())

    def release(self) -> None:
        if self._lease is not None:
            self._lease.release()
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> StoreLock:
        self.acquire()
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if self.commit and exc_type is None:
                if self._lease is not None:
                    self._lease.check()  # a lost lease never commits: another build may own the store now
                self._commit()
            elif self.commit and self.location is not None:
                snapshots.clear_if_unchanged(self.location)
        finally:
            self.release()

    def _commit(self) -> None:
        from facesr.data.store import FaceStore
        from facesr.errors import StoreNotFoundError

        try:
            fs = FaceStore.open(self.location, mode="r+")
        except StoreNotFoundError:  # nothing was created (the lock alone, or a refused build)
            if self._lease is not None:
                snapshots.clear_if_unchanged(self.location)
            else:
                (self.dir / "building").unlink(missing_ok=True)
            return
        fs.commit()  # consolidated metadata; locally also the snapshot and the marker
        if self._lease is not None:
            snapshots.commit_url(self.location)


def _stage_dir(stage: str) -> str:
    return stage.replace("/", "__")


class Ledger:
    """The per-chunk commit markers of one store (see the module docstring). Safe to use from workers.

    A local store keeps them in ``<store>.facesr/done``; a store at a URL in ``<url>.facesr/done`` on the
    same storage (through fsspec), never in a local folder named after the URL."""

    def __init__(self, store_path: str | os.PathLike) -> None:
        loc = locate(store_path)
        self._fs = None
        if loc.is_local:
            self.root: Path | str = state_dir(loc.path) / "done"
        else:
            self._fs, base = state_url(loc)
            self.root = f"{base}/done"

    def _dir(self, *parts: str) -> Path | str:
        return self.root.joinpath(*parts) if self._fs is None else "/".join((self.root, *parts))

    def _path(self, stage: str, key: str, chunk: int) -> Path | str:
        return self._dir(_stage_dir(stage), key, f"{chunk:05d}")

    def _names(self, d: Path | str, dirs: bool) -> list[str]:
        if self._fs is None:
            return [p.name for p in d.iterdir() if p.is_dir() == dirs] if d.is_dir() else []
        try:
            entries = self._fs.ls(d, detail=True)
        except FileNotFoundError:
            return []
        return [e["name"].rstrip("/").rsplit("/", 1)[-1] for e in entries if (e["type"] == "directory") == dirs]

    def is_done(self, stage: str, key: str, chunk: int) -> bool:
        p = self._path(stage, key, chunk)
        return p.is_file() if self._fs is None else bool(self._fs.exists(p))

    def mark(self, stage: str, key: str, chunk: int, info: dict | None = None) -> None:
        text = json.dumps(info or {}, sort_keys=True)
        if self._fs is None:
            _atomic_write_text(self._path(stage, key, chunk), text)
        else:  # an object PUT is atomic
            self._fs.pipe_file(self._path(stage, key, chunk), text.encode())

    def done_chunks(self, stage: str, key: str) -> set[int]:
        return {int(n) for n in self._names(self._dir(_stage_dir(stage), key), dirs=False) if n.isdigit()}

    def committed(self, stage: str, key: str, nchunks: int, trusted: bool) -> set[int]:
        """The chunks of ``stage`` done under ``key``. A stage without any markers (a store copied without
        its state folder) counts as wholly done when ``trusted``: its own record says it is complete."""
        if self.keys(stage):
            return self.done_chunks(stage, key)
        return set(range(nchunks)) if trusted else set()

    def info(self, stage: str, key: str, chunk: int) -> dict:
        p = self._path(stage, key, chunk)
        try:
            return json.loads(p.read_text() if self._fs is None else self._fs.cat_file(p))
        except (OSError, ValueError):
            return {}

    def keys(self, stage: str) -> list[str]:
        return sorted(self._names(self._dir(_stage_dir(stage)), dirs=True))

    def prune(self, stage: str, keep: str) -> list[str]:
        """Remove the markers of every other key of ``stage``; returns the keys removed."""
        gone = [k for k in self.keys(stage) if k != keep]
        for k in gone:
            self._rm(self._dir(_stage_dir(stage), k))
        return gone

    def clear(self) -> None:
        self._rm(self.root)

    def _rm(self, d: Path | str) -> None:
        if self._fs is None:
            shutil.rmtree(d, ignore_errors=True)
        elif self._fs.exists(d):
            self._fs.rm(d, recursive=True)
