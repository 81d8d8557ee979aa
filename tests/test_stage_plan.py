"""Stage plan: the profile bracket of each recipe equals the simulator's score under that profile; its report section."""

import json

import pytest

from bertnpu.quant.recipe import Recipe
from bertnpu.quant.simulate import simulate
from bertnpu.tune.evaluate import evaluate_sts


def test_plan_stage_brackets_and_report_section(tiny_model, tiny_calib, tiny_stats, stsb_validation, stsb_test, tmp_path):
    from bertnpu.stages.plan import PlanInputs, plan
    from bertnpu.ui.run_report import _plan

    r = plan(PlanInputs(tiny_model, tiny_calib, stsb_validation.subset(30), stsb_test.subset(30), stats=tiny_stats, max_sites=1,
                        out=tmp_path / "recipe.json", force=True, progress=False, bracket=True))
    assert set(r.brackets) == {"tutorial", "best_int8_only", "planned"}
    assert r.brackets["planned"]["aries"] == pytest.approx(r.spearman, abs=1e-9)
    assert r.brackets["best_int8_only"]["aries"] == pytest.approx(r.best_int8_only["spearman"], abs=1e-9)
    tutorial = evaluate_sts(simulate(tiny_model, tiny_stats, Recipe(profile="all-int8")).encoder_for(), stsb_test.subset(30))["spearman"]
    assert r.brackets["tutorial"]["all-int8"] == pytest.approx(tutorial, abs=1e-9)
    # a Recipe in memory (the best INT8-only one too); lists and recipe dicts only in the JSON written from it
    assert isinstance(r.recipe, Recipe) and isinstance(r.best_int8_only["recipe_json"], Recipe) and r.activation_16bits == r.recipe.activation_16bits
    entry = json.loads(json.dumps(r.to_dict(relative_to=tmp_path)))
    assert Recipe.from_dict(entry["best_int8_only"]["recipe_json"]) == r.best_int8_only["recipe_json"]
    assert entry["pareto"][-1]["sites"] == list(r.pareto[-1]["sites"]) and entry["activation_16bits"] == list(r.activation_16bits)
    title, body, _ = _plan({"plan": entry}, lambda e: {})
    assert "Plan" in title and "best planned" in body and "optimistic" in body
