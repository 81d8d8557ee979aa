"""Stage 6, sweep: nested recipe knobs survive the grid, the best row is recommended, the cache gives the same rows."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.quant.sites import list_sites
from bertnpu import stages as st


@pytest.fixture(scope="module")
def val40(stsb_validation):
    return stsb_validation.subset(40)


def test_sweep_keeps_nested_knobs_and_recommends_the_best(tiny_model, tiny_stats, val40, tmp_path):
    site = list_sites(tiny_model)[3].name
    base = Recipe(activation_16bits=(site,), profile="all-int8", prediction={"note": "kept"})
    r = st.run_sweep(st.SweepInputs(tiny_model, tiny_stats, val40, base, percentiles=(0.99, 1.0), topk_ratios=(0.1,), methods=(0, 1),
                                    out=tmp_path / "sweep", progress=False))
    assert r.configs == 4 == len(r.rows)
    assert {(row.config.method, row.config.percentile) for row in r.rows} == {(0, 0.99), (0, 1.0), (1, 0.99), (1, 1.0)}
    spearmans = [row.spearman for row in r.rows]
    assert r.validation_spearman == max(spearmans) and r.recommended_recipe == r.rows[int(np.argmax(spearmans))].recipe
    assert r.recommended_recipe.activation_16bits == (site,) and r.recommended_recipe.profile == "all-int8"
    assert Recipe.load(tmp_path / "sweep" / "recommended_recipe.json") == r.recommended_recipe
    assert QuantConfig.load(tmp_path / "sweep" / "recommended_config.json") == r.recommended_recipe.calibration
    table = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [Recipe.from_dict(row["recipe"]).activation_16bits for row in table] == [(site,)] * 4
    # a re-run reads every row from the cache and gives the same rows
    again = st.run_sweep(st.SweepInputs(tiny_model, tiny_stats, val40, base, percentiles=(0.99, 1.0), topk_ratios=(0.1,), methods=(0, 1),
                                        out=tmp_path / "sweep", progress=False))
    assert again.rows == r.rows
