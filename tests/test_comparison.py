"""The closing table (notebook 04, run report): only a formatting of the evaluate stage's entries."""

from __future__ import annotations

import pytest

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from bertnpu.stages.evaluate import EvaluationResult
from bertnpu.ui.comparison import COLUMNS, comparison_rows
from bertnpu.ui.conclusions import comparison_conclusion

PLANNED = Recipe(calibration=QuantConfig(method=0, percentile=0.99), equivalent_transformation=EquivalentTransformations(qk=True),
                 activation_16bits=("layer.0.ffn.residual", "pooler.out"), profile="all-int8")


def _entry(recipe: Recipe, spearman: float, pearson: float, cosine: float, recall: float) -> dict:
    return {"config": recipe.calibration.to_dict(), "recipe": recipe.to_dict(), "spearman": spearman, "pearson": pearson,
            "cosine_mean": cosine, "recall@10": recall, "spearman_ci": [spearman - 0.03, spearman + 0.02],
            "diff_to_fp32": spearman - 0.81, "diff_to_fp32_ci": [spearman - 0.81 - 0.015, spearman - 0.81 + 0.012]}


def _result(planned: bool = True) -> EvaluationResult:
    return EvaluationResult(split="test", pairs=40, fp32={"spearman": 0.81, "pearson": 0.79, "cosine_mean": 1.0, "recall@10": 1.0,
                                                          "spearman_ci": [0.78, 0.83]},
                            tutorial_default=_entry(Recipe(), 0.52, 0.50, 0.61, 0.25),
                            recommended=_entry(Recipe(calibration=QuantConfig(percentile=0.99)), 0.77, 0.75, 0.97, 0.81),
                            planned=_entry(PLANNED, 0.80, 0.78, 0.995, 0.93) if planned else None, fidelity=None)


def test_rows_are_the_stage_entries_in_order():
    rows = comparison_rows(_result())
    assert [r["name"] for r in rows] == ["FP32", "tutorial config", "recommended", "planned recipe"]
    assert all(tuple(r)[: len(COLUMNS)] == COLUMNS for r in rows)
    # the intervals: as text in the table, as numbers beside it
    assert rows[0]["spearman 95% CI"] == "[0.7800, 0.8300]" and rows[0]["vs FP32 (paired 95% CI)"] == ""
    assert rows[2]["vs FP32 (paired 95% CI)"] == "-0.0400 [-0.0550, -0.0280]" and rows[2]["diff_to_fp32_ci"] == pytest.approx([-0.055, -0.028])
    assert [(r["spearman"], r["pearson"], r["cosine"], r["recall@10"]) for r in rows] == [
        (0.81, 0.79, 1.0, 1.0), (0.52, 0.50, 0.61, 0.25), (0.77, 0.75, 0.97, 0.81), (0.80, 0.78, 0.995, 0.93)]
    # each config column is the recipe's own label, written out here from its parts
    assert rows[0]["config"] == "no quantization"
    assert rows[1]["config"] == "method 1, output 0, MaxPercentile p=0.999 topk=0.01 [aries]" == Recipe().label()
    assert rows[3]["config"] == "method 0, output 0, MaxPercentile p=0.99 topk=0.01, qk, 2 site(s) at 16 bits [all-int8]"


def test_result_object_and_its_json_give_the_same_rows():
    result = _result()
    assert comparison_rows(result) == comparison_rows(result.to_dict())
    assert len(comparison_rows(_result(planned=False))) == 3  # no planned recipe: no row for it


def test_entries_from_an_older_summary():
    """A summary.json written before entries had a recipe or cosine: the label from the config, missing measures None."""
    old = {"fp32": {"spearman": 0.8, "pearson": 0.7},
           "tutorial_default": {"config": QuantConfig(method=2).to_dict(), "spearman": 0.6, "pearson": 0.5}}
    rows = comparison_rows(old)
    assert rows[1]["config"] == QuantConfig(method=2).label() and rows[1]["cosine"] is None and rows[0]["recall@10"] is None
    assert rows[1]["spearman 95% CI"] == "" and rows[1]["diff_to_fp32_ci"] is None


def test_conclusion_reads_the_rows():
    text = comparison_conclusion(comparison_rows(_result()))
    assert "planned recipe is the closest to FP32: 0.8000 vs 0.8100, within FP32's noise: -0.010 [-0.025, +0.002]" in text
    assert "+0.2800 over the tutorial config" in text and "interchangeable with FP32" in text


@pytest.mark.parametrize("key", ["spearman", "pearson"])
def test_a_missing_score_is_an_error_not_a_blank(key):
    broken = _result().to_dict()
    del broken["recommended"][key]
    with pytest.raises(KeyError):
        comparison_rows(broken)
