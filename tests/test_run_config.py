"""RunConfig: every default of `bertnpu run` once, the full and quick presets, a validated JSON round trip."""

from __future__ import annotations

import json

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.run_config import QUICK, RunConfig, RunOptions
from bertnpu.tune.plan.spec import PlanSpec
from bertnpu.tune.sweep import CONFIRM, PROXY_SENTENCES


def test_presets_and_the_earlier_name():
    full, quick = RunConfig.full(), RunConfig.quick()
    assert full == RunConfig() and not full.is_quick and quick.is_quick
    assert (full.search, full.percentiles, full.topk_ratios, full.confirm, full.proxy_sentences) == ("wide", None, None, CONFIRM, PROXY_SENTENCES)
    assert full.plan_max_sites == PlanSpec.max_sites and full.plan_options == {} and full.plan_bracket
    assert all(getattr(quick, k) == v for k, v in QUICK.items())
    assert quick.plan_options == {"proxy_sentences": 16, "configs": QUICK["plan_configs"], "transforms": (),
                                  "candidate_roles": ("attention.residual", "ffn.residual")}
    assert RunOptions(quick=True, out="x") == RunConfig.quick(out="x") and RunOptions() == full
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
    ({"methods": (5,)}, "RunConfig.methods=(5,) is invalid"),
    ({"percentiles": (0.99,)}, "would be ignored: the wide search"),
    ({"plan_max_sites": -1}, "RunConfig.plan_max_sites=-1 is invalid"),
    ({"target_device": "aries9"}, "RunConfig.target_device='aries9' is invalid; use one of aries-rb"),
])
def test_bad_values_are_one_sentence(changes, says):
    with pytest.raises(BertnpuError, match=says.replace("(", r"\(").replace(")", r"\)")):
        RunConfig.full(**changes)


def test_from_dict_refuses_unknown_keys_and_versions():
    with pytest.raises(BertnpuError, match="Unknown run configuration key 'quik'"):
        RunConfig.from_dict({"quik": True})
    with pytest.raises(BertnpuError, match="schema_version 2"):
        RunConfig.from_dict({"schema_version": 2})
    with pytest.raises(BertnpuError, match="percentiles"):
        RunConfig.from_dict({**RunConfig.quick().to_dict(), "percentiles": [2.0]})
