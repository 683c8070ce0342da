"""Recipe cards: for every preset, each training setting as the paper states it, as the released code sets it,
and as facesr trains it (issue 10, item 7).

A card lives in its preset file as a top-level ``recipe:`` block (the config loader skips it)::

    recipe:
      paper: shared/papers/003_mrrnet.txt          # where the paper's column comes from
      code: SYLan2019/MRRNet                         # the released code, or "none public"
      rows:
        - {setting: learning rate, key: optim.lr, paper: "1e-4 (§4.2)", code: "1e-4 (train.sh)", follows: both}

Row fields: ``setting`` (what), ``paper`` / ``code`` (the value and, in parentheses, the section or file;
"none stated" where silent), ``follows`` (``paper`` | ``code`` | ``both`` | ``ours``), optional ``key`` (a config
key or a list of them: the facesr column is then read from the *resolved* config, so a card cannot drift
from what is trained), optional ``facesr`` (free text, for what no key says) and ``note`` (why; required for
``ours``). The verdict is derived, never typed: ``ours`` where the paper or code states a value is a
**departure**; ``ours`` where both are silent is **both silent: our choice**.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from facesr.errors import ConfigError

__all__ = ["FOLLOWS", "Card", "Row", "card", "card_dict", "check_heatmap_preset", "is_silent", "preset_keys"]

FOLLOWS = ("paper", "code", "both", "ours")
_SILENT = ("", "-", "—", "none stated", "silent", "no public code", "none public", "n/a")


def is_silent(text: str) -> bool:
    """True for a cell that states nothing ("none stated", "—", "no public code", …)."""
    t = str(text).strip().lower()
    return t in _SILENT or t.startswith(("none stated", "no public code", "silent"))


@dataclass(frozen=True)
class Row:
    setting: str
    paper: str
    code: str
    follows: str
    keys: tuple[str, ...] = ()
    facesr: str = ""
    note: str = ""

    @property
    def verdict(self) -> str:
        if self.follows == "both":
            return "as paper and code"
        if self.follows in ("paper", "code"):
            other, name = (self.code, "code") if self.follows == "paper" else (self.paper, "paper")
            if is_silent(other):
                return f"as {self.follows}"
            return f"as {self.follows} ({name} " + ("leaves the value open)" if "none stated" in other.lower()
                                                   else "differs)")
        if is_silent(self.paper) and is_silent(self.code):
            return "both silent: our choice"
        return "departs"


@dataclass(frozen=True)
class Card:
    preset: str
    paper: str
    code: str
    rows: tuple[Row, ...]


def _row(raw: Any, where: str) -> Row:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: a recipe row must be a mapping, got {raw!r}")
    unknown = set(raw) - {"setting", "paper", "code", "follows", "key", "facesr", "note"}
    if unknown:
        raise ConfigError(f"{where}: unknown recipe row field(s) {sorted(unknown)}",
                          hint="fields: setting, paper, code, follows, key, facesr, note")
    for need in ("setting", "paper", "code", "follows"):
        if need not in raw:
            raise ConfigError(f"{where}: recipe row {raw.get('setting', raw)!r} lacks {need!r}")
    if raw["follows"] not in FOLLOWS:
        raise ConfigError(f"{where}: recipe row {raw['setting']!r}: follows must be one of {FOLLOWS}")
    keys = raw.get("key") or ()
    keys = (keys,) if isinstance(keys, str) else tuple(keys)
    return Row(str(raw["setting"]), str(raw["paper"]), str(raw["code"]), str(raw["follows"]), keys,
               str(raw.get("facesr", "")), str(raw.get("note", "")))


def card(preset: str) -> Card:
    """The recipe card of a shipped preset (:class:`~facesr.errors.ConfigError` if it has none)."""
    from facesr.train.config import preset_text

    data = yaml.safe_load(preset_text(preset)) or {}
    block = data.get("recipe")
    if not isinstance(block, Mapping) or not block.get("rows"):
        raise ConfigError(f"preset {preset!r} has no recipe card", hint="add a `recipe:` block to its YAML file")
    rows = tuple(_row(r, f"preset {preset}") for r in block["rows"])
    return Card(preset, str(block.get("paper", "")), str(block.get("code", "")), rows)


def _fmt(v: Any) -> str:
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _lookup(cfg_dict: Mapping, key: str) -> Any:
    node: Any = cfg_dict
    for part in key.split("."):
        if not isinstance(node, Mapping) or part not in node:
            raise ConfigError(f"recipe row key {key!r} is not a config key", hint="see facesr/train/presets/defaults.yaml")
        node = node[part]
    return node


def facesr_value(row: Row, cfg_dict: Mapping) -> str:
    """The facesr column: ``key=value`` from the resolved config for each of the row's keys, then its text."""
    parts = [f"{k}={_fmt(_lookup(cfg_dict, k))}" for k in row.keys]
    if row.facesr:
        parts.append(row.facesr)
    return "; ".join(parts)


