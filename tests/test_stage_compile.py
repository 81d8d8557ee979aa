"""Stage 8, compile or bundle: without qbcompiler a bundle that carries the recipe; a bad target is one sentence."""

from __future__ import annotations

import json

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu import stages as st


def test_compile_stage_bundle_carries_the_recipe(tiny_model, tiny_calib, tmp_path):
    recipe = Recipe(calibration=QuantConfig(method=0, percentile=0.99))
    r = st.compile_or_bundle(st.CompileInputs(tiny_model, tiny_calib, recipe, mxq=tmp_path / "m.mxq", bundle=tmp_path / "b"))
    assert r.mxq is None and r.bundle == tmp_path / "b" and "qbcompiler is not installed" in r.note
    saved = json.loads((tmp_path / "b" / "quant_config.json").read_text())
    assert saved["schema_version"] == 1 and QuantConfig.load(tmp_path / "b" / "quant_config.json") == recipe.calibration
    with pytest.raises(BertnpuError, match="qbcompiler"):
        st.compile_or_bundle(st.CompileInputs(tiny_model, tiny_calib, recipe, target="mxq", mxq=tmp_path / "m.mxq"))
    with pytest.raises(BertnpuError, match="Compile target 'onnx'"):
        st.CompileInputs(tiny_model, tiny_calib, recipe, target="onnx")
