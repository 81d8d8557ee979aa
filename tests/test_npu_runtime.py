"""The qbruntime backend, end to end with the test doubles: compile (double) -> .mxq -> NPU (double) -> STS-B."""

import json
import sys

import pytest

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.cli import main
from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.errors import BertnpuError
from bertnpu.tune.evaluate import evaluate_sts
from bertnpu.device.npu_runtime import MISSING, QbruntimeEncoder
from bertnpu.quant.config import QuantConfig
from bertnpu.model.cpu_part import export_weight_dict
from conftest import REPO

DOUBLES = REPO / "tests" / "doubles"


@pytest.fixture
def compiled(tiny_model, stsb_validation, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(DOUBLES / "qbcompiler_double"))
    monkeypatch.syspath_prepend(str(DOUBLES / "qbruntime_double"))
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]
    from bertnpu.device.qbcompiler_adapter import compile_mxq

    calib = build_calibration_set(tiny_model, tmp_path / "calib", CalibrationSpec(count=8), pairs=stsb_validation, progress=False)
    mxq = compile_mxq(tiny_model, tmp_path / "calib", QuantConfig(), tmp_path / "tiny.mxq")
    yield mxq, calib
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]


def test_npu_backend_matches_fp32_and_releases(compiled, tiny_model, stsb_test, tmp_path):
    mxq, _ = compiled
    pairs = stsb_test.subset(60)
    weights = export_weight_dict(tiny_model.bert, tmp_path / "weight_dict.pth")
    with QbruntimeEncoder(tiny_model, mxq, weights=weights, progress=False) as npu:
        got = evaluate_sts(npu, pairs)
    import qbruntime

    assert qbruntime.IS_TEST_DOUBLE and qbruntime.disposed == [str(mxq)]
    want = evaluate_sts(SentenceEncoder(tiny_model, progress=False), pairs)
    assert got["spearman"] == pytest.approx(want["spearman"], abs=1e-6)  # the double does not quantize


def test_released_on_error(compiled, tiny_model):
    mxq, _ = compiled
    import qbruntime

    qbruntime.disposed.clear()
    with pytest.raises(RuntimeError):
        with QbruntimeEncoder(tiny_model, mxq, progress=False):
            raise RuntimeError("boom")
    assert qbruntime.disposed == [str(mxq)]


def test_cli_eval_side_by_side(compiled, tiny_model_dir, stsb_dir, capsys):
    mxq, calib = compiled
    assert main(["eval", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--mxq", str(mxq), "--calib", str(calib.files[0].parent),
                 "--limit", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"fp32_spearman", "int8_sim_spearman", "npu_spearman"} <= set(result)
    assert result["npu_spearman"] == pytest.approx(result["fp32_spearman"], abs=1e-6)
    assert result["config"] == QuantConfig().to_dict()  # read from <mxq>.config.json


def test_without_qbruntime_one_sentence(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "qbruntime", None)  # import fails
    (tmp_path / "m.mxq").write_bytes(b"x")
    with pytest.raises(BertnpuError) as info:
        with QbruntimeEncoder(tiny_model, tmp_path / "m.mxq"):
            pass
    assert str(info.value) == MISSING
    with pytest.raises(BertnpuError, match="does not exist"):
        QbruntimeEncoder(tiny_model, tmp_path / "absent.mxq")
