"""curves.png is drawn from the run's CSVs alone."""

from __future__ import annotations

import cv2

from facesr.train.curves import plot_curves
from facesr.train.logging import CsvLog


def test_curves_from_csvs(tmp_path):
    assert plot_curves(tmp_path) is None  # nothing logged yet
    steps = CsvLog(tmp_path / "steps.csv")
    for i in range(1, 41):
        steps.write({"step": i, "epoch": i // 10, "loss": 1.0 / i})
    metrics = CsvLog(tmp_path / "metrics.csv")
    for e in range(1, 5):
        metrics.write({"epoch": e, "step": 10 * e, "psnr[dic]": 22 + e, "ssim[dic]": 0.6 + e / 100,
                       "bicubic_psnr[dic]": 23.5, "bicubic_ssim[dic]": 0.63})
    steps.close(), metrics.close()
    path = plot_curves(tmp_path)
    img = cv2.imread(str(path))
    assert path == tmp_path / "curves.png" and img is not None
    assert img.shape[1] > 2 * img.shape[0]  # three panels side by side: loss, PSNR, SSIM
    assert not list(tmp_path.glob("*.tmp.png"))
