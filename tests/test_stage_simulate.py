"""Stage 5, simulate: every site kept FP32 with 16-bit weights is FP32; a coarse config moves the score."""

from __future__ import annotations

import pytest

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu import stages as st


@pytest.fixture(scope="module")
def val40(stsb_validation):
    return stsb_validation.subset(40)


def test_simulate_with_every_site_fp32_and_16_bit_weights_matches_fp32(tiny_model, tiny_stats, val40):
    keep = tuple(s.name for s in tiny_stats.sites)
    r = st.simulate(st.SimulateInputs(tiny_model, tiny_stats, val40, Recipe(calibration=QuantConfig(bits=16)), keep_fp32=keep, progress=False))
    assert r.spearman == pytest.approx(r.fp32_spearman, abs=2e-3)
    coarse = st.simulate(st.SimulateInputs(tiny_model, tiny_stats, val40, Recipe(calibration=QuantConfig(bits=3)), progress=False))
    assert coarse.fp32_spearman == r.fp32_spearman and coarse.spearman != r.spearman
    d = coarse.to_dict()
    assert d["config"]["bits"] == 3 and Recipe.from_dict(d["recipe"]) == coarse.recipe and d["pairs"] == 40
