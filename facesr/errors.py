"""The typed exceptions of facesr (zarr's ``errors.py`` is the model: a small tree, each carrying context).

The library raises these and never prints or exits; the CLI entry point (``facesr.cli``) turns each
into one line naming what went wrong and what to run next (``hint``).

::

    FacesrError
    ├── ConfigError (also ValueError)   a bad option, preset key or parameter value — configuration only
    ├── DatasetError                    a dataset root, layout, split file or image that cannot be used
    ├── StoreError                      anything about a store
    │   ├── StoreNotFoundError          no store at a path or URL
    │   ├── StoreIncompleteError        a build that did not finish (or an array a step needs is missing)
    │   ├── StoreLockedError            another process holds the store's (or a run folder's) lock
    │   ├── StoreCorruptError           a chunk fails its checksum or cannot be decoded
    │   └── SchemaVersionError          written by a facesr with another schema version
    ├── WeightsMissingError             a weight file not in the weights directory (never downloaded)
    ├── WeightsInvalidError             a weight file that is there but cannot be used
    ├── CheckpointError                 a run's checkpoint or state file that is missing, corrupt or refused
    ├── TrainingError                   a training that cannot go on (divergence, empty split …)
    └── PipelineError                   a stage of the build DAG that failed or cannot run
"""

from __future__ import annotations

from typing import Any


class FacesrError(Exception):
    """Base of every error a user can cause or fix; ``hint`` names the next thing to try.

    Subclasses take keyword context (``path=``, ``name=`` …) kept in ``self.context`` for callers that
    want more than the message (``--json`` output, tests).
    """

    def __init__(self, message: str, *, hint: str | None = None, **context: Any) -> None:
        super().__init__(message)
        self.hint = hint
        self.context = context


class ConfigError(FacesrError, ValueError):
    """A bad option, preset key or parameter value."""


class DatasetError(FacesrError):
    """A dataset root, layout, split or image that cannot be used."""


class StoreError(FacesrError):
    """A zarr store that is missing, incomplete, locked or inconsistent."""


class StoreNotFoundError(StoreError):
    """No facesr store at the given path or URL."""


class StoreIncompleteError(StoreError):
    """A store whose build was interrupted or is still running, or that lacks an array a step needs."""


class StoreLockedError(StoreError):
    """Another process holds the lock of a store or a run folder."""


class StoreCorruptError(StoreError):
    """A chunk that fails its checksum or cannot be decoded; ``context`` names the array and chunk."""


class SchemaVersionError(StoreError):
    """A store written with a schema version this facesr cannot read."""


class WeightsMissingError(FacesrError):
    """A model weight file that is not in the weights directory (downloads are never attempted)."""


class WeightsInvalidError(FacesrError):
    """A weight file that exists but is not what its reader expects (junk, wrong architecture)."""


class CheckpointError(FacesrError):
    """A checkpoint or training-state file that is missing, corrupt, mismatched or refused (pickles)."""


class TrainingError(FacesrError):
    """A training that cannot go on: non-finite loss, an empty split, a budget that allows no step."""


class PipelineError(FacesrError):
    """A stage of the build DAG that failed or cannot run."""


__all__ = [
    "CheckpointError",
    "ConfigError",
    "DatasetError",
    "FacesrError",
    "PipelineError",
    "SchemaVersionError",
    "StoreCorruptError",
    "StoreError",
    "StoreIncompleteError",
    "StoreLockedError",
    "StoreNotFoundError",
    "TrainingError",
    "WeightsInvalidError",
    "WeightsMissingError",
]
