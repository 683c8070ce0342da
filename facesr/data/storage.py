"""Where a store lives: a local folder, or an fsspec URL, opened as a zarr store.

Rules:

* A location is a local path, a ``file://`` URL (turned into that local path, so locks and snapshots
  work), or any other fsspec URL (``memory://``, ``s3://``, ``gs://`` …), read and written through
  zarr's ``FsspecStore``.
* A URL is never turned into a local path: ``Path("s3://b/x")`` would be a folder named ``s3:``.
* A scheme whose package is missing (``gs://`` without gcsfs) or an endpoint that cannot be reached is
  one :class:`~facesr.errors.StoreError` line, raised before zarr is asked anything.
* S3 endpoints come from the usual AWS settings (``AWS_ENDPOINT_URL``, credentials); a connection that
  does not answer fails after one short try instead of botocore's minutes of retries.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facesr.errors import StoreError

__all__ = ["Location", "locate"]

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_MANGLED = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/[^/]")
_PACKAGES = {"s3": "s3fs", "s3a": "s3fs", "gs": "gcsfs", "gcs": "gcsfs", "az": "adlfs", "abfs": "adlfs"}
_S3_DEFAULTS = {"config_kwargs": {"connect_timeout": 5, "read_timeout": 30, "retries": {"max_attempts": 2}}}


@dataclass(frozen=True)
class Location:
    """A store's place: ``path`` (a local folder) or ``url`` (anything fsspec opens), never both."""

    path: Path | None = None
    url: str | None = None
    storage_options: dict[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        return self.path is not None

    @property
    def scheme(self) -> str:
        return "file" if self.path is not None else str(self.url).split("://", 1)[0].lower()

    def __str__(self) -> str:
        return str(self.path) if self.path is not None else str(self.url)

    def filesystem(self):
        """(fsspec filesystem, path inside it) for a URL; a missing package or bad URL is one line."""
        import fsspec

        opts = dict(self.storage_options)
        if self.scheme in ("s3", "s3a"):
            opts = {**_S3_DEFAULTS, **opts}
        try:
            return fsspec.core.url_to_fs(self.url, **opts)
        except ImportError:
            pkg = _PACKAGES.get(self.scheme, f"the fsspec backend for {self.scheme}://")
            raise StoreError(f"{self.url}: {self.scheme}:// needs the {pkg} package",
                             hint=f"pip install {pkg}", url=self.url) from None
        except (ValueError, TypeError) as exc:
            raise StoreError(f"{self.url}: not a usable storage URL ({exc})", url=self.url) from None

    def has(self, key: str) -> bool:
        """Whether ``key`` (e.g. ``zarr.json``) exists under the location; an unreachable endpoint raises."""
        if self.path is not None:
            return (self.path / key).exists()
        fs, root = self.filesystem()
        try:
            return bool(fs.exists(f"{root.rstrip('/')}/{key}"))
        except Exception as exc:  # noqa: BLE001 - every backend has its own connection errors
            raise StoreError(f"cannot reach {self.url}: {type(exc).__name__}: {_first_line(exc)}",
                             hint="check the URL, the endpoint (AWS_ENDPOINT_URL) and your credentials",
                             url=self.url) from None

    def exists(self) -> bool:
        """Whether anything is at the location (a folder, or any key under the URL)."""
        if self.path is not None:
            return self.path.exists()
        fs, root = self.filesystem()
        try:
            return bool(fs.exists(root))
        except Exception as exc:  # noqa: BLE001
            raise StoreError(f"cannot reach {self.url}: {type(exc).__name__}: {_first_line(exc)}",
                             hint="check the URL, the endpoint (AWS_ENDPOINT_URL) and your credentials",
                             url=self.url) from None

    def zarr_store(self, read_only: bool):
        """The zarr v3 store object for this location."""
        if self.path is not None:
            from zarr.storage import LocalStore

            return LocalStore(self.path, read_only=read_only)
        from zarr.storage import FsspecStore

        self.filesystem()  # a missing package is one line, not zarr's traceback
        opts = dict(self.storage_options)
        if self.scheme in ("s3", "s3a"):
            opts = {**_S3_DEFAULTS, **opts}
        return FsspecStore.from_url(self.url, storage_options=opts or None, read_only=read_only)

    def remove(self) -> None:
        """Delete everything at the location (``--overwrite`` of a facesr store; callers check the marker)."""
        if self.path is not None:
            import shutil

            if self.path.is_dir():
                shutil.rmtree(self.path)
            elif self.path.exists():
                self.path.unlink()
            return
        fs, root = self.filesystem()
        if fs.exists(root):
            fs.rm(root, recursive=True)


def locate(where: str | os.PathLike | Location, storage_options: dict[str, Any] | None = None) -> Location:
    """A :class:`Location` from a path, a ``file://`` URL or another fsspec URL."""
    if isinstance(where, Location):
        return where
    s = os.fspath(where)
    m = _SCHEME.match(s)
    if m is None:
        if _MANGLED.match(s):  # Path("s3://b/x") is "s3:/b/x": never make a folder named after a URL
            raise StoreError(f"{s}: looks like a URL whose '//' was lost (made a path)",
                             hint="pass the URL as a string, e.g. s3://bucket/store.zarr", path=s)
        return Location(path=Path(s))
    scheme = m.group(1).lower()
    if scheme == "file":
        from urllib.parse import unquote, urlparse

        u = urlparse(s)
        if u.netloc not in ("", "localhost"):
            raise StoreError(f"{s}: file:// URLs name a local path (file:///abs/path)", url=s)
        return Location(path=Path(unquote(u.path)))
    return Location(url=s.rstrip("/"), storage_options=dict(storage_options or {}))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else ""
