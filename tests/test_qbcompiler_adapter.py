"""Contract tests: what bertnpu passes to qbcompiler, checked against the test double of both API generations."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.cli import main
from bertnpu.device.bundle import CPU_IMAGE, CUDA_IMAGE, write_compile_bundle
from bertnpu.errors import BertnpuError
from bertnpu.device.qbcompiler_adapter import MISSING, compile_mblt, compile_mxq
from bertnpu.quant.config import QuantConfig
from conftest import REPO

DOUBLE = REPO / "tests" / "doubles" / "qbcompiler_double"


def _forget_qbcompiler():
    for name in [m for m in sys.modules if m == "qbcompiler" or m.startswith("qbcompiler.")]:
        del sys.modules[name]


@pytest.fixture
def qbcompiler_double(monkeypatch, tmp_path, request):
    generation = getattr(request, "param", 2)
    record = tmp_path / "calls.jsonl"
    monkeypatch.setenv("QBCOMPILER_DOUBLE_GENERATION", str(generation))
    monkeypatch.setenv("QBCOMPILER_DOUBLE_RECORD", str(record))
    monkeypatch.syspath_prepend(str(DOUBLE))
    _forget_qbcompiler()
    import qbcompiler

    assert qbcompiler.IS_TEST_DOUBLE and qbcompiler.GENERATION == generation
    yield record
    _forget_qbcompiler()


def _calls(record):
    return [json.loads(line) for line in record.read_text().splitlines()]


@pytest.fixture(scope="module")
def calib(tiny_model, stsb_validation, tmp_path_factory):
    return build_calibration_set(tiny_model, tmp_path_factory.mktemp("c") / "calib", CalibrationSpec(count=12), pairs=stsb_validation, progress=False)


CONFIG = QuantConfig(method=3, output=1, mode=1, percentile=0.9995, topk_ratio=0.02)


@pytest.mark.parametrize("qbcompiler_double", [1, 2], indirect=True)
def test_compile_passes_what_mobilint_documents(qbcompiler_double, tiny_model, calib, tmp_path):
    out = tmp_path / "tiny.mxq"
    log = []
    compile_mxq(tiny_model, calib.files[0].parent, CONFIG, out, log=log.append)
    (call,) = _calls(qbcompiler_double)
    assert call["call"] == "mxq_compile" and call["backend"] == "torch" and call["model_class"] == "BertModel"
    assert call["config"] == (CONFIG.legacy_kwargs() if call["generation"] == 1 else
                              {"method": 3, "output": 1, "mode": 1, "percentile": 0.9995, "topk_ratio": 0.02})
    assert call["calib_data_path"] == str(calib.files[0].parent)
    assert call["calib_shapes"] == [list(a.shape) for a in calib.arrays] and call["calib_dtype"] == "float32"
    assert set(call["feed"]) == {"input_ids", "token_type_ids", "attention_mask"}
    for key, f in call["feed"].items():
        assert f["dynamic"] == [False, True]  # sequence length dynamic
        assert f["mask"] == ("padding_mask" if key == "attention_mask" else None)
    assert call["save_path"] != str(out) and call["save_path"].endswith(".mxq")  # temp name, then renamed
    assert out.is_file() and QuantConfig.load(f"{out}.config.json") == CONFIG
    assert any("compiling" in line for line in log)  # the compiler's log is streamed
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_never_overwrites_an_mxq(qbcompiler_double, tiny_model, calib, tmp_path):
    out = tmp_path / "m.mxq"
    out.write_bytes(b"previous")
    with pytest.raises(BertnpuError, match="already exists; pass --force"):
        compile_mxq(tiny_model, calib.files[0].parent, CONFIG, out)
    assert out.read_bytes() == b"previous" and not qbcompiler_double.exists()
    compile_mxq(tiny_model, calib.files[0].parent, CONFIG, out, force=True)
    assert out.read_bytes() != b"previous"


def test_mblt(qbcompiler_double, tiny_model, tmp_path):
    compile_mblt(tiny_model, tmp_path / "m.mblt")
    (call,) = _calls(qbcompiler_double)
    assert call["call"] == "mblt_compile" and call["cpu_offload"] is True and call["backend"] == "torch"


def test_without_qbcompiler_one_sentence(tiny_model_dir, calib, tmp_path, capsys):
    _forget_qbcompiler()
    assert main(["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--out", str(tmp_path / "m.mxq")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"bertnpu: error: {MISSING}" and "--bundle" in err


@pytest.mark.parametrize("qbcompiler_double", [1, 2], indirect=True)
def test_bundle_script_makes_the_same_call(qbcompiler_double, tiny_model, tiny_model_dir, calib, tmp_path):
    compile_mxq(tiny_model, calib.files[0].parent, CONFIG, tmp_path / "direct.mxq")
    bundle = write_compile_bundle(tiny_model, calib, CONFIG, tmp_path / "bundle")
    assert {p.name for p in bundle.iterdir()} >= {"model", "calib", "quant_config.json", "weight_dict.pth", "compile_mxq.py", "README.md", "bundle.json"}
    readme = (bundle / "README.md").read_text()
    assert CPU_IMAGE in readme and CUDA_IMAGE in readme and "--gpus=all" in readme and "docker run" in readme
    env = dict(os.environ, PYTHONPATH=str(DOUBLE))
    run = subprocess.run([sys.executable, str(bundle / "compile_mxq.py")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    direct, scripted = _calls(qbcompiler_double)
    assert scripted["config"] == direct["config"] and scripted["feed"] == direct["feed"]
    assert scripted["calib_shapes"] == direct["calib_shapes"] and scripted["backend"] == "torch"
    assert scripted["calib_data_path"] == str(bundle / "calib")
    assert (bundle / f"{tiny_model.name.split('/')[-1]}.mxq").is_file()
    rerun = subprocess.run([sys.executable, str(bundle / "compile_mxq.py")], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert rerun.returncode != 0 and "already exists" in rerun.stderr


def test_bundle_script_without_qbcompiler_says_so(tiny_model, calib, tmp_path):
    bundle = write_compile_bundle(tiny_model, calib, QuantConfig(), tmp_path / "b")
    run = subprocess.run([sys.executable, str(bundle / "compile_mxq.py")], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert run.returncode != 0 and "qbcompiler is not installed" in run.stderr


def test_cli_bundle(tiny_model_dir, calib, tmp_path, capsys):
    cfg = CONFIG.save(tmp_path / "cfg.json")
    out = tmp_path / "bundle"
    assert main(["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--config", str(cfg), "--bundle", str(out)]) == 0
    assert json.loads((out / "quant_config.json").read_text())["percentile"] == 0.9995
    lines = (out / "calib" / "npy_files.txt").read_text().split()
    assert len(lines) == 12 and all((out / "calib" / n).is_file() for n in lines)
    assert np.array_equal(np.load(out / "calib" / lines[0]), calib.arrays[0])
    assert main(["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--bundle", str(out)]) == 2
