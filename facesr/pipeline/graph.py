"""The build DAG: which stages exist for a set of options, what each reads and writes, and their keys.

::

    ingest ─► crop ─┬─► degrade/<lr> (one stage per LR spec)
                    ├─► landmarks ─┬─► detect ─► heatmap ─┐
                    │              └─► parse ─────────────┴─► verify
                    └───────────────────────────────────────►

A stage's key hashes its name, code version, config (provider config included) and its dependencies'
keys (:func:`facesr.pipeline.hashing.stage_key`), so changing, say, the heatmap preset changes the keys of
``heatmap`` and ``verify`` only: :func:`invalidated` lists exactly the stages a rerun recomputes.
``--crop landmarks`` lets ``crop`` write ``landmarks`` (dlib on the original photo, mapped into the crop);
there is then no ``landmarks`` stage. A stage's ``deps`` are the producers of the arrays it reads: the task
graph (:mod:`facesr.pipeline.tasks`) hands those arrays from task to task.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from facesr.data import schema
from facesr.data.degrade import LRSpec
from facesr.errors import ConfigError
from facesr.pipeline.hashing import stage_key
from facesr.pipeline.options import BuildOptions
from facesr.pipeline.providers import provider_config
from facesr.pipeline.stages import (VERSIONS, Output, Stage, crop_chunk, degrade_chunk, detect_chunk, heatmap_chunk,
                                    landmarks_chunk, parse_chunk)

__all__ = ["Plan", "describe", "invalidated", "plan_build"]

#: boxes kept per face (``priors/boxes`` width); pad_boxes keeps the highest-scoring ones beyond it.
MAX_BOXES = {"landmarks": 16, "yoloworld": 100, "yoloworld-random": 100}


@dataclass(frozen=True)
class Plan:
    """Stages in a valid execution order (dependencies first), each with its key."""

    stages: tuple[Stage, ...]

    def __getitem__(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    def __contains__(self, name: str) -> bool:
        return any(s.name == name for s in self.stages)

    def __iter__(self):
        return iter(self.stages)

    def names(self) -> list[str]:
        return [s.name for s in self.stages]

    def keys(self) -> dict[str, str]:
        return {s.name: s.key for s in self.stages}

    def producer(self, array: str) -> Stage:
        """The stage that writes ``array``."""
        for s in self.stages:
            if any(o.name == array for o in s.outputs):
                return s
        raise KeyError(array)

    def downstream(self, names: Iterable[str]) -> list[str]:
        """``names`` and every stage that depends on them, in plan order."""
        hit = set(names)
        out = []
        for s in self.stages:
            if s.name in hit or hit & set(s.deps):
                hit.add(s.name)
                out.append(s.name)
        return out


def _landmarker_options(opts: BuildOptions, on_hr: bool) -> dict:
    if opts.landmarker is not None:
        d = dict(opts.landmarker)
    else:
        # On aligned 128 crops a HOG miss may fall back to the mean aligned face box; on wild photos never.
        d = {"upsample": 1, "fallback": "center" if (on_hr and opts.crop in ("aligned", "landmarks")) else None}
        if on_hr and opts.crop == "aligned":  # the face sits in a known box: the fast path (no detection)
            d["known_box"] = "aligned"
        if not on_hr:  # wild photos (--crop landmarks): dlib's CNN for the photos HOG misses
            d["detector"] = "hog+cnn"
    if isinstance(d.get("fallback"), tuple):
        d["fallback"] = list(d["fallback"])
    return d


class _Builder:
    """Collects stages; a stage's ``deps`` are the producers of the arrays it reads."""

    def __init__(self, weights_dir: str | None) -> None:
        self.stages: list[Stage] = []
        self.weights_dir = weights_dir

    def add(self, name: str, fn, *, reads=(), outputs=(), config, attrs=None, version=None, deps=()) -> None:
        made = {o.name: s.name for s in self.stages for o in s.outputs}
        deps = tuple(dict.fromkeys([*deps, *(made[r] for r in reads if r in made)]))
        self.stages.append(Stage(name, fn, deps=deps, reads=tuple(reads), outputs=tuple(outputs), config=config,
                                 attrs=dict(attrs or {}), version=VERSIONS[name.split("/")[0]] if version is None
                                 else version, weights_dir=self.weights_dir if fn is not None else None))

    def provider(self, kind: str, name: str, options: Mapping[str, Any]) -> dict:
        return provider_config(kind, name, options, self.weights_dir)

    def finish(self) -> Plan:
        keys: dict[str, str] = {}
        done = []
        for s in self.stages:
            k = stage_key(s.name, s.version, s.config, {d: keys[d] for d in s.deps})
            keys[s.name] = k
            done.append(replace(s, key=k))
        return Plan(tuple(done))


