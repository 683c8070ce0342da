"""One writer per run folder: ``RUN/.lock``, an exclusive ``flock`` held while a training writes the run.

A second ``facesr train --out RUN`` (resumed or not) refuses at once with a
:class:`~facesr.errors.StoreLockedError` naming the holder, instead of both writing the same checkpoints.
The kernel drops the lock when its holder dies (``kill -9`` included), so a stale lock never needs
cleaning; the file's text (``pid N on HOST``) is only for the message. Under DDP rank 0 holds it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

from facesr.errors import StoreLockedError
from facesr.pipeline.lock import StoreLock

__all__ = ["RunLock"]


class RunLock(StoreLock):
    """``with RunLock(run): ...`` — or :meth:`acquire` / ``release``; never waits (unlike a store's lock,
    whose builds queue behind each other, two trainings of one run are a mistake)."""

    def __init__(self, run: str | os.PathLike) -> None:
        self.run = Path(run)
        self.dir, self.path = self.run, self.run / ".lock"
        self.timeout, self.on_wait, self._fd = None, None, None

    def acquire(self) -> RunLock:
        self.run.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise StoreLockedError(f"run folder {self.run} is being written by {holder}",
                                       hint="wait for that training to end, or choose another --out",
                                       path=str(self.run)) from None
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        self._fd = fd
        return self

    @property
    def held(self) -> bool:
        return self._fd is not None
