import json

import pytest

import bertnpu.stages as stages_mod
from bertnpu.cli import main
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.run_config import RunConfig
from bertnpu.ui.run import run_pipeline


@pytest.fixture(scope="module")
def first_run(tiny_model_dir, stsb_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    lines = []
    summary = run_pipeline(RunConfig.quick(model=str(tiny_model_dir), stsb_dir=str(stsb_dir), out=str(out)), log=lines.append)
    return out, summary, lines


def test_everything_lands_in_one_folder(first_run):
    out, summary, _ = first_run
    names = {p.name for p in out.iterdir()}
    assert {"summary.json", "report.html", "weight_dict.pth", "calib", "stats.npz", "sweep", "recommended_config.json", "compile_bundle", "figures"} <= names
    saved = json.loads((out / "summary.json").read_text())
    assert saved["evaluation"]["fp32"]["spearman"] == summary["evaluation"]["fp32"]["spearman"]
    for key in ("analysis", "embeddings", "calibration", "stats", "sweep", "evaluation", "compile", "inputs", "versions"):
        assert key in saved
    assert {"fp32", "tutorial_default", "recommended", "planned"} <= set(saved["evaluation"])
    # the planned recipe (the one compiled) is scored on test beside the others, with its cosine and recall@10
    assert Recipe.from_dict(saved["evaluation"]["planned"]["recipe"]) == Recipe.from_dict(saved["plan"]["recipe"]) and 0 < saved["evaluation"]["planned"]["cosine_mean"] <= 1
    saved_config = json.loads((out / "recommended_config.json").read_text())
    assert {k: saved_config[k] for k in saved["sweep"]["recommended"]} == saved["sweep"]["recommended"]
    scored = [r for r in saved["sweep"]["rows"] if r["spearman"] is not None]  # a fast sweep ranks some rows by proxy only
    best = max(scored, key=lambda r: r["spearman"])
    assert (best["percentile"], best["topk_ratio"], best["method"]) == tuple(saved["sweep"]["recommended"][k] for k in ("percentile", "topk_ratio", "method"))
    assert saved["compile"]["bundle"] == "compile_bundle"  # qbcompiler absent here


def test_summary_entries_are_the_stage_results(first_run):
    out, summary, _ = first_run
    saved = json.loads((out / "summary.json").read_text())
    # one split for the calibration figures everywhere: validation, never test
    assert saved["calibration"]["evaluation_split"] == "validation"
    assert {"figures/calibration_ranges.png", "figures/calibration_coverage.png"} <= set(saved["calibration"]["files"])
    for name in ("placement", "site_ranges", "threshold_stability", "sweep_heatmap"):
        assert (out / "figures" / f"{name}.png").is_file()
    # typed sweep rows keep the whole recipe; the recommended recipe file is the best row's
    rows = saved["sweep"]["rows"]
    assert all(Recipe.from_dict(r["recipe"]).calibration == QuantConfig.from_dict({k: r[k] for k in QuantConfig().to_dict()}) for r in rows)
    best = max((r for r in rows if r["spearman"] is not None), key=lambda r: r["spearman"])
    assert Recipe.load(out / "recommended_recipe.json") == Recipe.from_dict(best["recipe"])
    assert saved["evaluation"]["recommended"]["recipe"] == best["recipe"]
    assert json.loads((out / "compile_bundle" / "quant_config.json").read_text())["schema_version"] == 1


def test_report_is_self_contained(first_run):
    html = (first_run[0] / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 6
    assert "src=\"http" not in html and "<script" not in html  # readable offline
    assert "Predicted accuracy on STS-B test" in html
    # the first section is the headline card, with summary.json's numbers; the raw JSON lies beside the page
    from test_run_report import _headline, _number

    out = first_run[0]
    saved = json.loads((out / "summary.json").read_text())
    card = _headline(html)
    assert _number(card["FP32 Spearman"]) == round(saved["evaluation"]["fp32"]["spearman"], 4)
    assert _number(card["Planned recipe Spearman"]) == round(saved["evaluation"]["planned"]["spearman"], 4)
    assert _number(card["Mean cosine to FP32 embeddings"]) == round(saved["evaluation"]["planned"]["cosine_mean"], 4)
    assert saved["evaluation"]["fidelity"]["entry"] == "planned"  # the worst pairs shown are the compiled recipe's
    assert json.loads((out / "report_data.json").read_text())["recipe"] == Recipe.load(out / "compile_bundle" / "recipe.json").to_dict()


def test_rerun_reuses_and_force_recomputes(first_run, tiny_model_dir, stsb_dir):
    out, summary, _ = first_run
    lines = []
    again = run_pipeline(RunConfig.quick(model=str(tiny_model_dir), stsb_dir=str(stsb_dir), out=str(out)), log=lines.append)
    assert sum("reused (inputs unchanged)" in line for line in lines) == 8
    assert again["evaluation"] == summary["evaluation"]
    lines.clear()
    run_pipeline(RunConfig.quick(model=str(tiny_model_dir), stsb_dir=str(stsb_dir), out=str(out), force=True), log=lines.append)
    assert not any("reused" in line for line in lines)


def test_interrupted_run_resumes(tiny_model_dir, stsb_dir, tmp_path, monkeypatch):
    out = tmp_path / "out"
    opts = RunConfig.quick(model=str(tiny_model_dir), stsb_dir=str(stsb_dir), out=str(out))

    def interrupt(self, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(stages_mod, "evaluate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(opts, log=lambda line: None)
    assert not (out / "summary.json").exists()
    monkeypatch.undo()
    lines = []
    run_pipeline(opts, log=lines.append)
    reused = [line for line in lines if "reused" in line]
    assert len(reused) == 6 and "[7/8] evaluation: done" in " ".join(lines)


def test_cli_run(first_run, tiny_model_dir, stsb_dir, capsys):
    out = first_run[0]
    assert main(["run", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--out", str(out), "--quick"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    planned = first_run[1]["evaluation"]["planned"]["spearman"]
    assert "INT8 recommended" in last and f"planned, compiled {planned:.4f}" in last


def test_no_plan_compiles_the_sweep_recommendation(first_run, tiny_model_dir, stsb_dir, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--out", str(out), "--quick", "--no-plan"]) == 0
    printed = capsys.readouterr().out
    assert "plan: skipped (--no-plan)" in printed and "planned, compiled" not in printed
    saved = json.loads((out / "summary.json").read_text())
    assert "--no-plan" in saved["plan"]["skipped"] and not (out / "recipe.json").exists()
    assert saved["evaluation"].get("planned") is None
    # the same stages before the plan give the same recommendation as the planned run; that recipe is what the bundle holds
    full = first_run[1]
    assert saved["evaluation"]["recommended"] == full["evaluation"]["recommended"]
    assert Recipe.load(out / "compile_bundle" / "recipe.json") == Recipe.load(out / "recommended_recipe.json")
    assert "--no-plan" in (out / "report.html").read_text()


def test_report_escapes_every_value_from_the_summary(first_run):
    """A model or STS-B folder named like markup reaches report.html as text, never as a tag."""
    from html.parser import HTMLParser

    from bertnpu.ui.run_report import run_report

    markup = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    out = first_run[0]
    s = json.loads((out / "summary.json").read_text())
    s["analysis"]["summary"]["model"] = s["inputs"]["model"] = f"/models/{markup}"
    s["inputs"]["stsb"] = f"/data/{markup}/sts-dev.csv"
    s["compile"]["note"] = markup
    tags = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append((tag, dict(attrs)))

    Tags().feed(run_report(s, out))
    assert not [t for t, _ in tags if t == "script"]
    assert not [a for t, a in tags if "onerror" in a]
    assert all(a["src"].startswith("data:image/png;base64,") for t, a in tags if t == "img")


def test_report_shows_no_private_path(first_run, tiny_model_dir, stsb_dir):
    """report.html names the model, STS-B and output folders by placeholders (they are absolute here, under pytest's
    temporary folder, which carries the user name), never by their paths (issue 26)."""
    import re
    from pathlib import Path

    out = first_run[0]
    html = re.sub(r"[A-Za-z0-9+/=]{200,}", "", (out / "report.html").read_text())  # base64 images can spell anything
    for secret in (str(tiny_model_dir), str(Path(stsb_dir).resolve()), str(out), str(Path.home()) + "/"):
        assert secret not in html, secret
    assert "&lt;model folder&gt;" in html and "&lt;STS-B folder&gt;" in html


def test_each_stage_line_says_the_memory_in_use(first_run):
    import re

    from bertnpu.memory import peak_rss_bytes

    _, _, lines = first_run
    done = [line for line in lines if ": done in " in line]
    assert len(done) == 8
    for line in done:
        now, peak = map(float, re.search(r"memory (\d+\.\d\d) GB in use, peak (\d+\.\d\d) GB$", line).groups())
        assert 0 < now <= peak <= peak_rss_bytes() / 1e9 + 0.005  # the process's peak only grows


def test_run_target_device_goes_into_the_compiled_recipe_and_changes_no_number(first_run, tiny_model_dir, stsb_dir, tmp_path):
    """`bertnpu run --target-device`: the bundle's recipe and commands carry it (qbcompiler 1.3 needs one); the simulation does not
    depend on it, so the evaluation is the same."""
    import shutil

    out0, summary0, _ = first_run
    out = tmp_path / "out"
    shutil.copytree(out0, out)
    summary = run_pipeline(RunConfig.quick(model=str(tiny_model_dir), stsb_dir=str(stsb_dir), out=str(out),
                                      target_device="regulus-rb"), log=lambda line: None)
    assert Recipe.load(out / "compile_bundle" / "recipe.json").target_device == "regulus-rb"
    readme = (out / "compile_bundle" / "README.md").read_text()
    assert "Target device: `regulus-rb`" in readme and "DEVICE" not in readme.replace("Target device", "")
    assert summary["evaluation"]["planned"]["spearman"] == summary0["evaluation"]["planned"]["spearman"]
    assert "compile" not in summary["reused_stages"]