def plan_build(opts: BuildOptions, ingest: Mapping[str, Any], *, weights_dir: str | None = None,
               lr_files: Mapping[str, Any] | None = None) -> Plan:
    """The stages for ``opts`` (with ``crop`` decided: the build fills it from the store or the dataset).

    ``ingest``: the ingest stage's config (source config, record digest). ``lr_files``: for a source with
    its own LR files (``pairs``), ``{"spec": "bicubic-pil:16"}``: the crop stage stores them as that LR array
    (instead of a degrade stage). Providers are built here once (in this process) to read their
    ``config()`` into the keys, which also checks their weights before any work.
    """
    if opts.crop is None:
        raise ConfigError("plan_build needs a crop method")
    s = int(opts.size)
    b = _Builder(weights_dir)
    b.add("ingest", None, outputs=(Output(schema.IDS), Output(schema.SPLIT)), config=dict(ingest))

    crop_cfg: dict[str, Any] = {"method": opts.crop, "size": s, "options": dict(opts.crop_options or {}),
                                "read": {"max_pixels": int(opts.max_pixels), "min_side": int(opts.min_side)}}
    crop_out = [Output(schema.HR, (s, s, 3)), Output(schema.FAILURE)]
    crop_attrs: dict[str, Any] = {"crop": opts.crop, "crop_options": dict(opts.crop_options or {}),
                                  "read": crop_cfg["read"]}
    if opts.crop == "landmarks":
        lo = _landmarker_options(opts, on_hr=False)
        pc = b.provider("landmarker", "dlib68", lo)
        crop_cfg["landmarker"] = {"name": "dlib68", "options": lo, "provider": pc}
        crop_out.append(Output(schema.LANDMARKS, (68, 2)))
        crop_attrs["landmarker"] = pc
    given = None
    if lr_files is not None:
        given = schema.lr(lr_files["spec"])
        side = given.shape(0)[1]
        crop_cfg["lr_files"] = {"spec": str(lr_files["spec"]), "array": given.name, "size": side}
        crop_out.append(Output(given, (side, side, 3)))
        crop_attrs["lr_files"] = {"spec": str(lr_files["spec"]), "from": "the source's LR files, as given"}
    b.add("crop", crop_chunk, outputs=crop_out, config=crop_cfg, attrs=crop_attrs, deps=("ingest",))
    for spec in opts.lr:
        arr = schema.lr(spec)
        if given is not None and arr.name == given.name:
            continue  # the given files are this LR set
        side = arr.shape(0)[1]
        b.add(f"degrade/{LRSpec.parse(spec).name}", degrade_chunk, reads=(schema.HR.name, schema.FAILURE.name),
              outputs=(Output(arr, (side, side, 3)),), config={"spec": spec, "array": arr.name, "size": side},
              attrs={"lr": spec, "provider": "facesr.data.degrade"})
    if not opts.priors:
        return b.finish()

    hr_in = (schema.HR.name, schema.FAILURE.name)
    if opts.crop != "landmarks":  # with --crop landmarks the crop stage wrote them (on the original photo)
        lo = _landmarker_options(opts, on_hr=True)
        pc = b.provider("landmarker", "dlib68", lo)
        b.add("landmarks", landmarks_chunk, reads=hr_in, outputs=(Output(schema.LANDMARKS, (68, 2)),),
              config={"name": "dlib68", "options": lo, "provider": pc},
              attrs={"provider": "dlib68", "provider_config": pc, "weights": pc.get("predictor")})
    lm_in = (*hr_in, schema.LANDMARKS.name)
    do = dict(opts.detector_options)
    k = int(do.pop("max_k", MAX_BOXES.get(opts.detector, 64)))  # a stage option, not the detector's
    pc = b.provider("detector", opts.detector, do)
    b.add("detect", detect_chunk, reads=lm_in, outputs=(Output(schema.BOXES, (k, 6)),),
          config={"name": opts.detector, "options": do, "provider": pc, "max_k": k},
          attrs={"provider": opts.detector, "provider_config": pc, "weights": pc.get("weights", "none"),
                 "columns": ["x1", "y1", "x2", "y2", "score", "cls"], "padding": "NaN rows"})
    from facesr.priors.heatmap import get_params

    pdict = get_params(opts.heatmap, **dict(opts.heatmap_overrides)).to_dict()
    b.add("heatmap", heatmap_chunk, reads=(schema.HR.name, schema.BOXES.name),
          outputs=(Output(schema.HEATMAP, (s, s)),), config={"preset": opts.heatmap, "params": pdict},
          attrs={"provider": "facesr.priors.heatmap", "preset": opts.heatmap, "params": pdict,
                 "dtype": schema.HEATMAP.dtype, "range": [0.0, 1.0], "quantisation": "float16 (max error 4.9e-4)",
                 "boxes_from": opts.detector})
    po = dict(opts.parser_options)
    pc = b.provider("parser", opts.parser, po)
    from facesr.priors.parsing import PARSING_CLASSES

    b.add("parse", parse_chunk, reads=lm_in, outputs=(Output(schema.PARSING, (s, s)),),
          config={"name": opts.parser, "options": po, "provider": pc},
          attrs={"provider": opts.parser, "provider_config": pc, "weights": pc.get("weights", "none"),
                 "classes": list(PARSING_CLASSES)})
    b.add("verify", None, config={"version": VERSIONS["verify"]},
          deps=tuple(x.name for x in b.stages if x.per_chunk))
    return b.finish()


def invalidated(plan: Plan, recorded: Mapping[str, str]) -> list[str]:
    """Stages whose key differs from the ``recorded`` one (or that were never recorded), in plan order."""
    return [s.name for s in plan if recorded.get(s.name) != s.key]


def describe(plan: Plan) -> list[dict[str, Any]]:
    """A JSON-able record of the plan, kept in the store attrs (``pipeline``) for ``priors status``."""
    return [
        {
            "name": s.name,
            "key": s.key,
            "deps": list(s.deps),
            "outputs": [o.name for o in s.outputs],
            "config": s.config,
        }
        for s in plan
    ]
