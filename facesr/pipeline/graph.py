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
the ``landmarks`` stage then only records that.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from facesr.errors import ConfigError
from facesr.pipeline.hashing import stage_key
from facesr.pipeline.stages import HEATMAP_DTYPE, VERSIONS, ArraySpec, Stage, provider_config

__all__ = ["BuildOptions", "Plan", "invalidated", "plan_build"]

CROP_METHODS = ("aligned", "landmarks", "resize")
#: boxes kept per face (``priors/boxes`` width); pad_boxes keeps the highest-scoring ones beyond it.
MAX_BOXES = {"landmarks": 16, "yoloworld": 100}


@dataclass(frozen=True)
class BuildOptions:
    """Everything that decides a store's content (plus ``weights_dir``, which only says where files are).

    ``priors=False`` plans the ``data prepare`` subset (ingest, crop, degrade).
    """

    crop: str = "aligned"
    crop_options: Mapping[str, Any] = field(default_factory=dict)
    size: int = 128
    lr: tuple[str, ...] = ()
    priors: bool = True
    landmarker: Mapping[str, Any] | None = None  # None: upsample 1, fallback "center" for aligned crops
    detector: str = "landmarks"
    detector_options: Mapping[str, Any] = field(default_factory=dict)
    parser: str = "landmarks"
    parser_options: Mapping[str, Any] = field(default_factory=dict)
    heatmap: str = "paper"
    heatmap_overrides: Mapping[str, Any] = field(default_factory=dict)
    weights_dir: str | None = None

    def __post_init__(self) -> None:
        if self.crop not in CROP_METHODS:
            raise ConfigError(f"unknown crop method {self.crop!r}", hint=f"choose one of {', '.join(CROP_METHODS)}")


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
    if isinstance(d.get("fallback"), tuple):
        d["fallback"] = list(d["fallback"])
    return d


def _provider(opts: BuildOptions, kind: str, name: str, options: Mapping[str, Any]) -> tuple[dict, dict]:
    """(``provider.config()``, the unhashed runtime options) of provider ``name`` built with ``options``."""
    needs_weights = kind == "landmarker" or name in ("yoloworld", "bisenet")
    rt = {"weights_dir": opts.weights_dir} if opts.weights_dir and needs_weights else {}
    return provider_config(kind, name, {**options, **rt}), rt


def _finish(stages: list[Stage]) -> Plan:
    keys: dict[str, str] = {}
    done = []
    for s in stages:
        k = stage_key(s.name, s.version, s.config, {d: keys[d] for d in s.deps})
        keys[s.name] = k
        done.append(replace(s, key=k))
    return Plan(tuple(done))


