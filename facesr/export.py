"""Models that leave facesr: export a trained run to ONNX, TorchScript or safetensors, and load it back.

Every format holds the same graph, the one :func:`facesr.load_run`'s ``.model`` runs: ``lr (B, 3, h, w)`` float32
RGB in ``[0, 1]`` → ``sr (B, 3, 128, 128)`` in ``[0, 1]``, **unclamped** (clamp and quantise yourself; a model
whose paper works in ``[-1, 1]`` or mean-subtracted converts inside the graph). A model with side outputs
(W-Net's parsing map) exports only ``sr``. The weights are the run's EMA weights when it has them, else its
model weights, from ``checkpoints/best`` (falling back to ``last``) unless ``which="last"``.

=============  =================================================  ==============================================
format         holds                                              leaves out
=============  =================================================  ==============================================
onnx           the eval-mode graph and weights (legacy             training state, optimizer, side outputs; fixed
               TorchScript-based exporter, opset 17), input        LR side (h, w) — only the batch axis is
               ``lr``, output ``sr``, a dynamic ``batch`` axis;     dynamic; GVTNet exports (its ``p = ∞``
               checked against torch with onnxruntime              adjacency through an exact max-|·| form)
torchscript    ``torch.jit.trace`` of the same graph (any batch)   as onnx; TorchScript is deprecated upstream
safetensors    the state dict plus metadata ``facesr.model``,      the graph itself (rebuilt from the registry by
               ``facesr.args`` (JSON), range, LR side, weights     :func:`load`), optimizer, discriminator
=============  =================================================  ==============================================

Beside the file a ``MODEL_CARD.md`` (:mod:`facesr.model_card`) says what it is and how it was made.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from facesr.errors import ConfigError, WeightsInvalidError, WeightsMissingError

FORMATS = ("onnx", "torchscript", "safetensors")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt", "safetensors": ".safetensors"}
TOLERANCE = 1e-4  # max |onnxruntime − torch| (and TorchScript − eager) accepted by the check
META_MODEL, META_ARGS = "facesr.model", "facesr.args"

__all__ = ["FORMATS", "ExportResult", "SRGraph", "TOLERANCE", "export_model", "export_run", "load", "weights_metadata"]


def weights_metadata(name: str, args: dict | None = None, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The safetensors metadata that lets :func:`load` rebuild a network from the file alone: the registered
    model ``name`` and its builder ``args`` (JSON), plus ``extra`` string entries. Exports and training
    checkpoints both write it (:func:`facesr.train.checkpoint.save`)."""
    return {**{k: str(v) for k, v in (extra or {}).items()}, META_MODEL: str(name),
            META_ARGS: json.dumps(dict(args or {}), sort_keys=True), "format": "pt"}


class SRGraph(nn.Module):
    """The exported graph: ``model(lr)``'s SR tensor (the ``"sr"`` entry of a dict output), eval mode."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.eval()

    def forward(self, lr: torch.Tensor) -> torch.Tensor:
        from facesr.models import sr_of

        return sr_of(self.model(lr))


@dataclass
class ExportResult:
    """What :func:`export_run` wrote: the file, its card, and the check against eager torch."""

    path: Path
    format: str
    card: Path | None = None
    max_abs_diff: float | None = None  # onnx / torchscript: max |exported − torch| on the check batches
    check: str = ""  # how it was checked
    notes: list[str] = field(default_factory=list)


def _check_batches(lr_side: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return [torch.rand(b, 3, lr_side, lr_side, generator=g) for b in (1, 3)]  # two sizes: the batch axis is free


@contextlib.contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the legacy exporter's and jit's deprecation notes: documented above
        yield


def export_model(model: nn.Module, fmt: str, out: str | os.PathLike, *, lr_side: int, name: str = "",
                 args: dict | None = None, metadata: dict[str, str] | None = None, check: bool = True,
                 opset: int = 17) -> ExportResult:
    """Write ``model`` (CPU, eval) as ``fmt`` to ``out``; onnx and torchscript are run on two batches (1 and 3)
    of ``lr_side`` × ``lr_side`` inputs and compared with eager torch (``max_abs_diff``)."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}", hint=f"one of {', '.join(FORMATS)}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    graph = SRGraph(model.cpu().float())
    batches = _check_batches(lr_side)
    res = ExportResult(out, fmt)
    if fmt == "safetensors":
        from safetensors.torch import save_file

        meta = weights_metadata(name, args, metadata)
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}, str(out),
                  metadata=meta)
        if check:
            rebuilt = load(out)
            with torch.no_grad():
                res.max_abs_diff = max(float((SRGraph(rebuilt)(x) - graph(x)).abs().max()) for x in batches)
            res.check = "facesr.load(file) rebuilt the network; outputs compared with the run's on batches 1 and 3"
        return res
    if fmt == "onnx":
        _require_onnx(check)
    with _quiet(), torch.no_grad():
        if fmt == "onnx":
            torch.onnx.export(graph, (batches[0],), str(out), dynamo=False, opset_version=opset,
                              input_names=["lr"], output_names=["sr"],
                              dynamic_axes={"lr": {0: "batch"}, "sr": {0: "batch"}})
        else:
            torch.jit.trace(graph, (batches[0],), check_trace=False).save(str(out))
    if check:
        res.max_abs_diff, res.check = _compare(fmt, out, graph, batches)
    return res


