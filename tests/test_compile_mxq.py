"""The bundle's standalone compile script (bertnpu/device/bundle_template/compile_mxq.py), run as a user runs it:
the same qbcompiler calls and operators as the package, from any directory, one sentence when it cannot compile."""

import json
import os
import subprocess
import sys

import pytest

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.device.bundle import write_compile_bundle
from bertnpu.device.compile_record import SCHEMA_VERSION, read_compile_record, record_path_for
from bertnpu.device.qbcompiler_adapter import compile_mxq
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from conftest import QBCOMPILER_DOUBLE, _calls
from test_bundle import CONFIG, RECIPE

DOUBLE = QBCOMPILER_DOUBLE


@pytest.fixture(scope="module")
def calib(tiny_model, stsb_validation, tmp_path_factory):
    return build_calibration_set(tiny_model, tmp_path_factory.mktemp("c") / "calib", CalibrationSpec(count=10), pairs=stsb_validation, progress=False)


def _run_script(bundle, cwd, *args):
    env = dict(os.environ, PYTHONPATH=str(DOUBLE))
    return subprocess.run([sys.executable, str(bundle / "compile_mxq.py"), *args], cwd=cwd, env=env, capture_output=True, text=True)


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
    direct = read_compile_record(tmp_path / "direct.mxq")
    assert (scripted.sites_16bit, scripted.operators_16bit) == (direct.sites_16bit, direct.operators_16bit) == (RECIPE.activation_16bits, tuple(s_mxq["activation_16bits"]))
    assert scripted.recipe == RECIPE
    # the script writes the record itself (it runs without bertnpu): same schema, same fields
    s_json = json.loads(record_path_for(bundle / f"{tiny_model.name.split('/')[-1]}.mxq").read_text())
    d_json = json.loads(record_path_for(tmp_path / "direct.mxq").read_text())
    assert s_json["schema_version"] == d_json["schema_version"] == SCHEMA_VERSION and set(s_json) == set(d_json)


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


@pytest.mark.parametrize("qbcompiler_double", [3], indirect=True)
def test_script_with_qbcompiler_1_3_needs_a_target_device(qbcompiler_double, tiny_model, calib, tmp_path):
    bundle = write_compile_bundle(tiny_model, calib, RECIPE, tmp_path / "bundle")
    assert "def resolve_target_device" in (bundle / "compile_mxq.py").read_text()  # generated from qb_calls.py, not a copy kept by hand
    assert "replace `DEVICE`" in (bundle / "README.md").read_text() and "compile_mxq.py --target-device DEVICE" in (bundle / "README.md").read_text()
    run = _run_script(bundle, tmp_path)
    assert run.returncode != 0 and run.stderr.strip().splitlines()[-1].startswith("qbcompiler 1.3 needs a target_device")
    run = _run_script(bundle, tmp_path, "--target-device", "regulus-ra")
    assert run.returncode == 0, run.stderr
    mblt, mxq = _calls(qbcompiler_double)
    assert mblt["target_device"] == mxq["target_device"] == "regulus-ra"
    assert mxq["activation_16bits"] == ["/encoder/layer.1/output/Add", "/encoder/layer.2/attention/self/MatMul"]
    record = read_compile_record(bundle / f"{tiny_model.name.split('/')[-1]}.mxq")
    assert record.qbcompiler_api == "1.3" and record.qbcompiler_version == "1.3.0"
    old = write_compile_bundle(tiny_model, calib, RECIPE.with_(qbcompiler_version="1.2"), tmp_path / "old")
    readme = (old / "README.md").read_text()
    assert "mobilint/qbcompiler:1.2-cpu-ubuntu22.04" in readme and "mobilint/qbcompiler:1.2-cuda12.8.1-ubuntu22.04" in readme
    run = _run_script(old, tmp_path, "--target-device", "aries-rb")
    assert run.returncode != 0 and "made for qbcompiler 1.2, but the installed one is 1.3.0" in run.stderr
