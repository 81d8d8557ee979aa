"""The three-way check of a compiled .mxq (FP32 / simulated under each profile / NPU), with the test doubles,
against numbers computed here with the simulator and numpy; its terminal text from hand-made results."""

import sys

import numpy as np
import pytest

from bertnpu.device.compile_record import record_path_for
from bertnpu.device.three_way import format_three_way, plain_npu_check, three_way_check
from bertnpu.errors import BertnpuError
from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.precision import PROFILE_NAMES
from bertnpu.quant.recipe import Recipe
from bertnpu.tune.evaluate import evaluate_sts
from conftest import REPO

DOUBLES = REPO / "tests" / "doubles"
A16 = ("layer.1.ffn.residual", "layer.0.attention.scores")


def _forget_doubles():
    for name in [m for m in sys.modules if m.split(".")[0] in ("qbcompiler", "qbruntime")]:
        del sys.modules[name]


@pytest.fixture
def doubles(monkeypatch):
    """qbcompiler and qbruntime resolve to the test doubles for one test."""
    monkeypatch.syspath_prepend(str(DOUBLES / "qbcompiler_double"))
    monkeypatch.syspath_prepend(str(DOUBLES / "qbruntime_double"))
    _forget_doubles()
    yield
    _forget_doubles()


@pytest.fixture
def compiled_recipe(doubles, tiny_model, tiny_calib, tmp_path):
    from bertnpu.device.qbcompiler_adapter import compile_mxq

    recipe = Recipe(calibration=QuantConfig(percentile=0.99), activation_16bits=A16, prediction={"spearman": {"aries": 0.5}})
    return compile_mxq(tiny_model, tiny_calib, recipe, tmp_path / "tiny.mxq"), recipe


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
    # the agreed interval keys, from the same paired bootstrap the evaluate stage uses (issue 24)
    fp32_eval = evaluate_sts(SentenceEncoder(tiny_model, progress=False), pairs, keep_cosines=True)
    npu_eval = evaluate_sts(SentenceEncoder(tiny_model, progress=False), pairs, reference=fp32_eval)
    assert result["fp32_spearman_ci"] == pytest.approx(fp32_eval["spearman_ci"], abs=1e-6)
    assert result["spearman_ci"] == pytest.approx(npu_eval["spearman_ci"], abs=1e-5)
    assert result["diff_to_fp32_ci"] == pytest.approx(npu_eval["diff_to_fp32_ci"], abs=1e-5)  # the double runs FP32: about [0, 0]
    assert set(result["simulated_ci"]) == set(PROFILE_NAMES) and all(lo <= result["simulated"][p] <= hi for p, (lo, hi) in result["simulated_ci"].items())
    text = format_three_way(result)
    assert "<- best match" in text and f"'{result['best_profile']}' profile best" in text and "paired 95 % interval" in text


def test_without_recipe_file_three_way_says_so_and_plain_check_works(compiled_recipe, tiny_model, tiny_stats, stsb_test):
    mxq, _ = compiled_recipe
    record_path_for(mxq).unlink()
    with pytest.raises(BertnpuError, match=r"recipe\.json' does not exist, so the recipe of .* is unknown"):
        three_way_check(tiny_model, mxq, stsb_test.subset(10), tiny_stats, progress=False)
    plain = plain_npu_check(tiny_model, mxq, stsb_test.subset(30), progress=False)
    assert plain["npu_spearman"] == pytest.approx(plain["fp32_spearman"], abs=1e-6)


def test_three_way_with_transformations_collects_transformed_stats(doubles, tiny_model, tiny_calib, tiny_stats, stsb_test, tmp_path):
    from bertnpu.quant.recipe import EquivalentTransformations
    from bertnpu.quant.simulate import simulate
    from bertnpu.quant.transforms import collect_transformed_stats

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


def _result(**extra):
    return {"pairs": 50, "fp32_spearman": 0.81234, "npu_spearman": 0.80016, "npu_cosine_fp32": 0.99512,
            "simulated": {"aries": 0.80111, "all-int8": 0.79, "optimistic": 0.805}, "npu_cosine": {"aries": 0.9991, "all-int8": 0.98, "optimistic": 0.9987},
            "best_profile": "aries", "knobs_dropped": [], **extra}


def test_text_lists_each_profile_and_marks_the_best():
    lines = format_three_way(_result()).splitlines()
    assert lines[0] == "STS-B Spearman on 50 pairs: FP32 0.8123 | NPU 0.8002"
    assert lines[1] == "simulated recipe, by precision profile (NPU mean cosine to it):"
    assert lines[2] == "  aries       Spearman 0.8011   cosine 0.9991  <- best match"
    assert lines[3] == "  all-int8    Spearman 0.7900   cosine 0.9800"
    assert lines[5] == "the device matches the 'aries' profile best"
    assert lines[-1] == "NPU mean cosine to FP32: 0.9951" and len(lines) == 7


def test_text_says_when_the_mxq_is_not_the_simulated_recipe():
    text = format_three_way(_result(knobs_dropped=["qk", "norm_conv"]))
    assert "note: compiled without qk, norm_conv (--allow-missing-knobs), so the .mxq is not the simulated recipe" in text


def test_text_of_the_plain_check_has_no_profiles():
    plain = {"pairs": 30, "fp32_spearman": 0.5, "npu_spearman": 0.49996, "npu_cosine_fp32": 1.0}
    assert format_three_way(plain) == "STS-B Spearman on 30 pairs: FP32 0.5000 | NPU 0.5000\nNPU mean cosine to FP32: 1.0000"