def _require_onnx(check: bool) -> None:
    """ONNX export needs ``onnx`` (and ``onnxruntime`` for the check): an optional extra, so one line if absent."""
    import importlib.util

    missing = [m for m in ("onnx", "onnxruntime")[: 2 if check else 1] if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"--format onnx needs the {' and '.join(missing)} package(s)",
                          hint="pip install 'facesr[export]'")


def _compare(fmt: str, path: Path, graph: nn.Module, batches: list[torch.Tensor]) -> tuple[float, str]:
    diffs = []
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        run = lambda x: torch.from_numpy(sess.run(None, {"lr": x.numpy()})[0])  # noqa: E731
        how = f"onnxruntime {ort.__version__} (CPU) against torch {torch.__version__}"
    else:
        with _quiet():
            loaded = torch.jit.load(str(path))
        run = lambda x: loaded(x)  # noqa: E731
        how = "torch.jit.load against eager torch"
    with torch.no_grad():
        for x in batches:
            diffs.append(float((run(x) - graph(x)).abs().max()))
    return max(diffs), f"{how}, batches of {', '.join(str(len(x)) for x in batches)}"


def export_run(run: str | os.PathLike, fmt: str, out: str | os.PathLike | None = None, *, which: str = "best",
               card: bool = True, check: bool = True) -> ExportResult:
    """Export a run folder's model (see the module docstring); ``out`` defaults to ``RUN/export/model<suffix>``.

    Writes ``MODEL_CARD.md`` beside the file (``card=False``: not). A check above :data:`TOLERANCE` is noted in
    ``result.notes`` (the CLI then exits 1).
    """
    from facesr.model_card import RunRecord, write_card
    from facesr.models.catalog import model_scale

    rec = RunRecord.read(run, which)
    pred = rec.predictor
    out = Path(out) if out is not None else Path(run) / "export" / f"model{SUFFIX.get(fmt, '')}"
    meta = {"facesr.input_range": "0_1", "facesr.lr_size": str(pred.lr_size),
            "facesr.scale": str(model_scale(pred.model) or ""), "facesr.weights": pred.weights,
            "facesr.version": rec.facesr_version}
    res = export_model(pred.model, fmt, out, lr_side=pred.lr_size, name=pred.cfg.model.name,
                       args=dict(pred.cfg.model.args), metadata=meta, check=check)
    if res.max_abs_diff is not None and res.max_abs_diff > TOLERANCE:
        res.notes.append(f"max |diff| {res.max_abs_diff:.2e} exceeds {TOLERANCE:g}")
    if card:
        res.card = write_card(rec, res, out.parent / "MODEL_CARD.md")
    return res


def load(path: str | os.PathLike, *, device: str = "cpu") -> nn.Module:
    """Rebuild the network of a facesr ``.safetensors`` export from the file alone (eval mode).

    The metadata (:func:`weights_metadata`) names the registered model and its builder arguments; the state
    dict must then match it exactly. A training checkpoint's ``model.safetensors`` / ``ema.safetensors``
    carry the same metadata; one written by an older facesr without it is refused with a hint.
    """
    from safetensors import SafetensorError, safe_open

    from facesr import models

    path = Path(path)
    if not path.is_file():
        raise WeightsMissingError(f"{path} not found", hint="export one with `facesr export RUN --format "
                                                            "safetensors -o FILE`", path=str(path))
    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsInvalidError(f"{path} is not a readable safetensors file ({exc})", path=str(path)) from None
    if META_MODEL not in meta:
        raise WeightsInvalidError(f"{path} does not name its model (no {META_MODEL!r} metadata)",
                                  hint="a run checkpoint: use facesr.load_run(RUN); or export it with "
                                       "`facesr export RUN --format safetensors`", path=str(path))
    try:
        args = json.loads(meta.get(META_ARGS, "{}"))
    except ValueError:
        raise WeightsInvalidError(f"{path}: unreadable {META_ARGS!r} metadata", path=str(path)) from None
    model = models.build(meta[META_MODEL], **args)
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightsInvalidError(f"{path}: weights do not fit {meta[META_MODEL]} ({first})",
                                  path=str(path)) from None
    return model.to(device).eval()
