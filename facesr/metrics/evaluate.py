"""The one evaluator: predictions against ground truth under named protocols, for every caller.

Training validation, ``facesr eval --checkpoint``, ``facesr eval --pred/--gt`` and the demo all call::

    evaluate(predict, batches, protocols=("dic",), extras=(), *, baseline=True, limit=0, grid_n=0,
             device="cpu", cache=None, weights_dir=None, lpips_rand=False, landmarker=None,
             sr_dir=None) -> EvalResult

``predict``
    ``f(lr) -> sr``: float32 ``(B, 3, s, s)`` LR in [0, 1] on ``device`` → ``(B, 3, H, W)`` SR in [0, 1]
    (clamped and quantised here; called under ``torch.no_grad()``; the caller sets eval mode, autocast,
    EMA weights or self-ensemble — e.g. ``lambda lr: sr_of(net(lr))``). ``None`` when every batch carries
    its own ``"sr"`` (prediction folders, precomputed outputs).
``batches``
    any iterable of dicts — a ``StoreEvalDataset(..., raw=True, batch_size=B)`` works as it is:

    ==========  ===========================================================================================
    ``hr``      required: uint8 ``(B, H, W, 3)`` (numpy or tensor, the stored bytes) or a float
                ``(B, 3, H, W)`` tensor in [0, 1] (quantised with :func:`facesr.metrics.pixels.to_uint8`)
    ``lr``      the same conventions; the model's input, and the bicubic baseline's
    ``sr``      optional precomputed prediction, same conventions (then ``predict`` is None)
    ``ids``     optional ``B`` strings; else ``index`` (store rows, written as str); else a running count
    ``parsing`` optional ``(B, H, W)`` class maps (a store's ``priors/parsing``) for ``-e regions``
    ==========  ===========================================================================================
``protocols``
    names in :data:`facesr.metrics.protocols.PROTOCOLS` (``dic``, ``basicsr``, ``sparnet``, ``sfmnet``,
    ``rgb``): columns ``psnr[<p>]``, ``ssim[<p>]``.
``extras``
    names in :data:`EXTRAS`: ``msssim`` (``msssim[rgb]``), ``msssim-seed000`` (``msssim[seed000]``, the
    seed-000 notebook's torchmetrics call), ``lpips`` / ``lpips-vgg`` (``lpips[alex]`` / ``lpips[vgg]``;
    ``-rand`` appended with ``lpips_rand``, a random trunk for plumbing tests), ``aed`` (``aed[68]``),
    ``identity`` (``identity[dlib]``), ``regions`` (``psnr[<p>:eyes]`` …).

Keywords: ``baseline`` also scores PIL bicubic of each batch's LR on the same images (under every protocol
and extra; ``result.baselines["bicubic"]``); ``limit`` stops after that many images (0: all);
``grid_n`` keeps the first ``grid_n`` samples' uint8 ``lr`` / ``bicubic`` / ``sr`` / ``hr`` in
``result.samples`` (draw them with :func:`facesr.data.visualize.comparison_grid`); ``cache``: a dict in
which built metric networks (LPIPS trunks, the dlib landmarker) are kept between calls — pass the same
dict at every validation; ``sr_dir``: write each SR image there as ``<id>.png`` (lossless).

Every column names what produced it. Means are over images; columns that can be NaN (no face found) are
averaged over their finite values and the NaN count is reported beside them. All scoring is on uint8 RGB,
so a number here equals the number of the same images saved as PNG and scored from folders.
Writers are in :mod:`facesr.metrics.report`; batch sources (folders, stores) in :mod:`facesr.metrics.sources`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from facesr.errors import ConfigError, DatasetError
from facesr.metrics.pixels import bicubic_baseline, to_float, to_uint8
from facesr.metrics.protocols import DEFAULT_PROTOCOL, Protocol, get_protocol, psnr_ssim

EXTRAS = ("msssim", "msssim-seed000", "lpips", "lpips-vgg", "aed", "identity", "regions")
BICUBIC = "bicubic"

__all__ = ["BICUBIC", "EXTRAS", "EvalResult", "check_names", "evaluate", "format_value", "means_of"]


def means_of(columns: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Mean of each column over its finite values (NaN when it has none)."""
    return {k: float(np.nanmean(v)) if np.isfinite(v).any() else float("nan") for k, v in columns.items()}


