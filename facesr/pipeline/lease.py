"""The lock of a store at a URL: a lease object ``<url>.facesr/lock`` with a heartbeat and an expiry.

Rules (the guarantees are stated in :mod:`facesr.pipeline.lock`):

1. The lease is a small JSON object ``{holder, token, beat, at, ttl}`` (``at``: UTC epoch seconds of the
   last beat). Taking it is a *create-if-absent*; on S3 that is ``PutObject`` with ``If-None-Match: *``,
   decided by the server. Each take is followed by a probe (the same create again, which must be refused):
   a server that ignores the condition downgrades this lease to rule 5.
2. The holder renews it every ``ttl / 4`` s from a daemon thread: ``PutObject`` with ``If-Match: <our ETag>``
   and the next beat number (so the ETag changes). A refused renewal (someone took it over) or none
   succeeding for ``ttl`` s marks the lease lost; :meth:`Lease.check` then raises.
3. A waiter polls the lease's ETag. One it has seen unchanged for ``ttl`` s (the larger of its own and the
   lease's), or whose ``at`` is older than ``2 × ttl`` (a holder gone for long; the factor 2 absorbs clock
   skew), is abandoned: the waiter replaces it with ``If-Match: <stale ETag>``, so of several waiters
   exactly one wins.
4. Release stops the heartbeat and deletes the lease with ``If-Match: <our ETag>`` (a lease taken over
   meanwhile is left to its new holder).
5. Without conditional requests (any other fsspec backend): create-if-absent, then wait ``settle`` s and
   read the token back; a renewal or takeover is read-compare-write-read-back. Exclusive unless two
   writers interleave within ``settle`` s.
"""

from __future__ import annotations

import errno
import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from facesr.data.storage import Location
from facesr.errors import StoreLockedError

__all__ = ["LEASE_TTL", "Lease", "lease_held"]

LEASE_TTL = 60.0  # seconds without a renewal after which a lease counts as abandoned
SETTLE = 0.5  # rule 5: seconds between a write and its read-back


def _is_s3(fs) -> bool:
    return any(c.__name__ == "S3FileSystem" for c in type(fs).__mro__)


class _Objects:
    """The four object operations of a lease on one fsspec filesystem. Versions are S3 ETags when
    ``conditional`` (rules 1–4), else a hash of the content (rule 5)."""

    def __init__(self, fs, settle: float) -> None:
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        # memory:// lives in this one process: nothing can interleave between a write and its read-back
        self.fs, self.settle = fs, 0.0 if "memory" in protocols else settle
        self.conditional = _is_s3(fs)

    def _s3(self, method: str, key: str, **kw) -> dict:
        bucket, path, _ = self.fs.split_path(key)
        out = self.fs.call_s3(method, Bucket=bucket, Key=path, **kw)
        self.fs.invalidate_cache(key)
        return out

    def read(self, key: str) -> tuple[dict, str] | None:
        """(content, version) of the lease, or None when there is none."""
        try:
            if self.conditional:
                head = self._s3("head_object", key)
                body = self.fs.cat_file(key)
                return _parse(body), str(head["ETag"])
            body = self.fs.cat_file(key)
        except FileNotFoundError:
            return None
        return _parse(body), _digest(body)

    def create(self, key: str, body: bytes) -> str | None:
        """Our version if we created the lease, None if one exists."""
        if self.conditional:
            try:
                return str(self._s3("put_object", key, Body=body, IfNoneMatch="*")["ETag"])
            except FileExistsError:
                return None
            except OSError as exc:
                if _refused(exc):  # 409 ConditionalRequestConflict: a concurrent create
                    return None
                raise
        try:
            self.fs.pipe_file(key, body, mode="create")
        except FileExistsError:
            return None
        return self._read_back(key, body)

    def replace(self, key: str, body: bytes, version: str) -> str | None:
        """Replace the lease at ``version`` by ``body``: our new version, or None if it changed meanwhile."""
        if self.conditional:
            try:
                return str(self._s3("put_object", key, Body=body, IfMatch=version)["ETag"])
            except FileNotFoundError:
                return None
            except OSError as exc:
                if _refused(exc):
                    return None
                raise
        now = self.read(key)
        if now is None or now[1] != version:
            return None
        self.fs.pipe_file(key, body)
        return self._read_back(key, body)

    def delete(self, key: str, version: str) -> None:
        if self.conditional:
            try:
                self._s3("delete_object", key, IfMatch=version)
            except (FileNotFoundError, OSError):  # taken over (412) or already gone: not ours to delete
                pass
            return
        now = self.read(key)
        if now is not None and now[1] == version:
            self.fs.rm_file(key)

    def _read_back(self, key: str, body: bytes) -> str | None:
        time.sleep(self.settle)
        try:
            return _digest(body) if self.fs.cat_file(key) == body else None
        except FileNotFoundError:
            return None


def _refused(exc: OSError) -> bool:
    """Whether an s3fs error is a refused precondition (412 → EINVAL) or a conflicting one (409)."""
    text = str(exc)
    return exc.errno == errno.EINVAL or "PreconditionFailed" in text or "ConditionalRequestConflict" in text


def _parse(body: bytes) -> dict:
    try:
        data = json.loads(body)
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}


def _float(value: Any, default: float) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):  # a damaged lease: treat its field as absent
        return default


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


