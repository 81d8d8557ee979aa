"""The compile bundle: carries the recipe, says it in words, and its script compiles it from any working directory."""

import json
import os
import subprocess
import sys

import pytest

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.device.bundle import CPU_IMAGE, CUDA_IMAGE, write_compile_bundle
from bertnpu.device.compile_record import read_compile_record
from bertnpu.device.qbcompiler_adapter import compile_mxq
from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from bertnpu.quant.sites import list_sites
from conftest import QBCOMPILER_DOUBLE, _calls

DOUBLE = QBCOMPILER_DOUBLE
CONFIG = QuantConfig(method=3, output=1, mode=1, percentile=0.9995, topk_ratio=0.02)
SITES = ("layer.1.ffn.residual", "layer.2.attention.scores")
RECIPE = Recipe(calibration=CONFIG, activation_16bits=SITES, equivalent_transformation=EquivalentTransformations(vo=True),
                prediction={"spearman": {"aries": 0.8123, "all-int8": 0.7011}})


@pytest.fixture(scope="module")
def calib(tiny_model, stsb_validation, tmp_path_factory):
    return build_calibration_set(tiny_model, tmp_path_factory.mktemp("c") / "calib", CalibrationSpec(count=10), pairs=stsb_validation, progress=False)


def _run_script(bundle, cwd, *args):
    env = dict(os.environ, PYTHONPATH=str(DOUBLE))
    return subprocess.run([sys.executable, str(bundle / "compile_mxq.py"), *args], cwd=cwd, env=env, capture_output=True, text=True)


def test_bundle_carries_the_recipe_and_says_it_in_words(tiny_model, calib, tmp_path):
    bundle = write_compile_bundle(tiny_model, calib, RECIPE, tmp_path / "bundle")
    assert {p.name for p in bundle.iterdir()} == {"model", "calib", "recipe.json", "quant_config.json", "sites.json", "weight_dict.pth",
                                                  "compile_mxq.py", "mblt_map.py", "README.md", "bundle.json"}
    assert Recipe.load(bundle / "recipe.json") == RECIPE
    assert QuantConfig.load(bundle / "quant_config.json") == CONFIG
    assert json.loads((bundle / "sites.json").read_text()) == [s.name for s in list_sites(tiny_model)]
    assert json.loads((bundle / "bundle.json").read_text())["output"]["returns"] == "last_hidden_state"
    readme = (bundle / "README.md").read_text()
    assert CPU_IMAGE in readme and CUDA_IMAGE in readme and "--gpus=all" in readme
    assert CONFIG.label() in readme and "percentile 0.9995, topk_ratio 0.02" in readme
    assert "`layer.1.ffn.residual`" in readme and "`layer.2.attention.scores`" in readme
    assert "Vo: rotate value and attention-output weights" in readme and "Qk:" not in readme
    assert "- spearman (aries): 0.8123" in readme and "- spearman (all-int8): 0.7011" in readme
    assert "profile `aries`" in readme
    assert "[1, seq_len, 36]" in readme and "mean-pools" in readme and "qbcompiler 1.1+" in readme


def test_bundle_refuses_a_site_the_model_lacks(tiny_model, calib, tmp_path):
    with pytest.raises(BertnpuError, match=r"Unknown site\(s\) layer\.5\.ffn\.residual"):
        write_compile_bundle(tiny_model, calib, Recipe(activation_16bits=("layer.5.ffn.residual",)), tmp_path / "b")
    assert not (tmp_path / "b").exists() and list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("qbcompiler_double", [1, 2], indirect=True)
