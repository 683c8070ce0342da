"""The typed exceptions of facesr.

The library raises these and never prints or exits; the CLI entry point (``facesr.cli``) turns each
into one line naming what went wrong and what to run next.
"""

from __future__ import annotations


class FacesrError(Exception):
    """Base of every error a user can cause or fix; ``hint`` names the next thing to try."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ConfigError(FacesrError, ValueError):
    """A bad option, preset key or parameter value."""


class DatasetError(FacesrError):
    """A dataset root, layout, split or image that cannot be used."""


class StoreError(FacesrError):
    """A zarr store that is missing, incomplete, locked or inconsistent."""


class SchemaError(StoreError):
    """A store written with a schema version this facesr cannot read."""


class WeightsError(FacesrError):
    """A model weight file that is not in the weights directory (downloads are never attempted)."""


class PipelineError(FacesrError):
    """A stage of the build DAG that failed or cannot run."""


__all__ = [
    "ConfigError",
    "DatasetError",
    "FacesrError",
    "PipelineError",
    "SchemaError",
    "StoreError",
    "WeightsError",
]
