"""``MODEL_CARD.md`` for an exported run: what the file is, how it was trained, on what, and how well.

Read from the run folder alone (:class:`RunRecord`): ``config.yaml`` (the resolved config: model and arguments,
preset, recipe), ``run.json`` (the store, its snapshot id and attributes, versions), ``metrics.csv`` (one row
per validation, columns named with their protocol: ``psnr[dic]``) and the checkpoint's ``state.json`` (epoch,
step). Departures: every key where the run's config differs from its preset (the user's overrides), the
preset's own header comments (its recipe notes), and the model module's documented departures from its paper.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunRecord", "card_text", "write_card"]


@dataclass
class RunRecord:
    """A run folder, read: the predictor (model + weights), config dict, run.json, metrics rows."""

    run: Path
    predictor: Any
    config: dict
    run_json: dict
    metrics: list[dict]
    facesr_version: str

    @classmethod
    def read(cls, run: str | os.PathLike, which: str = "best") -> RunRecord:
        import yaml

        from facesr import __version__
        from facesr.train.inference import load_run

        pred = load_run(run, which=which, device="cpu")
        folder = pred.folder.parent.parent
        config = yaml.safe_load((folder / "config.yaml").read_text()) or {}
        rj = folder / "run.json"
        run_json = json.loads(rj.read_text()) if rj.is_file() else {}
        mc = folder / "metrics.csv"
        metrics = list(csv.DictReader(mc.open())) if mc.is_file() else []
        return cls(folder, pred, config, run_json, metrics, __version__)


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and key not in ("model.args", "model.discriminator_args"):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


def _overrides(config: dict) -> list[tuple[str, Any, Any]]:
    """``(key, preset value, run value)`` for every key the run changed from its preset (and the defaults)."""
    from facesr.errors import FacesrError
    from facesr.train.config import load_config, to_dict

    try:
        preset = _flat(to_dict(load_config(config.get("preset") or None)))
    except FacesrError:
        return []
    run = _flat(config)
    return [(k, preset.get(k), v) for k, v in sorted(run.items()) if k in preset and preset[k] != v]


def _preset_notes(name: str) -> list[str]:
    from facesr.errors import FacesrError
    from facesr.train.config import preset_text

    try:
        text = preset_text(name)
    except FacesrError:
        return []
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return [" ".join(lines)] if lines else []


def _model_departures(model) -> list[str]:
    """Bullets of the model module's "Known departures" / "Choices" paragraphs (its docstring)."""
    import sys

    doc = sys.modules[type(model).__module__].__doc__ or ""
    out = []
    for para in re.split(r"\n\s*\n", doc):
        if re.match(r"\s*(Known departures|Departures|Choices)", para):
            out.append(" ".join(para.split()))
    return out


