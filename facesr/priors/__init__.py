"""facesr.priors — prior providers behind small interfaces (no stores, no dask).

* :mod:`~facesr.priors.boxes` — the ``(K, 6)`` part-box format and ``PART_CLASSES``;
* :mod:`~facesr.priors.detectors` — ``DETECTORS``: HR batch (+ landmarks) → part boxes;
* :mod:`~facesr.priors.heatmap` — pure maths from boxes to a ``[0, 1]`` heatmap (``PRESETS``);
* :mod:`~facesr.priors.parsing` — ``PARSERS``: HR batch (+ landmarks) → class maps, W-Net helpers;
* :mod:`~facesr.priors.overlay` — images for humans;
* :mod:`~facesr.priors.provider` — what the providers share (input checks, weight digests, lazy networks).

Importing this package pulls in numpy and OpenCV only; torch, ultralytics and facexlib are imported by a
provider the first time it runs.
"""

from facesr.priors.boxes import PART_CLASSES, pad_boxes, unpad_boxes
from facesr.priors.detectors import DETECTORS
from facesr.priors.heatmap import PRESETS, HeatmapParams, render_batch, render_heatmap
from facesr.priors.parsing import PARSERS, PARSING_CLASSES

__all__ = [
    "DETECTORS",
    "PARSERS",
    "PARSING_CLASSES",
    "PART_CLASSES",
    "PRESETS",
    "HeatmapParams",
    "pad_boxes",
    "render_batch",
    "render_heatmap",
    "unpad_boxes",
]
