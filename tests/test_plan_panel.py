"""The Plan panel and the Simulate panel's 16-bit/profile controls, on the tiny BERT workspace."""

import json

import pytest

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.quant.simulate import simulate
from bertnpu.tune.evaluate import evaluate_sts
from bertnpu.ui.plan_panel import PlanPanel
from bertnpu.ui.widgets import SimulatePanel, ThresholdExplorer
from bertnpu.ui.project import open_project


@pytest.fixture(scope="module")
def ws(tiny_model_dir, stsb_dir, tmp_path_factory):
    w = open_project(tmp_path_factory.mktemp("ws"), model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=16, eval_pairs=30)
    w.stats
    return w


def test_simulate_panel_16_bit_sites_and_profile(ws):
    panel = SimulatePanel(ws, ThresholdExplorer(ws.stats, QuantConfig(method=0, bits=4)))
    panel.a16.value = ("layer.0.ffn.residual", "layer.1.attention.residual")
    panel.profile.value = "optimistic"
    result = panel.simulate()
    r = Recipe(calibration=QuantConfig(method=0, bits=4), activation_16bits=("layer.0.ffn.residual", "layer.1.attention.residual"), profile="optimistic")
    direct = evaluate_sts(simulate(ws.model, ws.stats, r).encoder_for(), ws.pairs("validation"))["spearman"]
    assert result["int8"] == pytest.approx(direct) and result["profile"] == "optimistic"
    assert "2 site(s) at 16 bits" in panel.result.value and "profile optimistic" in panel.result.value


def test_plan_panel_runs_and_shows(ws):
    panel = PlanPanel(ws, tolerance=0.01, max_sites=1)
    result = panel.run(progress=False)
    saved = Recipe.load(ws.at("recipe"))
    assert saved.activation_16bits == result.recipe.activation_16bits and saved.profile == "aries"
    assert len(panel.pareto.outputs) == 1 and len(panel.sites.outputs) == 1
    assert f"{result.spearman:.4f}" in panel.status.value and "[aries]" in panel.status.value
    assert f"stopped by <code>{result.stop_rule}</code>" in panel.status.value
    assert "FP32&#x27;s noise" in panel.status.value or "than FP32: " in panel.status.value  # the verdict of the test split's paired interval
    layernorms = 2 * ws.model.config.num_hidden_layers
    assert len(result.not_tried) == layernorms and f"not tried at 16 bits: the {layernorms} LayerNorm outputs" in panel.status.value
    assert json.dumps(result.recipe.to_dict(), indent=1).splitlines()[1].strip()[:10] in panel.recipe.value.replace("&quot;", '"')
    shown = panel.recipe.value.replace("&quot;", '"')
    val = result.recipe.prediction["validation_spearman"]
    assert f'"validation_spearman": {round(val, 4)}' in shown and repr(val) not in shown  # rounded on screen only
    assert Recipe.load(ws.at("recipe")).prediction["validation_spearman"] == val
