"""RunConfig: every default of `bertnpu run` once, the full and quick presets, a validated JSON round trip."""

from __future__ import annotations

import json
import re

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.run_config import QUICK, SWEEP_FIELDS, RunConfig
from bertnpu.tune.plan.spec import PlanSpec
from bertnpu.tune.sweep import CONFIRM, PERCENTILES, PROXY_SENTENCES, TOPK_RATIOS


def test_presets_and_the_earlier_name():
    full, quick = RunConfig.full(), RunConfig.quick()
    assert full == RunConfig() and not full.is_quick and quick.is_quick
    assert (full.search, full.percentiles, full.topk_ratios, full.confirm, full.proxy_sentences) == ("wide", None, None, CONFIRM, PROXY_SENTENCES)
    assert full.plan_max_sites == PlanSpec.max_sites and full.plan_options == {} and full.plan_bracket
    assert all(getattr(quick, k) == v for k, v in QUICK.items())
    assert quick.plan_options == {"proxy_sentences": 16, "configs": QUICK["plan_configs"], "transforms": (),
                                  "candidate_roles": ("attention.residual", "ffn.residual")}
    assert RunConfig.quick(calib_count=16).calib_count == 16  # a preset with one change


@pytest.mark.parametrize("preset", [RunConfig.full, RunConfig.quick])
def test_json_round_trip(preset):
    config = preset(model="m", out="o", plan=False)
    data = json.loads(json.dumps(config.to_dict()))
    assert data["schema_version"] == 1
    assert RunConfig.from_dict(data) == config
    if config.plan_configs:
        assert data["plan_configs"][0] == QuantConfig(method=1, mode=1, percentile=0.999, topk_ratio=0.01).to_dict()


@pytest.mark.parametrize("changes, says", [
    ({"preset": "huge"}, "RunConfig.preset='huge' is invalid"),
    ({"calib_count": 0}, "RunConfig.calib_count=0 is invalid"),
    ({"search": "deep"}, "RunConfig.search='deep' is invalid"),
    ({"methods": (5,)}, "RunConfig.methods holds 5, which is not one of 0, 1, 2, 3"),
    ({"outputs": (0, 2)}, "RunConfig.outputs holds 2, which is not one of 0, 1 (output 2, sigmoid-based, is not modelled"),
    ({"confirm": 0}, "RunConfig.confirm=0 is invalid; give a whole number of at least 1"),
    ({"search": "grid", "percentiles": (0.99, 1.5)}, "RunConfig.percentiles holds 1.5, which lies outside (0, 1]"),
    ({"search": "grid", "topk_ratios": (float("nan"),)}, "RunConfig.topk_ratios holds nan, which lies outside (0, 1]"),
    ({"search": "grid", "percentiles": "0.99"}, "RunConfig.percentiles='0.99' is invalid; give one or more values"),
    ({"percentiles": (0.99,)}, "RunConfig.percentiles=(0.99,) would be ignored: the wide search scores its own cells"),
    ({"strategy": "exhaustive", "confirm": 3}, "RunConfig.confirm=3 would be ignored: the exhaustive strategy scores every distinct "
                                               "range set on the full split, with no proxy ranking; leave RunConfig.confirm out or use strategy='fast'."),
    ({"strategy": "exhaustive", "proxy_sentences": 64}, "RunConfig.proxy_sentences=64 would be ignored: the exhaustive strategy"),
    ({"plan_max_sites": -1}, "RunConfig.plan_max_sites=-1 is invalid"),
    ({"target_device": "aries9"}, "RunConfig.target_device='aries9' is invalid; use one of aries-rb"),
])
def test_bad_values_are_one_sentence(changes, says):
    with pytest.raises(BertnpuError, match=re.escape(says)):
        RunConfig.full(**changes)


def test_from_dict_refuses_unknown_keys_and_versions():
    with pytest.raises(BertnpuError, match="Unknown run configuration key 'quik'"):
        RunConfig.from_dict({"quik": True})
    with pytest.raises(BertnpuError, match="schema_version 2"):
        RunConfig.from_dict({"schema_version": 2})
    with pytest.raises(BertnpuError, match="percentiles"):
        RunConfig.from_dict({**RunConfig.quick().to_dict(), "percentiles": [2.0]})


def test_a_preset_value_the_search_ignores_is_no_choice_of_the_users():
    """The quick preset's grid cells and proxy size are accepted under another search or strategy (the user set none of them);
    the ignored cells become None, and the grid search without cells gets the grid's defaults."""
    wide = RunConfig.quick(search="wide")
    assert (wide.percentiles, wide.topk_ratios) == (None, None)
    assert RunConfig.from_dict(wide.to_dict()) == wide
    grid = RunConfig.full(search="grid")
    assert (grid.percentiles, grid.topk_ratios) == (PERCENTILES, TOPK_RATIOS)
    exhaustive = RunConfig.quick(strategy="exhaustive")
    assert (exhaustive.confirm, exhaustive.proxy_sentences) == (QUICK["confirm"], QUICK["proxy_sentences"])
    assert RunConfig.full(strategy="exhaustive", confirm=CONFIRM).strategy == "exhaustive"  # the full preset's own value


def test_sweep_options_hold_exactly_the_knobs_the_search_and_strategy_read():
    assert RunConfig.full().sweep_options == {"search": "wide", "strategy": "fast", "methods": (0, 1, 2, 3), "outputs": (0, 1),
                                              "confirm": CONFIRM, "proxy_sentences": PROXY_SENTENCES}
    assert RunConfig.quick(strategy="exhaustive").sweep_options == {
        "search": "grid", "strategy": "exhaustive", "percentiles": QUICK["percentiles"], "topk_ratios": QUICK["topk_ratios"],
        "methods": QUICK["methods"], "outputs": QUICK["outputs"]}
    assert set(RunConfig.quick().sweep_options) == {"search", "strategy", *SWEEP_FIELDS}
