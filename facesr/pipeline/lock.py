"""Safe concurrent and interrupted builds: one lock per store, one commit marker per (stage, chunk).

State lives *next to* the store, in ``<store>.facesr/`` (``stores/celeba.zarr`` → ``stores/celeba.zarr.facesr``),
so that recreating the store never deletes the lock its creator holds::

    <store>.facesr/
        lock                               fcntl.flock'ed by the build that owns the store
        done/<stage>/<key>/<chunk:05d>     one small JSON marker per finished chunk

Rules:

* A build holds :class:`StoreLock` (an exclusive ``flock``) from planning to the end; a second build on the
  same store waits for it (and then finds every chunk done). The kernel drops the lock when its holder
  dies, ``kill -9`` included, so a stale lock never needs cleaning.
* A chunk's outputs are written first (zarr writes each chunk file atomically: temp file + rename), then
  its marker (again temp file + rename). A marker therefore proves its chunk; a chunk without a marker is
  recomputed and overwritten on the next run. Chunk-aligned writes never share a zarr chunk file.
* Markers are keyed by stage key (:mod:`facesr.pipeline.hashing`). Before a stage runs under key K, the
  markers of any other key of that stage are removed (:meth:`Ledger.prune`) -- its array is about to be
  overwritten, so they no longer describe it.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

from facesr.errors import StoreError

__all__ = ["Ledger", "StoreLock", "state_dir"]


def state_dir(store_path: str | os.PathLike) -> Path:
    """The pipeline state folder of a store: ``<store>.facesr`` beside it."""
    p = Path(store_path).absolute()
    return p.with_name(p.name + ".facesr")


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class StoreLock:
    """An exclusive, process-level lock on one store (``with StoreLock(path, on_wait=print): ...``).

    ``timeout=None`` waits for as long as the other build runs; a number of seconds raises StoreError
    after that long. ``on_wait(message)`` is called once if the lock is busy.
    """

    def __init__(
        self,
        store_path: str | os.PathLike,
        *,
        timeout: float | None = None,
        on_wait: Callable[[str], None] | None = None,
    ) -> None:
        self.dir = state_dir(store_path)
        self.path = self.dir / "lock"
        self.timeout = timeout
        self.on_wait = on_wait
        self._fd: int | None = None

    def holder(self) -> str:
        try:
            return self.path.read_text().strip() or "another build"
        except OSError:
            return "another build"

    def acquire(self) -> None:
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
                raise StoreError(
                    f"store is locked by {self.holder()} (waited {self.timeout:.0f} s)",
                    hint=f"wait for that build, or remove {self.path} if no build is running",
                )
            time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
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

    def __exit__(self, *exc) -> None:
        self.release()


def _stage_dir(stage: str) -> str:
    return stage.replace("/", "__")


class Ledger:
    """The per-chunk commit markers of one store (see the module docstring). Safe to use from workers."""

    def __init__(self, store_path: str | os.PathLike) -> None:
        self.root = state_dir(store_path) / "done"

    def _path(self, stage: str, key: str, chunk: int) -> Path:
        return self.root / _stage_dir(stage) / key / f"{chunk:05d}"

    def is_done(self, stage: str, key: str, chunk: int) -> bool:
        return self._path(stage, key, chunk).is_file()

    def mark(self, stage: str, key: str, chunk: int, info: dict | None = None) -> None:
        _atomic_write_text(self._path(stage, key, chunk), json.dumps(info or {}, sort_keys=True))

    def done_chunks(self, stage: str, key: str) -> set[int]:
        d = self.root / _stage_dir(stage) / key
        if not d.is_dir():
            return set()
        return {int(p.name) for p in d.iterdir() if p.name.isdigit()}

    def committed(self, stage: str, key: str, nchunks: int, trusted: bool) -> set[int]:
        """The chunks of ``stage`` done under ``key``. A stage without any markers (a store copied without
        its state folder) counts as wholly done when ``trusted``: its own record says it is complete."""
        if self.keys(stage):
            return self.done_chunks(stage, key)
        return set(range(nchunks)) if trusted else set()

    def info(self, stage: str, key: str, chunk: int) -> dict:
        try:
            return json.loads(self._path(stage, key, chunk).read_text())
        except (OSError, ValueError):
            return {}

    def keys(self, stage: str) -> list[str]:
        d = self.root / _stage_dir(stage)
        return sorted(p.name for p in d.iterdir() if p.is_dir()) if d.is_dir() else []

    def prune(self, stage: str, keep: str) -> list[str]:
        """Remove the markers of every other key of ``stage``; returns the keys removed."""
        gone = [k for k in self.keys(stage) if k != keep]
        for k in gone:
            shutil.rmtree(self.root / _stage_dir(stage) / k, ignore_errors=True)
        return gone

    def clear(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