def card_dict(preset: str, overrides=()) -> dict:
    """The card as plain data (``--recipe --json``): rows with the resolved facesr column and the verdict."""
    from facesr.train.config import load_config, to_dict

    c = card(preset)
    cfg = to_dict(load_config(preset, overrides))
    return {"preset": c.preset, "paper": c.paper, "code": c.code,
            "rows": [{"setting": r.setting, "paper": r.paper, "code": r.code, "facesr": facesr_value(r, cfg),
                      "verdict": r.verdict, "note": r.note} for r in c.rows]}


def preset_keys(preset: str) -> list[str]:
    """Dotted keys the preset file itself sets (free-form mappings such as ``model.args`` count as one key)."""
    from facesr.train.config import preset_text

    data = yaml.safe_load(preset_text(preset)) or {}
    data.pop("recipe", None)
    out: list[str] = []

    def walk(node, prefix):
        for k, v in node.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping) and v and k not in ("args", "discriminator_args", "init_parts"):
                walk(v, key + ".")
            else:
                out.append(key)

    walk(data, "")
    return out


def check_heatmap_preset(cfg, store, message=None) -> str | None:
    """The store's ``priors/heatmap`` must be of the heatmap preset the run's loss weights were tuned on.

    ``data.heatmap_preset`` ("" = no requirement; seed 000: ``released``) against the ``preset`` attribute the
    priors stage records on the array. A mismatch is a :class:`ConfigError` naming both and the override; a
    run whose ``data.heatmap_preset`` was overridden away from its shipped preset's trains, with a message
    that says so. A heatmap without the attribute (built outside the pipeline) is not checked. Returns the
    store's preset (or None).
    """
    from facesr.data import schema

    want = cfg.data.heatmap_preset
    if not want or "heatmap" not in tuple(cfg.data.priors) or schema.HEATMAP.name not in store:
        return None
    have = dict(store.array(schema.HEATMAP).attrs).get("preset")
    if have is None:
        return None
    tuned = ""
    try:
        from facesr.train.config import list_presets, load_config

        if cfg.preset in list_presets():
            tuned = load_config(cfg.preset).data.heatmap_preset
    except ConfigError:
        pass
    if have != want:
        raise ConfigError(
            f"the store's priors/heatmap was built with heatmap preset {have!r}; this run trains on {want!r}"
            + (f" (preset {cfg.preset}'s loss weights were tuned on {tuned!r})" if tuned else ""),
            hint=f"rebuild the heatmaps with preset {want!r}, or train on these anyway: "
                 f"--set data.heatmap_preset={have}")
    if tuned and want != tuned and message is not None:
        message(f"training on heatmap preset {want!r}, not {tuned!r}, which preset {cfg.preset}'s loss weights "
                "were tuned on (data.heatmap_preset override)")
    return have
