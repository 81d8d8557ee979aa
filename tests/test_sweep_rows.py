"""SweepRow: the whole recipe and the metrics of one scored candidate, through JSON and back."""

import json

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from bertnpu.tune.sweep_rows import SweepRow, best_row


def test_round_trips_nested_knobs_and_a_field_added_later():
    recipe = Recipe(activation_16bits=("layer.0.ffn.residual",), equivalent_transformation=EquivalentTransformations(qk=True), profile="all-int8")
    row = SweepRow(recipe, spearman=0.7, pearson=0.6, mean_sqnr_db=20.0, key="k", extra={"shares_with": "abc", "proxy_cosine": 0.98})
    data = json.loads(json.dumps(row.to_dict()))
    assert data["percentile"] == 0.999 and data["method"] == 1 and data["shares_with"] == "abc"  # flat knobs for tables
    back = SweepRow.from_dict(data)
    assert back == row and back.recipe.equivalent_transformation.qk and back.recipe.activation_16bits == ("layer.0.ffn.residual",)


def test_reads_an_old_flat_cache_line():
    old = {"method": 0, "output": 0, "mode": 1, "percentile": 0.99, "topk_ratio": 0.1, "bits": 8, "spearman": 0.5, "pearson": 0.4,
           "mean_sqnr_db": 12.5, "split": "validation", "key": "abc"}
    row = SweepRow.from_dict(old)
    assert row.recipe == Recipe(calibration=QuantConfig(method=0, percentile=0.99, topk_ratio=0.1))
    assert (row.spearman, row.pearson, row.mean_sqnr_db, row.key, row.extra) == (0.5, 0.4, 12.5, "abc", {})
    given = Recipe(calibration=QuantConfig(method=0, percentile=0.99, topk_ratio=0.1), profile="optimistic")
    assert SweepRow.from_dict(old, given).recipe is given  # the recipe the sweep scored wins


def test_best_row_and_bad_rows():
    rows = [SweepRow(Recipe(), s, 0.0) for s in (0.3, 0.9, 0.9, 0.1)]
    assert best_row(rows) is rows[1]  # the first on a tie
    with pytest.raises(BertnpuError, match="no rows"):
        best_row([])
    with pytest.raises(BertnpuError, match="lacks method"):
        SweepRow.from_dict({"spearman": 0.1, "pearson": 0.1})
    with pytest.raises(BertnpuError, match="must be a Recipe"):
        SweepRow(QuantConfig(), 0.1, 0.1)