class Lease:
    """The lease of one URL store (module docstring). ``acquire`` / ``check`` / ``release``."""

    def __init__(self, loc: Location, *, ttl: float = LEASE_TTL, settle: float = SETTLE) -> None:
        from facesr.data.snapshots import holder, state_url

        fs, base = state_url(loc)
        self.url, self.key, self.ttl = str(loc), f"{base}/lock", float(ttl)
        self.objects = _Objects(fs, settle)
        self.owner, self.token = holder(), uuid.uuid4().hex
        self.lost: str | None = None
        self.took_over: str | None = None  # the holder of the abandoned lease this one replaced
        self._version: str | None = None
        self._beat = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._version is not None

    @property
    def guarantee(self) -> str:
        return ("conditional requests (If-None-Match / If-Match)" if self.objects.conditional
                else f"write-then-read-back ({self.objects.settle:g} s settle)")

    def _body(self) -> bytes:
        return json.dumps({"holder": self.owner, "token": self.token, "beat": self._beat, "at": time.time(),
                           "ttl": self.ttl}).encode()

    def holder(self) -> str:
        try:
            got = self.objects.read(self.key)
        except Exception:  # noqa: BLE001 - only for a message (also from the heartbeat thread)
            got = None
        return str(got[0].get("holder") or "another build") if got else "another build"

    def acquire(self, *, timeout: float | None = None, on_wait: Callable[[str], None] | None = None) -> Lease:
        """Take the lease, waiting while another build holds it; a timeout is StoreLockedError."""
        poll = max(0.05, min(1.0, self.ttl / 10))
        seen: tuple[str | None, float] = (None, time.monotonic())
        deadline: float | None = None
        waiting = False
        while True:
            body = self._body()
            version = self.objects.create(self.key, body)
            if version is not None:
                self._probe(version, body)
                break
            got = self.objects.read(self.key)
            if got is None:  # released between our create and read
                continue
            data, current = got
            if current != seen[0]:
                seen = (current, time.monotonic())
            ttl = max(self.ttl, _float(data.get("ttl"), LEASE_TTL))  # the holder renews at its own pace
            stale = time.monotonic() - seen[1] > ttl or time.time() - _float(data.get("at"), 0.0) > 2 * ttl
            if stale:
                version = self.objects.replace(self.key, self._body(), current)
                if version is not None:
                    self._version, self.took_over = version, str(data.get("holder") or "a build")
                    break
                continue
            if not waiting:
                waiting = True
                if on_wait is not None:
                    on_wait(f"{self.url} is being built by {data.get('holder', 'another build')}; waiting for it "
                            "to finish")
                deadline = None if timeout is None else time.monotonic() + timeout
            elif deadline is not None and time.monotonic() > deadline:
                raise StoreLockedError(f"store is locked by {data.get('holder', 'another build')} (waited "
                                       f"{timeout:.0f} s)",
                                       hint=f"wait for that build to finish (its lease {self.key} lapses "
                                            f"{ttl:.0f} s after its last renewal)", url=self.url)
            time.sleep(poll)
        self._stop.clear()
        self._thread = threading.Thread(target=self._heartbeat, name="facesr-lease", daemon=True)
        self._thread.start()
        return self

    def _probe(self, version: str, body: bytes) -> None:
        """Rule 1: a server that grants a second create-if-absent ignores the condition → rule 5."""
        self._version = version
        if not self.objects.conditional:
            return
        if self.objects.create(self.key, body) is not None:  # the same bytes: the lease is unchanged
            self.objects.conditional = False
            self._version = self.objects._read_back(self.key, body)
            if self._version is None:
                raise StoreLockedError(f"{self.url}: another build took the lock at the same moment",
                                       hint="rerun; builds of one store queue behind each other", url=self.url)

    def _heartbeat(self) -> None:
        last_ok = time.monotonic()
        while not self._stop.wait(self.ttl / 4):
            self._beat += 1
            try:
                version = self.objects.replace(self.key, self._body(), self._version)
            except Exception as exc:  # noqa: BLE001 - a flaky network: retry until the lease would lapse
                if time.monotonic() - last_ok > self.ttl:
                    self.lost = f"could not renew the lease for {self.ttl:.0f} s ({type(exc).__name__})"
                    return
                continue
            if version is None:
                self.lost = f"{self.holder()} took the lease over (this build stopped renewing it for {self.ttl:.0f} s)"
                return
            self._version, last_ok = version, time.monotonic()

    def check(self) -> None:
        """Raise StoreLockedError when the lease was lost (a build must not commit then)."""
        if self.lost is not None:
            raise StoreLockedError(f"{self.url}: lost the store's lock: {self.lost}",
                                   hint="rerun the build; it resumes from the chunks already committed",
                                   url=self.url)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.ttl)
            self._thread = None
        if self._version is not None and self.lost is None:
            self.objects.delete(self.key, self._version)
        self._version = None


def lease_held(loc: Location) -> bool:
    """Whether a live lease is on the URL store (its last beat within ``2 × ttl``, by the wall clock)."""
    from facesr.data.snapshots import state_url

    fs, base = state_url(loc)
    got = _Objects(fs, 0.0).read(f"{base}/lock")
    if got is None:
        return False
    data: dict[str, Any] = got[0]
    return time.time() - _float(data.get("at"), 0.0) <= 2 * _float(data.get("ttl"), LEASE_TTL)
