"""Recipe cards (issue 10, item 7): every preset has one, it covers every setting its file makes, its facesr
column is read from the resolved config, and `facesr train --recipe` prints it (table and JSON)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from facesr.cli import app
from facesr.errors import ConfigError
from facesr.train.config import keys, list_presets, load_config
from facesr.train.recipe import FOLLOWS, Row, card, card_dict, is_silent, preset_keys

PRESETS = list_presets()


def test_verdicts_are_derived_from_what_each_side_says():
    assert Row("x", "none stated", "no public code", "ours").verdict == "both silent: our choice"
    assert Row("x", "8 (§III-B)", "64 (notebook)", "ours").verdict == "departs"
    assert Row("x", "8 (§III-B)", "64 (notebook)", "code").verdict == "as code (paper differs)"
    assert Row("x", "none stated", "12 (train.sh)", "code").verdict == "as code"
    assert Row("x", "rescaling, range none stated (§4.2)", "U(1, 1.3)", "code").verdict == \
        "as code (paper leaves the value open)"
    assert Row("x", "1e-4 (§4)", "1e-4 (yml)", "both").verdict == "as paper and code"
    assert is_silent("None stated (§IV-A)") and is_silent("no public code (SPARNet: ...)") and not is_silent("none")


@pytest.mark.parametrize("preset", PRESETS)
def test_card_is_complete_and_honest(preset):
    c = card(preset)
    assert c.paper.startswith("shared/papers/") and c.code
    valid = set(keys())
    row_keys = [k for r in c.rows for k in r.keys]
    for r in c.rows:
        assert r.follows in FOLLOWS and r.setting
        for k in r.keys:  # a facesr column read from a key that does not exist would be a lie
            assert k in valid or any(v.startswith(k + ".") for v in valid), (preset, k)
        if r.follows == "ours":  # every departure and every both-silent choice says why
            assert r.note, (preset, r.setting)
        if r.follows in ("paper", "both"):
            assert not is_silent(r.paper), (preset, r.setting)
        if r.follows in ("code", "both"):
            assert not is_silent(r.code), (preset, r.setting)
        if not r.keys:
            assert r.facesr, (preset, r.setting)  # no key: the facesr column must be written out
    # every setting the preset file makes is a row of its card
    uncovered = [k for k in preset_keys(preset)
                 if not any(r == k or r.startswith(k + ".") or k.startswith(r + ".") for r in row_keys)]
    assert not uncovered, (preset, uncovered)
    # the common settings always have a row, stated or "none stated"
    settings = " ".join(r.setting for r in c.rows)
    for needed in ("batch", "optimizer", "schedule", "loss", "seed"):
        assert needed in settings, (preset, needed)
    assert any(k.startswith("data.augment") for k in row_keys) or "augmentation" in settings


def test_facesr_column_follows_the_resolved_config():
    rows = {r["setting"]: r for r in card_dict("mrrnet", ["data.batch_size=7"])["rows"]}
    assert rows["batch size"]["facesr"] == "data.batch_size=7"
    assert load_config("mrrnet").data.batch_size == 12
    rows = {r["setting"]: r for r in card_dict("mrrnet")["rows"]}
    assert rows["batch size"]["facesr"] == "data.batch_size=12" and rows["batch size"]["verdict"] == "as code"


def test_departures_are_rows_that_say_so():
    verdicts = {p: [r["verdict"] for r in card_dict(p)["rows"]] for p in PRESETS}
    assert "departs" in verdicts["wnet"]  # batch 16 against the paper's 4
    assert "both silent: our choice" in verdicts["ufvnet-stage1"]
    seed = {r["setting"]: r["verdict"] for r in card_dict("seed000-bicubic")["rows"]}
    assert seed["batch size"] == "as code (paper differs)"


def test_recipe_card_lives_in_the_preset_but_is_no_setting():
    cfg = load_config("gvtnet")
    assert not hasattr(cfg, "recipe") and "recipe" not in preset_keys("gvtnet")


@pytest.mark.parametrize("preset", PRESETS)
def test_cli_prints_every_card(preset):
    res = CliRunner().invoke(app, ["train", "--recipe", preset, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["preset"] == preset and len(data["rows"]) == len(card(preset).rows)
    assert all(set(r) == {"setting", "paper", "code", "facesr", "verdict", "note"} for r in data["rows"])


def test_cli_table_and_unknown_preset():
    res = CliRunner().invoke(app, ["train", "--recipe", "gvtnet"])
    assert res.exit_code == 0 and "released code says" in res.stdout and "MultiStepLR" in res.stdout
    bad = CliRunner().invoke(app, ["train", "--recipe", "gvtnett"])
    assert bad.exit_code != 0
    with pytest.raises(ConfigError):
        card("gvtnett")
