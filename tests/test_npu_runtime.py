"""The qbruntime backend, end to end with the test doubles: compile (double) -> .mxq -> NPU (double) -> STS-B."""

import json
import sys

import numpy as np
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


# -- the compile record: what the .mxq returns, checked; the three-way check -------------------------------
from bertnpu.device.compile_record import record_path_for  # noqa: E402
from bertnpu.device.three_way import format_three_way, plain_npu_check, three_way_check  # noqa: E402
from bertnpu.quant.recipe import Recipe  # noqa: E402
from bertnpu.quant.precision import PROFILE_NAMES  # noqa: E402

A16 = ("layer.1.ffn.residual", "layer.0.attention.scores")


@pytest.fixture
def compiled_recipe(tiny_model, tiny_calib, tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(DOUBLES / "qbcompiler_double"))
    monkeypatch.syspath_prepend(str(DOUBLES / "qbruntime_double"))
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]
    from bertnpu.device.qbcompiler_adapter import compile_mxq

    recipe = Recipe(calibration=QuantConfig(percentile=0.99), activation_16bits=A16, prediction={"spearman": {"aries": 0.5}})
    yield compile_mxq(tiny_model, tiny_calib, recipe, tmp_path / "tiny.mxq"), recipe
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]


def test_three_way_check_against_independent_numbers(compiled_recipe, tiny_model, tiny_stats, stsb_test):
    from bertnpu.quant.simulate import simulate
    from bertnpu.tune.evaluate import unique_sentences

    mxq, recipe = compiled_recipe
    pairs = stsb_test.subset(50)
    result = three_way_check(tiny_model, mxq, pairs, tiny_stats, progress=False)
    assert set(result["simulated"]) == set(result["npu_cosine"]) == set(PROFILE_NAMES)
    fp32 = evaluate_sts(SentenceEncoder(tiny_model, progress=False), pairs)["spearman"]
    assert result["fp32_spearman"] == pytest.approx(fp32, abs=1e-9)
    assert result["npu_spearman"] == pytest.approx(fp32, abs=1e-6)  # the runtime double runs FP32
    assert result["npu_cosine_fp32"] == pytest.approx(1.0, abs=1e-6)
    sentences, _, _ = unique_sentences(pairs)
    fp32_emb = SentenceEncoder(tiny_model, progress=False)(sentences)
    for profile in PROFILE_NAMES:
        sim = simulate(tiny_model, tiny_stats, recipe, profile=profile)
        assert result["simulated"][profile] == pytest.approx(evaluate_sts(sim.encoder_for(), pairs)["spearman"], abs=1e-9)
        emb = sim.encoder_for()(sentences)
        a, b = fp32_emb.astype(np.float64), emb.astype(np.float64)  # NPU double == FP32: cosine to the simulation by hand
        want = np.mean((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1))
        assert result["npu_cosine"][profile] == pytest.approx(want, abs=1e-5)
    assert result["best_profile"] == max(result["npu_cosine"], key=result["npu_cosine"].get)
    assert result["recipe"]["activation_16bits"] == list(A16) and result["output"] == "last_hidden_state"
    assert result["operators"] == {"layer.1.ffn.residual": "/encoder/layer.1/output/Add",
                                   "layer.0.attention.scores": "/encoder/layer.0/attention/self/MatMul"}
    text = format_three_way(result)
    assert "<- best match" in text and f"'{result['best_profile']}' profile best" in text


def test_without_recipe_file_three_way_says_so_and_plain_check_works(compiled_recipe, tiny_model, tiny_stats, stsb_test):
    mxq, _ = compiled_recipe
    record_path_for(mxq).unlink()
    with pytest.raises(BertnpuError, match=r"recipe\.json' does not exist, so the recipe of .* is unknown"):
        three_way_check(tiny_model, mxq, stsb_test.subset(10), tiny_stats, progress=False)
    plain = plain_npu_check(tiny_model, mxq, stsb_test.subset(30), progress=False)
    assert plain["npu_spearman"] == pytest.approx(plain["fp32_spearman"], abs=1e-6)


def test_returned_shape_checked_against_the_record(compiled_recipe, tiny_model, stsb_test):
    mxq, _ = compiled_recipe
    path = record_path_for(mxq)
    data = json.loads(path.read_text())
    data["output"]["returns"] = "pooler_output"  # a stale record: the .mxq returns token states
    path.write_text(json.dumps(data))
    with pytest.raises(BertnpuError) as info:
        with QbruntimeEncoder(tiny_model, mxq, progress=False) as npu:
            npu(["A man is playing a guitar."])
    msg = str(info.value)
    assert "The NPU returned shape(s) (1, 9, 36) for a 9-token sentence" in msg and "returns pooler_output [1, 36]" in msg


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


def test_three_way_with_transformations_collects_transformed_stats(tiny_model, tiny_calib, tiny_stats, stsb_test, tmp_path, monkeypatch):
    from bertnpu.quant.recipe import EquivalentTransformations
    from bertnpu.quant.simulate import simulate
    from bertnpu.quant.transforms import collect_transformed_stats

    monkeypatch.syspath_prepend(str(DOUBLES / "qbcompiler_double"))
    monkeypatch.syspath_prepend(str(DOUBLES / "qbruntime_double"))
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]
    from bertnpu.device.qbcompiler_adapter import compile_mxq

    recipe = Recipe(equivalent_transformation=EquivalentTransformations(qk=True, vo=True))
    mxq = compile_mxq(tiny_model, tiny_calib, recipe, tmp_path / "t.mxq")
    pairs = stsb_test.subset(20)
    with pytest.raises(BertnpuError, match=r"transformation\(s\) qk, vo: pass the calibration set \(--calib\)"):
        three_way_check(tiny_model, mxq, pairs, tiny_stats, profiles=["aries"], progress=False)
    result = three_way_check(tiny_model, mxq, pairs, tiny_stats, calib=tiny_calib, profiles=["aries"], progress=False)
    stats = collect_transformed_stats(tiny_model, tiny_calib, tiny_stats, ["qk", "vo"])
    want = evaluate_sts(simulate(tiny_model, stats, recipe, profile="aries").encoder_for(), pairs)["spearman"]
    assert result["simulated"] == {"aries": pytest.approx(want, abs=1e-9)} and result["best_profile"] == "aries"
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]