def test_script_makes_the_same_call_from_another_directory(qbcompiler_double, tiny_model, calib, tmp_path):
    compile_mxq(tiny_model, calib.files[0].parent, CONFIG, tmp_path / "direct.mxq")
    bundle = write_compile_bundle(tiny_model, calib, CONFIG, tmp_path / "bundle")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = _run_script(bundle, elsewhere)
    assert run.returncode == 0, run.stderr
    direct, scripted = _calls(qbcompiler_double)
    for key in ("config", "feed", "calib_shapes", "backend", "returns", "model_class"):
        assert scripted[key] == direct[key], key
    assert scripted.get("equivalent_transformation") == direct.get("equivalent_transformation")
    assert scripted["calib_shapes"] == [list(a.shape) for a in calib.arrays]  # every sample opened from elsewhere
    mxq = bundle / f"{tiny_model.name.split('/')[-1]}.mxq"
    record = read_compile_record(mxq)
    assert mxq.is_file() and record.recipe == Recipe(calibration=CONFIG) and record.output.returns == "last_hidden_state"
    assert sorted(p.name for p in bundle.iterdir() if p.name.startswith(".")) == []
    rerun = _run_script(bundle, elsewhere)
    assert rerun.returncode != 0 and "already exists" in rerun.stderr


def test_script_maps_the_same_operators_as_the_package(qbcompiler_double, tiny_model, calib, tmp_path):
    compile_mxq(tiny_model, calib.files[0].parent, RECIPE, tmp_path / "direct.mxq")
    bundle = write_compile_bundle(tiny_model, calib, RECIPE, tmp_path / "bundle")
    run = _run_script(bundle, tmp_path)
    assert run.returncode == 0, run.stderr
    d_mblt, d_mxq, s_mblt, s_mxq = _calls(qbcompiler_double)
    assert [d_mblt["call"], s_mblt["call"]] == ["mblt_compile", "mblt_compile"]
    assert s_mxq["activation_16bits"] == d_mxq["activation_16bits"] == ["/encoder/layer.1/output/Add", "/encoder/layer.2/attention/self/MatMul"]
    assert s_mxq["bit_config_not_found"] == [] and s_mxq["equivalent_transformation"] == d_mxq["equivalent_transformation"]
    assert s_mxq["equivalent_transformation"] == {"norm_conv": False, "qk": False, "ud": False, "vo": True}
    scripted = read_compile_record(bundle / f"{tiny_model.name.split('/')[-1]}.mxq")
    assert scripted.operators == read_compile_record(tmp_path / "direct.mxq").operators
    assert scripted.recipe == RECIPE


def test_script_stops_on_an_unmappable_site(qbcompiler_double, tiny_model, calib, tmp_path):
    bundle = write_compile_bundle(tiny_model, calib, Recipe(activation_16bits=("pooler.out",)), tmp_path / "bundle")
    run = _run_script(bundle, tmp_path)
    assert run.returncode != 0
    assert run.stderr.strip().splitlines()[-1].startswith("Site(s) pooler.out map to no operator")
    assert [c["call"] for c in _calls(qbcompiler_double)] == ["mblt_compile"]
    assert not list(bundle.glob("*.mxq*")) and sorted(p.name for p in bundle.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("qbcompiler_double", [1], indirect=True)
def test_script_with_qbcompiler_1_0_names_the_missing_knobs(qbcompiler_double, tiny_model, calib, tmp_path):
    bundle = write_compile_bundle(tiny_model, calib, RECIPE, tmp_path / "bundle")
    run = _run_script(bundle, tmp_path)
    assert run.returncode != 0 and "(1.0.x API) lacks bit_config" in run.stderr and "--allow-missing-knobs" in run.stderr
    assert _calls(qbcompiler_double) == []
    run = _run_script(bundle, tmp_path, "--allow-missing-knobs")
    assert run.returncode == 0, run.stderr
    assert "compiled WITHOUT bit_config, equivalent_transformation_config" in run.stderr
    record = read_compile_record(bundle / f"{tiny_model.name.split('/')[-1]}.mxq")
    assert record.knobs_dropped == ("bit_config", "equivalent_transformation_config")


def test_script_without_qbcompiler_says_so(tiny_model, calib, tmp_path):
    bundle = write_compile_bundle(tiny_model, calib, QuantConfig(), tmp_path / "b")
    run = subprocess.run([sys.executable, str(bundle / "compile_mxq.py")], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert run.returncode != 0 and "qbcompiler is not installed" in run.stderr
