"""The qbruntime backend, end to end with the test doubles: compile (double) -> .mxq -> NPU (double) -> STS-B.

The three-way check (FP32 / simulated / NPU) is in test_three_way.py."""

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
from bertnpu.device.compile_record import record_path_for
from bertnpu.device.preflight import preflight
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


def test_cli_eval_three_way_and_fallback(compiled, tiny_model_dir, stsb_dir, capsys):
    mxq, calib = compiled
    args = ["eval", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--mxq", str(mxq), "--calib", str(calib.files[0].parent), "--limit", "40"]
    assert main(args + ["--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"fp32_spearman", "npu_spearman", "simulated", "npu_cosine", "best_profile", "pairs"} <= set(result)
    assert set(result["simulated"]) == set(result["npu_cosine"]) == {"aries", "all-int8", "optimistic"} and result["pairs"] == 40
    assert result["npu_spearman"] == pytest.approx(result["fp32_spearman"], abs=1e-6)  # the runtime double runs FP32
    assert result["recipe"]["calibration"] == QuantConfig().to_dict()  # read from <mxq>.recipe.json
    report = json.loads(open(f"{mxq}.check.json").read())
    assert report["npu_cosine"] == result["npu_cosine"] and report["best_profile"] == result["best_profile"]
    assert main(args) == 2  # never replaces the report silently
    assert "already exists; pass --force" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0
    out = capsys.readouterr().out
    assert "<- best match" in out and f"wrote {mxq}.check.json" in out
    assert main(args[:-4] + ["--limit", "40"]) == 2  # no --calib: the check cannot simulate
    assert "pass --calib DIR (or --stats FILE)" in capsys.readouterr().err
    record_path_for(mxq).unlink()
    assert main(args + ["--json"]) == 0
    captured = capsys.readouterr()
    assert f"No {mxq}.recipe.json beside the .mxq" in captured.err and "plain evaluation" in captured.err
    assert "simulating the tutorial's config; pass --recipe FILE" in captured.err
    result = json.loads(captured.out.strip().splitlines()[-1])
    assert "best_profile" not in result and result["npu_spearman"] == pytest.approx(result["fp32_spearman"], abs=1e-6)


def test_without_qbruntime_one_sentence(tiny_model, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "qbruntime", None)  # import fails
    (tmp_path / "m.mxq").write_bytes(b"x")
    with pytest.raises(BertnpuError) as info:
        with QbruntimeEncoder(tiny_model, tmp_path / "m.mxq"):
            pass
    assert str(info.value) == MISSING
    with pytest.raises(BertnpuError, match="does not exist"):
        QbruntimeEncoder(tiny_model, tmp_path / "absent.mxq")


def test_returned_shape_checked_against_the_record(compiled, tiny_model):
    mxq, _ = compiled
    facts = preflight(mxq, hidden_size=36)  # taken while the record was right
    path = record_path_for(mxq)
    data = json.loads(path.read_text())
    data["output"]["returns"] = "pooler_output"  # a stale record: the .mxq returns token states
    path.write_text(json.dumps(data))
    with pytest.raises(BertnpuError) as info:
        with QbruntimeEncoder(tiny_model, mxq, progress=False, facts=facts) as npu:
            npu(["A man is playing a guitar."])
    msg = str(info.value)
    assert "The NPU returned shape(s) (1, 9, 36) for a 9-token sentence" in msg and "returns pooler_output [1, 36]" in msg
    # the preflight catches the same stale record from the runtime's own shapes, before any sentence is encoded
    with pytest.raises(BertnpuError) as info:
        with QbruntimeEncoder(tiny_model, mxq, progress=False):
            pass
    msg = str(info.value)
    assert "returns shape(s) [[1, -1, 36]] (variant 0, from the runtime)" in msg and "says it returns pooler_output [1, 36]" in msg


def test_pooler_model_end_to_end(tiny_model_dir, tiny_calib, stsb_test, tmp_path, monkeypatch):
    from bertnpu.model.load import load_model

    monkeypatch.syspath_prepend(str(DOUBLES / "qbcompiler_double"))
    monkeypatch.syspath_prepend(str(DOUBLES / "qbruntime_double"))
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]
    from bertnpu.device.qbcompiler_adapter import compile_mxq

    model = load_model(str(tiny_model_dir), pooling="pooler")
    mxq = compile_mxq(model, tiny_calib, QuantConfig(), tmp_path / "p.mxq")
    pairs = stsb_test.subset(40)
    with QbruntimeEncoder(model, mxq, progress=False) as npu:
        got = evaluate_sts(npu, pairs)["spearman"]
    assert got == pytest.approx(evaluate_sts(SentenceEncoder(model, progress=False), pairs)["spearman"], abs=1e-6)
    mean_model = load_model(str(tiny_model_dir), pooling="mean")
    with pytest.raises(BertnpuError, match="returns BERT's pooler output, but this model uses mean pooling"):
        with QbruntimeEncoder(mean_model, mxq, progress=False) as npu:
            npu(["A man is playing a guitar."])
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]


def _with_variants(mxq, lengths):
    """The double's .mxq re-saved with fixed sequence lengths (one variant each, with a mask input)."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(mxq), "pt") as fh:
        meta, state = fh.metadata(), {k: fh.get_tensor(k) for k in fh.keys()}
    save_file(state, str(mxq), metadata={**meta, "seq_lengths": json.dumps(lengths)})


def test_fixed_length_variants_pad_to_the_smallest_fitting_one(compiled, tiny_model, stsb_test):
    import numpy as np

    from bertnpu.model.sentence_encoder import tokenize

    mxq, _ = compiled
    _with_variants(mxq, [10, 16])
    sentences = [s for s in stsb_test.sentence1[:80] if len(tokenize(tiny_model, [s])[0]) <= 16][:40]
    lengths = [len(ids) for ids in tokenize(tiny_model, sentences)]
    assert min(lengths) < 10 < max(lengths)  # both variants are used, most sentences padded
    facts = preflight(mxq, hidden_size=36)
    assert facts.seq_lengths() == (10, 16) and facts.has_mask_input()
    with QbruntimeEncoder(tiny_model, mxq, progress=False, facts=facts) as npu:
        got = npu(sentences)
        calls = list(npu._npu.calls)
    assert calls == [(0 if n <= 10 else 1, 10 if n <= 10 else 16) for n in lengths]  # (variant, padded length) per sentence
    want = SentenceEncoder(tiny_model, progress=False)(sentences)  # FP32, each sentence unpadded
    np.testing.assert_allclose(got, np.asarray(want), atol=2e-5)
    with QbruntimeEncoder(tiny_model, mxq, progress=False, facts=facts) as npu:
        long = "A man is playing a guitar while " * 6
        with pytest.raises(BertnpuError, match=r"-token sentence is longer than every variant of tiny.mxq \(10, 16 tokens\)"):
            npu([long])
