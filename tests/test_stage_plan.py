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


def test_bracket_reuses_the_plans_encodes_with_the_same_numbers(tiny_model, tiny_calib, tiny_stats, stsb_validation, stsb_test, tmp_path):
    """The bracket reads the plan's test embeddings (FP32, best INT8-only, planned under the plan's profile) instead of
    encoding them again, and adds its own for the evaluate stage; every number equals a bracket encoded from scratch."""
    from bertnpu.quant.transforms import stats_for_recipe
    from bertnpu.stages.plan import PlanInputs, plan
    from bertnpu.tune.evaluate import recipe_key
    from bertnpu.tune.plan import profile_bracket

    test = stsb_test.subset(30)
    r = plan(PlanInputs(tiny_model, tiny_calib, stsb_validation.subset(30), test, stats=tiny_stats, max_sites=1,
                        out=tmp_path / "recipe.json", force=True, progress=False, bracket=True))
    for label, recipe in (("tutorial", Recipe()), ("planned", r.recipe)):
        fresh = profile_bracket(tiny_model, stats_for_recipe(tiny_model, tiny_stats, recipe, tiny_calib), recipe, test, detail=True)
        assert r.bracket_details[label] == fresh
    # the tutorial's encode under the default profile is handed on, so the evaluate stage does not encode it again
    assert recipe_key(Recipe()) in r.plan.test_embeddings and "fp32" in r.plan.test_embeddings
