"""The one weights directory: every external weight file is looked up here by its upstream name.

Order: an explicit ``weights_dir`` argument, then ``$FACESR_WEIGHTS``, then ``~/.cache/facesr/weights``.
Nothing is ever downloaded; a missing file is a :class:`WeightsMissingError` naming the file, the directory
searched and the offline alternative.
"""

from __future__ import annotations

import os
from pathlib import Path

from facesr.errors import WeightsMissingError

ENV_VAR = "FACESR_WEIGHTS"


def weights_dir(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "facesr" / "weights"


def find_weight(filename: str, explicit_dir: str | os.PathLike | None = None) -> Path | None:
    """Path of ``filename`` in the weights directory (also checked one level down), or None."""
    root = weights_dir(explicit_dir)
    for cand in (root / filename, *root.glob(f"*/{filename}")):
        if cand.is_file():
            return cand
    return None


def require_weight(
    filename: str, *, what: str, alternative: str, explicit_dir: str | os.PathLike | None = None
) -> Path:
    """Path of ``filename`` or a WeightsMissingError saying where it was looked for and what to use instead."""
    path = find_weight(filename, explicit_dir)
    if path is None:
        root = weights_dir(explicit_dir)
        raise WeightsMissingError(
            f"{what} weights {filename!r} not found in {root}",
            hint=f"put the file there (or pass --weights-dir / set ${ENV_VAR}); offline alternative: {alternative}",
        )
    return path
