"""The .mxq preflight against the REAL qbruntime (mobilint-qb-runtime, no NPU here) and the double, and the contract
that every qbruntime name bertnpu calls exists with the same signature in both."""

import importlib.util
import inspect
import json
import sys
from pathlib import Path

import pytest

from bertnpu.cli import main
from bertnpu.device.preflight import RUNTIME_API, MxqFacts, preflight
from bertnpu.errors import BertnpuError
from conftest import REPO

DOUBLE_INIT = REPO / "tests" / "doubles" / "qbruntime_double" / "qbruntime" / "__init__.py"


def _forget_qbruntime():
    for name in [m for m in sys.modules if m == "qbruntime" or m.startswith("qbruntime.")]:
        del sys.modules[name]


@pytest.fixture
def real_qbruntime(monkeypatch):
    """The installed wheel as ``qbruntime`` (never the double); skipped with one line where the wheel cannot install."""
    monkeypatch.setattr(sys, "path", [p for p in sys.path if "qbruntime_double" not in p])
    _forget_qbruntime()
    try:
        import qbruntime
    except ImportError:
        pytest.skip("mobilint-qb-runtime is not installed (its wheel is CPython 3.11 manylinux only): real-runtime checks skipped")
    assert not getattr(qbruntime, "IS_TEST_DOUBLE", False)
    yield qbruntime
    _forget_qbruntime()


@pytest.fixture(scope="module")
def double_module():
    spec = importlib.util.spec_from_file_location("qbruntime_double_under_contract", DOUBLE_INIT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _params(fn):
    """Parameter names, kinds and whether each has a default (default values differ in repr, e.g. the real Cluster lists)."""
    return [(p.name, p.kind, p.default is inspect.Parameter.empty) for p in inspect.signature(fn).parameters.values()]


def test_every_name_bertnpu_calls_exists_with_the_same_signature(real_qbruntime, double_module):
    for name in RUNTIME_API["functions"]:
        real, double = getattr(real_qbruntime, name), getattr(double_module, name)
        assert _params(real) == _params(double), name
    for cls, methods in RUNTIME_API["classes"].items():
        real, double = getattr(real_qbruntime, cls), getattr(double_module, cls)
        for method in methods:
            assert _params(getattr(real, method)) == _params(getattr(double, method)), f"{cls}.{method}"
    assert issubclass(real_qbruntime.QbRuntimeError, RuntimeError) and issubclass(double_module.QbRuntimeError, RuntimeError)
    assert [m.name for m in real_qbruntime.LogLevel] == [m.name for m in double_module.LogLevel]


def test_real_runtime_without_an_npu(real_qbruntime):
    assert real_qbruntime.get_available_devices() == []
    with pytest.raises(real_qbruntime.QbRuntimeError, match="Acc_DeviceNotFound"):
        real_qbruntime.Accelerator(dev_no=0)


def test_broken_and_missing_mxq_one_sentence_real_runtime(real_qbruntime, tmp_path, capfd):
    bad = tmp_path / "bad.mxq"
    bad.write_text("not a model\n")
    with pytest.raises(BertnpuError) as info:
        preflight(bad)
    msg = str(info.value)
    assert msg.startswith(f"{str(bad)!r} is not a loadable .mxq (qbruntime: Invalid magic value detected") and "\n" not in msg
    assert "recompile it with `bertnpu compile`" in msg
    assert capfd.readouterr().err == ""  # the runtime's native lines were captured, not printed
    # the CLI: before the model is loaded (this --model does not exist) or anything encoded; one line, exit 2
    argv = ["eval", "--model", str(tmp_path / "no-model"), "--stsb-dir", str(tmp_path), "--mxq"]
    assert main(argv + [str(bad)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bertnpu: error: ") and "Invalid magic value" in err[0]
    assert main(argv + [str(tmp_path / "absent.mxq")]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not exist; compile one with `bertnpu compile`" in err[0]
    assert main(argv + [str(bad), "--verbose"]) == 2  # --verbose keeps the native lines
    captured = capfd.readouterr()
    assert "Failed to load model" in captured.out + captured.err  # after set_log_level the native logger writes to stdout


@pytest.fixture
def runtime_double(monkeypatch):
    monkeypatch.syspath_prepend(str(DOUBLE_INIT.parent.parent))
    _forget_qbruntime()
    import qbruntime

    assert qbruntime.IS_TEST_DOUBLE
    yield qbruntime
    _forget_qbruntime()


@pytest.fixture
def compiled_double_mxq(qbcompiler_double, tiny_model, tiny_calib, tmp_path):
    from bertnpu.device.qbcompiler_adapter import compile_mxq
    from bertnpu.quant.config import QuantConfig

    return compile_mxq(tiny_model, tiny_calib, QuantConfig(), tmp_path / "tiny.mxq")


def test_no_npu_and_wrong_model_one_sentence(runtime_double, compiled_double_mxq, tiny_model, monkeypatch, tmp_path, capfd):
    mxq = compiled_double_mxq
    folder = Path(tiny_model.name).name
    facts = preflight(mxq, hidden_size=36)
    assert facts.devices == ("aries-rb",) and facts.input_shapes == (((1, -1, 36),),) and facts.is_double
    assert facts.seq_lengths() == () and facts.padded_length(9) == 9
    with pytest.raises(BertnpuError, match=r"hidden size 36 .* but the model given has 48; pass the model it was compiled from"):
        preflight(mxq, hidden_size=48)
    with pytest.raises(BertnpuError, match=rf"tiny.mxq.recipe.json is for the model '{folder}', not 'other-model'; pass the model it was compiled"):
        preflight(mxq, hidden_size=36, model_name="/elsewhere/other-model")
    assert preflight(mxq, hidden_size=36, model_name=f"/copied/elsewhere/{folder}").path == str(mxq)  # same folder name: same model
    monkeypatch.setenv("QBRUNTIME_DOUBLE_DEVICES", "")
    with pytest.raises(BertnpuError) as info:
        preflight(mxq)
    assert str(info.value).startswith("No Mobilint NPU was found (qbruntime.get_available_devices() is empty)")
    assert preflight(mxq, require_npu=False).devices == ()
    assert capfd.readouterr().err == ""
    # the CLI with no NPU: one line, exit 2, before the model (which does not exist here) is loaded or anything encoded
    assert main(["eval", "--model", str(tmp_path / "no-model"), "--stsb-dir", str(tmp_path), "--mxq", str(mxq)]) == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bertnpu: error: No Mobilint NPU was found")


def test_variant_lengths_and_padding():
    facts = MxqFacts("m.mxq", ("aries-rb",), (((1, 16, 8), (1, 16)), ((1, 32, 8), (1, 32))), (((1, 16, 8),), ((1, 32, 8),)))
    assert facts.seq_lengths() == (16, 32) and facts.has_mask_input()
    assert [facts.padded_length(n) for n in (1, 16, 17, 32)] == [16, 16, 32, 32]
    with pytest.raises(BertnpuError, match=r"A 33-token sentence is longer than every variant of m.mxq \(16, 32 tokens\)"):
        facts.padded_length(33)
    multiple = MxqFacts("m.mxq", (), (((1, -8, 8),),), (((1, -8, 8),),))
    assert multiple.seq_lengths() == () and [multiple.padded_length(n) for n in (1, 8, 9)] == [8, 8, 16]
    assert json.loads(json.dumps(facts.to_dict()))["seq_lengths"] == [16, 32]
    assert facts.variants == 2