def plan_build(opts: BuildOptions, ingest: Mapping[str, Any], lr_names: Mapping[str, tuple[str, int]]) -> Plan:
    """The stages for ``opts``.

    ``ingest``: the ingest stage's config (source config, record digest). ``lr_names``: spec string →
    (array-safe name, LR side), from :mod:`facesr.data.degrade`. Providers are built here once (in this
    process) to read their ``config()`` into the keys, which also checks their weights before any work.
    """
    from facesr.data.crop import check_options

    check_options(opts.crop, opts.crop_options)  # a typo must not turn every record into a crop failure
    s = int(opts.size)
    stages: list[Stage] = [Stage("ingest", "ingest", outputs=(), config=dict(ingest), version=VERSIONS["ingest"])]

    crop_cfg: dict[str, Any] = {"method": opts.crop, "size": s, "options": dict(opts.crop_options)}
    crop_out = [ArraySpec("hr", (s, s, 3), "uint8"), ArraySpec("failure", (), "str")]
    crop_attrs: dict[str, Any] = {"crop": opts.crop, "crop_options": dict(opts.crop_options)}
    crop_runtime: dict[str, Any] = {}
    if opts.crop == "landmarks":
        lo = _landmarker_options(opts, on_hr=False)
        pc, crop_runtime = _provider(opts, "landmarker", "dlib68", lo)
        crop_cfg["landmarker"] = {"name": "dlib68", "options": lo, "provider": pc}
        crop_out.append(ArraySpec("landmarks", (68, 2), "float32"))
        crop_attrs["landmarker"] = pc
    stages.append(
        Stage("crop", "crop", deps=("ingest",), reads=(), outputs=tuple(crop_out), config=crop_cfg,
              attrs=crop_attrs, version=VERSIONS["crop"], runtime=crop_runtime)
    )
    for spec in opts.lr:
        name, side = lr_names[spec]
        arr = f"lr/{name}"
        stages.append(
            Stage(f"degrade/{name}", "degrade", deps=("crop",), reads=("hr", "failure"),
                  outputs=(ArraySpec(arr, (side, side, 3), "uint8"),),
                  config={"spec": spec, "array": arr, "size": side}, attrs={"lr": spec, "provider": "facesr.data.degrade"},
                  version=VERSIONS["degrade"])
        )
    if not opts.priors:
        return _finish(stages)

    # landmarks
    if opts.crop == "landmarks":
        stages.append(
            Stage("landmarks", "landmarks-from-crop", deps=("crop",), outputs=(),
                  config={"from": "crop"}, attrs={}, version=VERSIONS["landmarks"])
        )
    else:
        lo = _landmarker_options(opts, on_hr=True)
        pc, rt = _provider(opts, "landmarker", "dlib68", lo)
        stages.append(
            Stage("landmarks", "landmarks", deps=("crop",), reads=("hr", "failure"),
                  outputs=(ArraySpec("landmarks", (68, 2), "float32"),),
                  config={"name": "dlib68", "options": lo, "provider": pc},
                  attrs={"provider": "dlib68", "provider_config": pc, "weights": pc.get("predictor")},
                  version=VERSIONS["landmarks"], runtime=rt)
        )
    # detect
    do = dict(opts.detector_options)
    k = int(do.pop("max_k", MAX_BOXES.get(opts.detector, 64)))  # a stage option, not the detector's
    pc, rt = _provider(opts, "detector", opts.detector, do)
    stages.append(
        Stage("detect", "detect", deps=("landmarks",), reads=("hr", "failure", "landmarks"),
              outputs=(ArraySpec("priors/boxes", (k, 6), "float32"),),
              config={"name": opts.detector, "options": do, "provider": pc, "max_k": k},
              attrs={"provider": opts.detector, "provider_config": pc, "weights": pc.get("weights", "none"),
                     "columns": ["x1", "y1", "x2", "y2", "score", "cls"], "padding": "NaN rows"},
              version=VERSIONS["detect"], runtime=rt)
    )
    # heatmap
    from facesr.priors.heatmap import get_params

    params = get_params(opts.heatmap, **dict(opts.heatmap_overrides))
    pdict = params.to_dict()
    stages.append(
        Stage("heatmap", "heatmap", deps=("detect",), reads=("hr", "priors/boxes"),
              outputs=(ArraySpec("priors/heatmap", (s, s), HEATMAP_DTYPE),),
              config={"preset": opts.heatmap, "params": pdict},
              attrs={"provider": "facesr.priors.heatmap", "preset": opts.heatmap, "params": pdict,
                     "dtype": HEATMAP_DTYPE, "range": [0.0, 1.0], "quantisation": "float16 (max error 4.9e-4)",
                     "boxes_from": opts.detector},
              version=VERSIONS["heatmap"])
    )
    # parse
    po = dict(opts.parser_options)
    pc, rt = _provider(opts, "parser", opts.parser, po)
    from facesr.priors.parsing import PARSING_CLASSES

    stages.append(
        Stage("parse", "parse", deps=("landmarks",), reads=("hr", "failure", "landmarks"),
              outputs=(ArraySpec("priors/parsing", (s, s), "uint8"),),
              config={"name": opts.parser, "options": po, "provider": pc},
              attrs={"provider": opts.parser, "provider_config": pc, "weights": pc.get("weights", "none"),
                     "classes": list(PARSING_CLASSES)},
              version=VERSIONS["parse"], runtime=rt)
    )
    deps = tuple(x.name for x in stages if x.name not in ("ingest",))
    stages.append(Stage("verify", "verify", deps=deps, config={"version": 1}, version=1))
    return _finish(stages)


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
