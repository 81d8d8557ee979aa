import json

import pytest
import torch

from bertnpu.cli import main


def _run(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_info_json(capsys, tiny_model_dir):
    rc, out, _ = _run(capsys, "info", "--model", str(tiny_model_dir), "--json")
    info = json.loads(out.strip().splitlines()[-1])
    assert rc == 0
    assert (info["hidden_size"], info["layers"], info["heads"], info["vocab_size"]) == (36, 3, 3, 30522)
    assert info["pooling"] == "mean"
    assert "LayerNorm" in info["cpu"]["ops"] and info["npu"]["parameters"] > 0


def test_export_embeddings(capsys, tiny_model_dir, tmp_path):
    out_file = tmp_path / "weight_dict.pth"
    rc, _, _ = _run(capsys, "export-embeddings", "--model", str(tiny_model_dir), "--out", str(out_file))
    assert rc == 0 and set(torch.load(out_file, weights_only=True)) == {
        "word_embeddings", "token_type_embeddings", "position_embeddings", "layernorm_weight", "layernorm_bias"}
    rc, _, err = _run(capsys, "export-embeddings", "--model", str(tiny_model_dir), "--out", str(out_file))
    assert rc == 2 and "already exists" in err and "Traceback" not in err


def test_eval_json_last_line(capsys, stsb_dir):
    rc, out, _ = _run(capsys, "eval", "--stsb-dir", str(stsb_dir), "--split", "validation", "--limit", "64", "--json")
    result = json.loads(out.strip().splitlines()[-1])
    assert rc == 0
    assert {"spearman", "pearson", "pairs", "seconds"} <= set(result)
    assert result["pairs"] == 64 and 0.5 < result["spearman"] <= 1
    lo, hi = result["spearman_ci"]  # the 95 % bootstrap interval (bertnpu.tune.bootstrap) around the unchanged point estimate
    assert lo < result["spearman"] < hi and "pair_cosines" not in result


@pytest.mark.parametrize("argv,needle", [
    (["eval", "--split", "dev", "--stsb-dir", "."], "Unknown split 'dev'"),
    (["eval", "--pooling", "avg", "--limit", "2"], "Unknown pooling 'avg'"),
    (["info", "--model", "./missing-model"], "does not exist"),
])
def test_user_errors_are_one_line(capsys, stsb_dir, argv, needle):
    if "--limit" in argv:
        argv = argv + ["--stsb-dir", str(stsb_dir)]
    rc, _, err = _run(capsys, *argv)
    assert rc == 2
    lines = [line for line in err.strip().splitlines() if line]
    assert len(lines) == 1 and needle in lines[0] and lines[0].startswith("bertnpu: error: ")


@pytest.mark.parametrize("name, required", [("simulate", []), ("sweep", ["--out", "s"]), ("compile", ["--calib", "c"]), ("eval", [])])
def test_recipe_option_with_config_as_hidden_alias(name, required, capsys):
    """Every command that reads a recipe spells it --recipe; --config, its older name, still works but is not in --help."""
    from bertnpu.cli import build_parser

    parser = build_parser()
    assert (parser.parse_args([name, *required, "--recipe", "r.json"]).recipe == parser.parse_args([name, *required, "--config", "r.json"]).recipe
            == "r.json")
    assert parser.parse_args([name, *required]).recipe is None
    with pytest.raises(SystemExit):
        parser.parse_args([name, "--help"])
    shown = capsys.readouterr().out
    assert "--recipe RECIPE" in shown and "--config" not in shown
    with pytest.raises(SystemExit) as info:
        parser.parse_args([name, *required, "--recipe", "a.json", "--config", "b.json"])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err == f"bertnpu {name}: error: --config b.json repeats the recipe a.json; pass --recipe once; see `bertnpu {name} --help`."
