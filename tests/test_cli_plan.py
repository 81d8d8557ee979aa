"""`bertnpu plan` and `bertnpu simulate --recipe/--profile/--a16` on the tiny BERT: outputs and one-sentence errors."""

import json

import pytest

from bertnpu.cli import main
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.quant.simulate import simulate
from bertnpu.tune.evaluate import evaluate_sts


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def calib_dir(tiny_calib):
    return str(tiny_calib.files[0].parent)


def test_simulate_bracket_and_a16(capsys, tiny_model, tiny_model_dir, tiny_stats, calib_dir, stsb_dir, stsb_validation, tmp_path):
    recipe = Recipe(calibration=QuantConfig(method=0, bits=4), activation_16bits=("layer.0.ffn.residual",))
    path = recipe.save(tmp_path / "r.json")
    rc, out, _ = _run(capsys, "simulate", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--calib", calib_dir, "--recipe", str(path),
                      "--a16", "layer.1.ffn.residual", "--limit", "40", "--json")
    assert rc == 0, _
    result = json.loads(out.strip().splitlines()[-1])
    assert set(result["profiles"]) == {"aries", "all-int8", "optimistic"} and result["profile"] == "aries"
    pairs = stsb_validation.subset(40)
    for name, value in result["profiles"].items():
        r = recipe.with_(profile=name, activation_16bits=("layer.0.ffn.residual", "layer.1.ffn.residual"))
        assert value == pytest.approx(evaluate_sts(simulate(tiny_model, tiny_stats, r).encoder_for(), pairs)["spearman"], abs=1e-6)
    assert result["spearman"] == pytest.approx(result["profiles"]["aries"])
    # the bracket by what it measures: each profile's interval, paired difference to FP32 and mean embedding cosine to FP32
    from bertnpu.model.sentence_encoder import SentenceEncoder
    from bertnpu.tune.evaluate import cosine_rows, unique_sentences

    sentences = unique_sentences(pairs)[0]
    fp32_emb = SentenceEncoder(tiny_model, progress=False)(sentences)
    for name, d in result["profile_details"].items():
        r = recipe.with_(profile=name, activation_16bits=("layer.0.ffn.residual", "layer.1.ffn.residual"))
        want = cosine_rows(simulate(tiny_model, tiny_stats, r).encoder_for()(sentences), fp32_emb).mean()
        assert d["cosine_mean"] == pytest.approx(want, abs=1e-6) and d["spearman"] == result["profiles"][name]
        assert d["diff_to_fp32"] == pytest.approx(d["spearman"] - result["fp32_spearman"], abs=1e-12) and len(d["diff_to_fp32_ci"]) == 2
    assert result["diff_to_fp32_ci"] == result["profile_details"]["aries"]["diff_to_fp32_ci"] and len(result["spearman_ci"]) == 2
    rc, out, _ = _run(capsys, "simulate", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--calib", calib_dir, "--config", str(path),
                      "--profile", "optimistic", "--limit", "40")
    assert rc == 0 and "[optimistic]" in out and "profile bracket (Spearman [95 % CI], mean embedding cosine to FP32): aries" in out
    assert "FP32's noise" in out or "than FP32: " in out  # the verdict of the paired interval
    assert "note:" not in _  # residual sums: no observation against their override
    rc, out, err = _run(capsys, "simulate", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--calib", calib_dir, "--config", str(path),
                        "--a16", "layer.1.attention.layernorm.out", "--limit", "20", "--json")
    assert rc == 0 and json.loads(out.strip().splitlines()[-1])["recipe"]["activation_16bits"][-1] == "layer.1.attention.layernorm.out"
    assert "note: 16-bit site(s) layer.1.attention.layernorm.out: an ARIES user's measurement" in err and "byte-identical" in err


@pytest.mark.parametrize("extra, needle", [
    (["--a16", "layer.9.ffn.residual"], "Unknown site(s) layer.9.ffn.residual"),
    (["--profile", "fast"], "Unknown precision profile 'fast'; use one of aries, all-int8, optimistic"),
])
def test_simulate_bad_input(capsys, tiny_model_dir, calib_dir, stsb_dir, extra, needle):
    rc, out, err = _run(capsys, "simulate", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--calib", calib_dir, "--limit", "20", *extra)
    assert rc == 2 and needle in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_recipe_bad_files(capsys, tiny_model_dir, calib_dir, stsb_dir, tmp_path):
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps({**Recipe().to_dict(), "schema_version": 99}))
    bad_transform = tmp_path / "t.json"
    bad_transform.write_text(json.dumps({**Recipe().to_dict(), "equivalent_transformation": {"spin": True}}))
    for path, needle in ((newer, "schema_version 99, newer than this bertnpu reads"), (bad_transform, "Unknown field(s) spin in recipe.equivalent_transformation")):
        rc, _, err = _run(capsys, "simulate", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--calib", calib_dir, "--recipe", str(path))
        assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra, needle", [
    (["--tolerance", "0"], "Tolerance 0.0 is outside (0, 1)"),
    (["--tolerance", "1"], "Tolerance 1.0 is outside (0, 1)"),
    (["--profile", "pessimistic"], "Unknown precision profile 'pessimistic'"),
])
def test_plan_bad_input(capsys, tiny_model_dir, calib_dir, stsb_dir, tmp_path, extra, needle):
    rc, _, err = _run(capsys, "plan", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--calib", calib_dir,
                      "--out", str(tmp_path / "recipe.json"), *extra)
    assert rc == 2 and needle in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "recipe.json").exists()


def test_plan_json_and_recipe(capsys, tiny_model_dir, calib_dir, stsb_dir, tmp_path):
    out = tmp_path / "recipe.json"
    rc, text, _ = _run(capsys, "plan", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--calib", calib_dir, "--out", str(out),
                       "--limit", "30", "--max-sites", "1", "--json")
    assert rc == 0
    result = json.loads(text.strip().splitlines()[-1])
    assert {"fp32_spearman", "spearman", "validation_spearman", "activation_16bits", "profile", "seconds"} <= set(result)
    assert {"spearman_ci", "diff_to_fp32", "diff_to_fp32_ci", "fp32_spearman_ci", "stop_rule", "stop_reason"} <= set(result)
    assert result["stop_rule"] in ("fp32_noise", "no_gain", "max_sites", "no_candidates") and f"stopped by {result['stop_rule']}" in text
    recipe = Recipe.load(out)
    assert list(recipe.activation_16bits) == result["activation_16bits"] and recipe.profile == "aries"
    assert recipe.prediction["test_spearman"] == pytest.approx(result["spearman"])
    assert (tmp_path / "plan_pareto.png").is_file() and (tmp_path / "plan_sites.png").is_file()
    rc, _, err = _run(capsys, "plan", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--calib", calib_dir, "--out", str(out), "--limit", "30")
    assert rc == 2 and "already exists" in err
