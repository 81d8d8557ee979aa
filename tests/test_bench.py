"""`bertnpu bench --mxq` on the runtime double: what is timed, the numbers' arithmetic, refused core modes, async not tried."""

import json

import numpy as np
import pytest

from bertnpu.cli import main
from bertnpu.device.bench import ASYNC_NOTE, DOUBLE_NOTE, bench_mxq, format_bench, timing
from test_npu_runtime import compiled  # noqa: F401  (fixture: tiny model compiled by the qbcompiler double)


def test_timing_arithmetic():
    t = timing([0.010, 0.020, 0.030, 0.040])
    assert t["sentences"] == 4 and t["seconds"] == pytest.approx(0.1) and t["sentences_per_s"] == pytest.approx(40.0)
    assert t["p50_ms"] == pytest.approx(np.percentile([10, 20, 30, 40], 50)) and t["p95_ms"] == pytest.approx(np.percentile([10, 20, 30, 40], 95))


def test_bench_on_the_double(compiled, tiny_model, stsb_test, monkeypatch):  # noqa: F811
    import qbruntime

    mxq, _ = compiled
    monkeypatch.setattr(qbruntime.ModelConfig, "set_global8_core_mode", lambda self: False)  # a mode this "device" refuses
    sentences = stsb_test.sentence1[:12]
    r = bench_mxq(tiny_model, mxq, sentences, modes=("auto", "single", "global8"), progress=False)
    assert r["test_double"] is True and r["sentences"] == 12 and r["async"] == ASYNC_NOTE
    for t in (r["fp32_cpu"], r["npu"]["auto"], r["npu"]["single"]):
        assert t["sentences"] == 12 and t["p50_ms"] <= t["p95_ms"] and t["sentences_per_s"] == pytest.approx(12 / t["seconds"])
    assert r["npu"]["global8"] == {"refused": "qbruntime refused core mode 'global8' on this device; use one the model supports (see `bertnpu doctor`)."}
    text = format_bench(r)
    assert "NPU global8" in text and "not supported: qbruntime refused" in text and DOUBLE_NOTE in text and ASYNC_NOTE in text
    assert text.splitlines()[2].startswith("FP32 CPU") and text.splitlines()[2].endswith("1.00")  # the reference's ratio to itself


def test_cli_bench(compiled, tiny_model_dir, stsb_dir, capsys, tmp_path):  # noqa: F811
    mxq, _ = compiled
    base = ["bench", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--limit", "4", "--mxq", str(mxq)]
    assert main(base + ["--modes", "auto,multi", "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(r["npu"]) == {"auto", "multi"} and r["npu"]["auto"]["sentences"] == r["fp32_cpu"]["sentences"] == r["sentences"] <= 8
    assert main(base + ["--modes", "turbo"]) == 2
    assert "--modes 'turbo' holds turbo; use some of auto, single, multi, global4, global8." in capsys.readouterr().err
    assert main(base[:-1] + [str(tmp_path / "absent.mxq")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_notebook_panel_text(compiled, tiny_model, stsb_test, tmp_path, monkeypatch):  # noqa: F811
    from bertnpu.device.bench import bench_summary

    mxq, _ = compiled
    text = bench_summary(tiny_model, mxq, stsb_test.subset(2), limit=3, progress=False)
    assert text.startswith("3 STS-B sentences, one per call") and DOUBLE_NOTE in text
    assert bench_summary(tiny_model, tmp_path / "model.mxq", stsb_test, progress=False).startswith("no model.mxq yet")
    monkeypatch.setenv("QBRUNTIME_DOUBLE_DEVICES", "")
    assert bench_summary(tiny_model, mxq, stsb_test, progress=False).startswith("No Mobilint NPU was found")