def _metric_rows(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The best validation row (``best`` True, the last such) and the final row, metric columns only."""
    if not rows:
        return [], []
    cols = [c for c in rows[0] if "[" in c or c in ("lpips", "score")]
    picks = []
    best = [r for r in rows if str(r.get("best", "")).lower() == "true"]
    if best:
        picks.append(("best", best[-1]))
    picks.append(("last", rows[-1]))
    table = [[label, r.get("epoch", ""), r.get("step", ""), r.get("kind", "")] + [_num(r.get(c, "")) for c in cols]
             for label, r in picks]
    return ["row", "epoch", "step", "kind", *cols], table


def _num(v: str) -> str:
    try:
        return f"{float(v):.4f}"
    except (TypeError, ValueError):
        return str(v)


def _protocols(cols: list[str]) -> list[str]:
    from facesr.errors import FacesrError
    from facesr.metrics.protocols import get_protocol

    names = sorted({m.group(1) for c in cols if (m := re.search(r"\[(\w+)\]", c))})
    out = []
    for n in names:
        try:
            out.append(f"`{n}`: {get_protocol(n).description}")
        except FacesrError:
            out.append(f"`{n}`")
    return out


def _table(head: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return lines


def card_text(rec: RunRecord, result) -> str:
    """The card's Markdown (``result``: the :class:`facesr.export.ExportResult` it describes)."""
    from facesr.models import MODELS
    from facesr.models.layers import count_params

    pred, cfg = rec.predictor, rec.config
    model_cfg, data = cfg.get("model", {}), cfg.get("data", {})
    name = model_cfg.get("name", "?")
    st = pred.state.get("train", {})
    doc = (MODELS.get(name).__doc__ or "").strip().splitlines()
    rj = rec.run_json
    lines = [
        f"# {name} — exported by facesr {rec.facesr_version}",
        "",
        f"Exported {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')} from run `{rec.run}` "
        f"(checkpoint `{pred.folder.name}`, epoch {st.get('epoch')}, step {st.get('step')}, {pred.weights} weights).",
        "",
        "## File",
        "",
        *_table(["file", "format", "check"], [[result.path.name, result.format,
                                                (f"max abs diff {result.max_abs_diff:.2e} — " if result.max_abs_diff
                                                 is not None else "") + (result.check or "not checked")]]),
        "",
        "Input `lr`: float32 RGB `(B, 3, {0}, {0})` in [0, 1]; output `sr`: `(B, 3, 128, 128)` in [0, 1], "
        "unclamped (clamp, then ×255 and round for uint8). Only the batch axis is dynamic.".format(pred.lr_size),
        "",
        "## Model",
        "",
        f"- registry name: `{name}` — {doc[0] if doc else ''}",
        f"- arguments: `{json.dumps(model_cfg.get('args', {}), sort_keys=True)}`",
        f"- parameters: {count_params(pred.model):,}",
        f"- rebuild: `facesr.models.build({name!r}, **arguments)`; from a safetensors export: `facesr.load(FILE)`",
        "",
        "## Training",
        "",
        f"- preset: `{cfg.get('preset') or '(none)'}`; loss recipe: `{cfg.get('loss', {}).get('recipe') or '(terms)'}`",
        f"- seed {cfg.get('seed')}, epochs {cfg.get('epochs')}, max steps {cfg.get('max_steps')}; "
        f"optimizer {json.dumps(cfg.get('optim', {}), sort_keys=True)}; schedule "
        f"{json.dumps(cfg.get('sched', {}), sort_keys=True)}; EMA {json.dumps(cfg.get('ema', {}), sort_keys=True)}",
        f"- augmentation: `{json.dumps(data.get('augment', {}), sort_keys=True)}`",
        f"- trained with torch {rj.get('torch', '?')} on {rj.get('device', '?')} (amp {rj.get('amp', '?')}, "
        f"world size {rj.get('world_size', '?')}), facesr {rj.get('facesr', '?')}",
        "",
        "## Data",
        "",
        f"- store: `{rj.get('store')}`; snapshot: `{rj.get('store_snapshot') or '(none recorded)'}`",
        f"- store attributes: `{json.dumps(rj.get('store_attrs', {}), sort_keys=True)}`",
        f"- LR input: `{', '.join(pred.lr_specs)}`; priors: `{data.get('priors', [])}`",
        f"- splits: train `{data.get('train_split')}`, validation `{data.get('val_split')}` "
        f"(first {data.get('val_limit')} images)",
        "",
        "## Metrics",
        "",
    ]
    head, rows = _metric_rows(rec.metrics)
    if rows:
        lines += [*_table(head, rows), "", "Protocols: " + "; ".join(_protocols(head)) + ".",
                  f"Validation on the `{data.get('val_split')}` split of the store above; bicubic columns are the "
                  "same LR upscaled by bicubic.", ""]
    else:
        lines += ["No validation recorded (`metrics.csv` is absent or empty).", ""]
    lines += ["## Departures", ""]
    over = _overrides(cfg)
    if over:
        lines += [f"Settings this run changed from its preset `{cfg.get('preset')}`:", "",
                  *_table(["key", "preset", "this run"], [[f"`{k}`", f"`{a}`", f"`{b}`"] for k, a, b in over]), ""]
    else:
        lines += ["The run used its preset's settings unchanged.", ""]
    notes = _preset_notes(cfg.get("preset") or "")
    if notes:
        lines += [f"Preset notes: {notes[0]}", ""]
    for para in _model_departures(pred.model):
        lines += [f"- {para}"]
    lines += ["", f"See `{type(pred.model).__module__.replace('.', '/')}.py` for the paper-versus-code table.", ""]
    return "\n".join(lines)


def write_card(rec: RunRecord, result, path: str | os.PathLike) -> Path:
    """Write :func:`card_text` to ``path``; returns it."""
    path = Path(path)
    path.write_text(card_text(rec, result))
    return path