@dataclass
class EvalResult:
    """Per-image columns (``(N,)`` float arrays keyed by named metric) for ``ids``, plus what came with them.

    ``baselines``: name → per-image columns on the same images (``"bicubic"``); ``samples``: uint8 stacks of
    the first ``grid_n`` images (``lr``, ``bicubic``, ``sr``, ``hr``, those that exist) and their ``ids``.
    """

    ids: list[str]
    columns: dict[str, np.ndarray]
    settings: dict[str, str] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)
    baselines: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    samples: dict[str, Any] = field(default_factory=dict)

    def means(self, baseline: str | None = None) -> dict[str, float]:
        """Column means of the prediction, or of ``baseline`` (``"bicubic"``)."""
        return means_of(self.columns if baseline is None else self.baselines[baseline])

    def nan_counts(self) -> dict[str, int]:
        return {k: int((~np.isfinite(v)).sum()) for k, v in self.columns.items()}

    # thin delegates to facesr.metrics.report (kept on the result: it is what callers hold)
    def to_markdown(self) -> str:
        from facesr.metrics.report import to_markdown

        return to_markdown(self)

    def write_markdown(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(self.to_markdown())
        return path

    def write_csv(self, path: str | os.PathLike) -> Path:
        from facesr.metrics.report import write_csv

        return write_csv(self, path)


def format_value(name: str, value: float) -> str:
    if name.startswith("psnr") or name.startswith("aed"):
        return f"{value:.3f}"
    return f"{value:.4f}"


def check_names(protocols: Sequence[str | Protocol], extras: Sequence[str]) -> list[Protocol]:
    """The protocols by name, once every protocol and extra name is known to be valid (ConfigError if not)."""
    protos = [get_protocol(p) for p in protocols]
    unknown = [e for e in extras if e not in EXTRAS]
    if unknown:
        raise ConfigError(f"unknown extra metric(s) {unknown}", hint=f"choose from {', '.join(EXTRAS)}")
    return protos


class _Scorer:
    """The metrics of one evaluation, built once (heavy networks taken from / left in ``cache``)."""

    def __init__(self, protos: list[Protocol], extras: Sequence[str], cache: dict, device, weights_dir,
                 lpips_rand: bool, landmarker) -> None:
        self.protos, self.extras = protos, tuple(extras)
        self.lpips = []
        for name in ("lpips", "lpips-vgg"):
            if name in self.extras:
                net = "vgg" if name.endswith("vgg") else "alex"
                key = ("lpips", net, bool(lpips_rand), str(device))
                if key not in cache:
                    from facesr.metrics.lpips import LPIPSMetric

                    cache[key] = LPIPSMetric(net, pnet_rand=lpips_rand, device=str(device), weights_dir=weights_dir)
                self.lpips.append(cache[key])
        self.needs_points = any(e in self.extras for e in ("aed", "identity", "regions"))
        self.landmarker = landmarker
        if self.needs_points and landmarker is None:
            if "landmarker" not in cache:
                from facesr.metrics import face

                cache["landmarker"] = face._default_landmarker()
            self.landmarker = cache["landmarker"]

    def context(self, hr: np.ndarray, classes: np.ndarray | None) -> dict[str, Any]:
        """What every prediction of this batch is scored against, beside ``hr``: landmarks, class maps."""
        ctx: dict[str, Any] = {"classes": classes}
        need = "aed" in self.extras or "identity" in self.extras or ("regions" in self.extras and classes is None)
        if need:
            ctx["lm_hr"] = np.asarray(self.landmarker(hr), dtype=np.float64)
        if "regions" in self.extras and classes is None:
            from facesr.priors.parsing import parse_from_landmarks

            h, w = hr.shape[1:3]  # no face found: an all-"other" map, so its regions score NaN
            ctx["classes"] = np.stack([parse_from_landmarks(p, h, w) for p in ctx["lm_hr"].astype(np.float32)])
        return ctx

    def __call__(self, sr: np.ndarray, hr: np.ndarray, ctx: dict[str, Any]) -> dict[str, np.ndarray]:
        cols: dict[str, np.ndarray] = {}
        for p in self.protos:
            cols.update(psnr_ssim(sr, hr, p).columns())
        if "msssim" in self.extras:
            from facesr.metrics.msssim import COLUMN, ms_ssim

            cols[COLUMN] = np.atleast_1d(ms_ssim(sr, hr))
        if "msssim-seed000" in self.extras:
            from facesr.metrics.msssim import SEED000_COLUMN, ms_ssim_seed000

            cols[SEED000_COLUMN] = np.atleast_1d(ms_ssim_seed000(sr, hr))
        for m in self.lpips:
            cols[m.column] = m(sr, hr)
        if "aed" in self.extras or "identity" in self.extras:
            from facesr.metrics import face

            if "aed" in self.extras:
                cols["aed[68]"] = face.landmark_aed(sr, hr, self.landmarker, lm_hr=ctx["lm_hr"])
            if "identity" in self.extras:
                cols["identity[dlib]"] = face.identity_similarity(sr, hr, model="dlib", lm_hr=ctx["lm_hr"])
        if "regions" in self.extras:
            from facesr.metrics.regions import region_psnr

            for p in self.protos:
                cols.update(region_psnr(sr, hr, ctx["classes"], protocol=p))
        return cols


def _ids(batch: Mapping[str, Any], n: int, seen: int) -> list[str]:
    if "ids" in batch:
        return [str(i) for i in list(batch["ids"])[:n]]
    if "index" in batch:
        return [str(int(i)) for i in np.asarray(batch["index"]).reshape(-1)[:n]]
    return [str(seen + i) for i in range(n)]


def _numpy(x) -> np.ndarray:
    return x.cpu().numpy() if hasattr(x, "cpu") else np.asarray(x)


def evaluate(
    predict: Callable[[Any], Any] | None,
    batches: Iterable[Mapping[str, Any]],
    protocols: Sequence[str | Protocol] = (DEFAULT_PROTOCOL,),
    extras: Sequence[str] = (),
    *,
    baseline: bool = True,
    limit: int = 0,
    grid_n: int = 0,
    device: Any = "cpu",
    cache: dict | None = None,
    weights_dir: str | os.PathLike | None = None,
    lpips_rand: bool = False,
    landmarker=None,
    sr_dir: str | os.PathLike | None = None,
) -> EvalResult:
    """Score ``predict`` (or the batches' own ``"sr"``) over ``batches``; see the module docstring."""
    import torch

    protos = check_names(protocols, extras)
    scorer = _Scorer(protos, extras, {} if cache is None else cache, device, weights_dir, lpips_rand, landmarker)
    ids: list[str] = []
    cols: dict[str, list[np.ndarray]] = {}
    base: dict[str, list[np.ndarray]] = {}
    keep: dict[str, list[np.ndarray]] = {}
    seen = 0
    for batch in batches:
        hr = to_uint8(batch["hr"])
        n = len(hr) if not limit else min(len(hr), limit - seen)
        if n <= 0:
            break
        hr = hr[:n]
        lr = to_uint8(batch["lr"])[:n] if "lr" in batch else None
        if "sr" in batch:
            if predict is not None:
                raise ConfigError("give either predict or batches with 'sr', not both")
            sr = to_uint8(batch["sr"])[:n]
        elif predict is None:
            raise ConfigError("nothing to score: predict is None and the batch has no 'sr'")
        else:
            with torch.no_grad():
                sr = to_uint8(predict(to_float(batch["lr"][:n], device)))
        if sr.shape != hr.shape or sr.ndim != 4:
            raise ConfigError(f"predictions {sr.shape} and ground truth {hr.shape} must be equal (N, H, W, 3) batches")
        batch_ids = _ids(batch, n, seen)
        classes = _numpy(batch["parsing"])[:n] if "parsing" in batch else None
        ctx = scorer.context(hr, classes)
        for k, v in scorer(sr, hr, ctx).items():
            cols.setdefault(k, []).append(np.asarray(v, dtype=np.float64).reshape(-1))
        bic = None
        if baseline and lr is not None:
            bic = bicubic_baseline(lr, hr.shape[1])
            for k, v in scorer(bic, hr, ctx).items():
                base.setdefault(k, []).append(np.asarray(v, dtype=np.float64).reshape(-1))
        k_keep = min(n, grid_n - seen) if grid_n > seen else 0
        if k_keep:
            for name, arr in (("lr", lr), (BICUBIC, bic), ("sr", sr), ("hr", hr)):
                if arr is not None:
                    keep.setdefault(name, []).append(arr[:k_keep])
        if sr_dir is not None:
            from facesr.data.images import write_png

            for id_, img in zip(batch_ids, sr):
                write_png(Path(sr_dir) / f"{id_}.png", img)
        ids.extend(batch_ids)
        seen += n
        if limit and seen >= limit:
            break
    if not seen:
        raise DatasetError("nothing to evaluate: the batches held no images")
    samples: dict[str, Any] = {k: np.concatenate(v) for k, v in keep.items()}
    if samples:
        samples["ids"] = ids[: len(samples["hr"])]
    result = EvalResult(ids, {k: np.concatenate(v) for k, v in cols.items()},
                        {p.name: p.description for p in protos}, samples=samples)
    if base:
        result.baselines[BICUBIC] = {k: np.concatenate(v) for k, v in base.items()}
    return result
