"""The run report: the headline card first, then the comparison table and one section per stage from summary entries,
every PNG a stage listed embedded once."""

import base64
import json
import re
from html.parser import HTMLParser

import pytest

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.ui.run_report import DATA_FILE, SECTIONS, figure_files, run_report, write_run_report

PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 16


def _summary():
    cfg = QuantConfig().to_dict()
    return {
        "analysis": {"summary": {"model": "m", "hidden_size": 8, "layers": 2, "heads": 2, "pooling": "mean"},
                     "blocks": [{"block": "embeddings", "placement": "CPU"}], "files": ["analysis/ops.csv", "figures/placement.png"]},
        "calibration": {"samples": 4, "tokens": 40, "evaluation_split": "validation", "eval_outside_fraction": 0.0125,
                        "outlier_channels": [], "files": ["calib", "figures/c.png"]},
        "stats": {"outlier_sites": [{"site": "s", "max": 3.0}], "files": ["stats.npz"]},
        "sweep": {"rows": [{**cfg, "recipe": {"nested": 1}, "spearman": 0.5, "pearson": 0.4, "mean_sqnr_db": 9.0}], "files": ["figures/sweep_heatmap.png"]},
        "evaluation": {"split": "test", "pairs": 2, "fp32": {"spearman": 0.8, "pearson": 0.7, "cosine_mean": 1.0, "recall@10": 1.0},
                       "tutorial_default": {"config": cfg, "recipe": Recipe().to_dict(), "spearman": 0.6, "pearson": 0.5, "cosine_mean": 0.61,
                                            "recall@10": 0.25},
                       "recommended": {"config": QuantConfig(percentile=0.99).to_dict(), "recipe": Recipe(QuantConfig(percentile=0.99)).to_dict(),
                                       "spearman": 0.75, "pearson": 0.7, "cosine_mean": 0.97, "recall@10": 0.81},
                       "planned": {"config": cfg, "recipe": Recipe(activation_16bits=("pooler.out",)).to_dict(), "spearman": 0.79,
                                   "pearson": 0.74, "cosine_mean": 0.99, "recall@10": 0.9}, "fidelity": None},
        "plan": {"profile": "aries", "brackets": {"planned": {"aries": 0.79, "all-int8": 0.7, "optimistic": 0.8}}, "fp32_spearman": 0.8,
                 "best_int8_only": {"recipe": "method 1", "spearman": 0.76}, "spearman": 0.79, "activation_16bits": ["pooler.out"],
                 "pareto": [{"n_sites": 0, "added": None, "validation_spearman": 0.7, "traffic_16bit": 0.0}], "within_tolerance": True,
                 "tolerance": 0.005, "cosine_to_fp32": 0.99, "recipe": {}, "files": ["figures/plan_pareto.png"]},
        "compile": {"mxq": None, "bundle": "compile_bundle", "note": "no qbcompiler here"},
        "inputs": {"quick": True}, "versions": {}, "reused_stages": [],
    }


def _with_figures(folder):
    """The summary, with every PNG it lists written under ``folder``."""
    s = _summary()
    for entry in s.values():
        for f in figure_files(entry) if isinstance(entry, dict) else ():
            (folder / f).parent.mkdir(parents=True, exist_ok=True)
            (folder / f).write_bytes(PNG)
    return s


def test_sections_and_embedded_figures(tmp_path):
    s = _with_figures(tmp_path)
    html = run_report(s, tmp_path)
    assert html.count("<section>") == len(SECTIONS)  # one per stage section, each once
    assert html.count("data:image/png;base64," + base64.b64encode(PNG).decode()) == 4  # every listed PNG, none twice
    assert "1.2500% of validation embedding values" in html  # 0.0125 as a percentage
    assert "MaxPercentile p=0.99 topk=0.01" in html and "no qbcompiler here" in html
    assert "nested" not in html  # the sweep table shows the knobs, not the nested recipe
    assert figure_files(s["calibration"]) == ["figures/c.png"]
    assert "Not tried at 16 bits" not in html  # the summary lists no left-out sites
    s["plan"]["not_tried"] = ["layer.0.attention.layernorm.out", "layer.0.ffn.layernorm.out"]
    assert "Not tried at 16 bits: the 2 LayerNorm outputs" in run_report(s, tmp_path)
    # the compile section names the recipe the bundle holds; a measure never taken is an empty cell, not "None"
    s["compile"]["recipe"] = Recipe(activation_16bits=("pooler.out",)).to_dict()
    s["sweep"]["rows"][0]["spearman"] = None
    html = run_report(s, tmp_path)
    assert f"Recipe in the bundle: {Recipe(activation_16bits=('pooler.out',)).label()}." in html
    assert "None" not in html and "<td></td>" in html


def test_evaluation_section_is_notebook_04s_table(tmp_path):
    """The report's test-split table is the comparison table of notebook 04: every row, every column, same numbers."""
    import re

    from bertnpu.ui.comparison import COLUMNS, comparison_rows

    html = run_report(_with_figures(tmp_path), tmp_path)
    section = html[html.index("Predicted accuracy on STS-B test"):]
    section = section[:section.index("</section>")]
    head = re.findall(r"<th>(.*?)</th>", section)
    assert tuple(head) == COLUMNS
    cells = re.findall(r"<tr>(.*?)</tr>", section)[1:]
    rows = [re.findall(r"<td>(.*?)</td>", c) for c in cells]
    assert [r[0] for r in rows] == ["FP32", "tutorial config", "recommended", "planned recipe"]
    assert rows[3][1] == Recipe(activation_16bits=("pooler.out",)).label()
    num = [head.index(c) for c in ("spearman", "pearson", "cosine", "recall@10")]  # the interval columns are text (empty without intervals)
    assert [[float(r[i]) for i in num] for r in rows] == [[0.8, 0.7, 1.0, 1.0], [0.6, 0.5, 0.61, 0.25], [0.75, 0.7, 0.97, 0.81], [0.79, 0.74, 0.99, 0.9]]
    assert len(comparison_rows(_summary()["evaluation"])) == len(rows)


class _Sections(HTMLParser):
    """The page's sections as {"heading", "rows": [(th text, td text)], "text"}, reading only tags and text."""

    def __init__(self):
        super().__init__()
        self.sections, self._cell, self._row = [], None, []

    def handle_starttag(self, tag, attrs):
        if tag == "section":
            self.sections.append({"heading": "", "rows": [], "text": ""})
        elif tag in ("h2", "th", "td"):
            self._cell = [tag, ""]
        elif tag == "tr":
            self._row = []

    def handle_endtag(self, tag):
        if self._cell and tag == self._cell[0]:
            kind, text = self._cell
            self._cell = None
            if kind == "h2":
                self.sections[-1]["heading"] = text.strip()
            else:
                self._row.append(" ".join(text.split()))
        elif tag == "tr" and self.sections:
            self.sections[-1]["rows"].append(tuple(self._row))

    def handle_data(self, data):
        if self._cell:
            self._cell[1] += data
        if self.sections:
            self.sections[-1]["text"] += data


def _read(page: str) -> list[dict]:
    parser = _Sections()
    parser.feed(page)
    return parser.sections


def _headline(page: str) -> dict[str, str]:
    first = _read(page)[0]
    assert first["heading"] == "The answer"
    return {re.split(r"(?=STS-B test|simulated INT8)", label)[0].strip(): value for label, value in first["rows"]}  # labels without their small print


def _number(text: str) -> float:
    return float(re.match(r"[-+]?\d+\.\d+", text).group())


def test_headline_card_comes_first_with_the_summarys_numbers(tmp_path):
    """Read back from the page: the first section is the card, its numbers are summary.json's (to 4 decimals)."""
    s = _with_figures(tmp_path)
    card = _headline(run_report(s, tmp_path))
    ev = s["evaluation"]
    assert card["Model"].startswith("m: hidden 8, 2 layers")
    assert _number(card["FP32 Spearman"]) == round(ev["fp32"]["spearman"], 4) == 0.8
    assert _number(card["Planned recipe Spearman"]) == round(ev["planned"]["spearman"], 4) == 0.79
    assert _number(card["Difference to FP32"]) == pytest.approx(0.79 - 0.8, abs=5e-5)
    assert _number(card["Mean cosine to FP32 embeddings"]) == round(ev["planned"]["cosine_mean"], 4)
    assert "[" not in card["FP32 Spearman"] and "Intervals" not in card  # this summary has no intervals: none shown
    assert "1 activation(s) at 16 bits: pooler.out" in card["Recipe"] and "profile aries" in card["Recipe"]
    assert "docker run" in card["Next"] and "bertnpu eval --mxq m.mxq --weights weight_dict.pth --calib calib" in card["Next"]
    assert "compile_mxq.py --target-device DEVICE" in card["Next"]  # the recipe names no target device: 1.3 needs one, the card asks for it
    assert card["Files"].startswith("compile_bundle/ beside this report")
    assert card["Targets of the plan"] == "within 0.005 of FP32 on validation: met"
    assert card["Quick run"].startswith("a smoke run")
    # the comparison table comes second, then the stages in pipeline order
    headings = [x["heading"] for x in _read(run_report(s, tmp_path))]
    assert headings[1].startswith("Predicted accuracy on STS-B test") and headings[2] == "Model and placement"
    assert headings.index("Sweep on validation") < headings.index("Plan: the cheapest recipe within tolerance") < headings.index("Compile")


def test_headline_shows_the_intervals_when_the_summary_has_them(tmp_path):
    s = _with_figures(tmp_path)
    ev = s["evaluation"]
    ev["fp32"]["spearman_ci"] = [0.7812, 0.8187]
    ev["planned"].update(spearman_ci=[0.7694, 0.8123], diff_to_fp32=-0.01004, diff_to_fp32_ci=[-0.0203, 0.0011])
    card = _headline(run_report(s, tmp_path))
    assert card["FP32 Spearman"] == "0.8000 [0.78, 0.82]"
    assert card["Planned recipe Spearman"] == "0.7900 [0.77, 0.81]"
    assert card["Difference to FP32"] == "-0.0100 [-0.020, +0.001]"  # the paired difference's own interval, not one derived from the two
    assert "bootstrap" in card["Intervals"]


def test_no_plan_run_headline_and_worst_pairs_name_the_recommended_recipe(tmp_path):
    s = _with_figures(tmp_path)
    s["plan"] = {"skipped": "not run (--no-plan)"}
    s["evaluation"]["planned"] = None
    s["evaluation"]["fidelity"] = {"entry": "recommended", "cosine_mean": 0.97, "cosine_min": 0.5, "recall@10": 0.81,
                                   "worst_pairs": [{"sentence1": "a <b>", "sentence2": "c", "gold": 1.0, "cos_fp32": 0.5, "cos_int8": 0.1}]}
    page = run_report(s, tmp_path)
    card = _headline(page)
    assert _number(card["Recommended recipe (the run skipped the planner, --no-plan: the sweep's INT8-only pick is compiled) Spearman"]) == 0.75
    assert "Targets of the plan" not in card and "Planned recipe Spearman" not in card
    worst = next(x for x in _read(page) if x["heading"].startswith("Where the compiled recipe differs"))
    assert "recommended recipe (the one compiled: the run skipped the planner)" in worst["text"]
    assert ("a <b>", "c", "1.0000", "0.5000", "0.1000") in worst["rows"]  # the sentence as text


def test_worst_pairs_are_the_planned_recipes(tmp_path):
    s = _with_figures(tmp_path)
    s["evaluation"]["fidelity"] = {"entry": "planned", "cosine_mean": 0.99, "cosine_min": 0.9, "recall@10": 0.9, "worst_pairs": [],
                                   "worst_sentences": [{"sentence": "x", "cosine": 0.9}]}
    worst = next(x for x in _read(run_report(s, tmp_path)) if x["heading"].startswith("Where the compiled recipe differs"))
    assert "Of the planned recipe (the one compiled): cosine(FP32, INT8) per sentence, mean 0.9900" in worst["text"]
    # a summary from before the fidelity named its entry was the recommended recipe's: the page says it is not the compiled one
    del s["evaluation"]["fidelity"]["entry"]
    worst = next(x for x in _read(run_report(s, tmp_path)) if x["heading"].startswith("Where the compiled recipe differs"))
    assert "not the planned one that is compiled" in worst["text"]


def test_compiled_mxq_headline_says_how_to_verify_it(tmp_path):
    s = _with_figures(tmp_path)
    s["compile"] = {"mxq": "model.mxq", "bundle": None, "note": None}
    card = _headline(run_report(s, tmp_path))
    assert "bertnpu eval --mxq model.mxq --weights weight_dict.pth --calib calib" in card["Next"] and "docker" not in card["Next"]
    assert card["Files"].startswith("model.mxq beside this report")


def test_raw_json_goes_to_a_linked_file_and_long_tables_fold(tmp_path):
    s = _with_figures(tmp_path)
    s["sweep"]["rows"] *= 3
    data, page = write_run_report(s, tmp_path)
    assert data == tmp_path / DATA_FILE and page == tmp_path / "report.html"
    saved = json.loads(data.read_text())
    assert saved["recipe"] == s["evaluation"]["planned"]["recipe"] and saved["compiled"] == "planned"
    assert saved["inputs"] == s["inputs"] and saved["versions"] == s["versions"]
    html = page.read_text()
    assert f'href="{DATA_FILE}"' in html and "<pre>{" not in html and "schema_version" not in html  # no JSON dump in the page
    sweep = html[html.index("<h2>Sweep on validation"):]
    assert sweep.index("<details>") < sweep.index("<table>") < sweep.index("</details>")  # the 3 rows fold
    assert "3 cells; 3 scored on the whole validation split" in sweep
    assert not list(tmp_path.glob(".bertnpu-tmp-*"))  # both written atomically: no temp left


def test_plan_bracket_shows_interval_and_cosine_and_the_stop_rule(tmp_path):
    """Issue 24: the bracket by what it measures (Spearman with its interval beside the cosine), and the rule that stopped the plan."""
    s = _with_figures(tmp_path)
    s["plan"]["bracket_details"] = {"planned": {p: {"spearman": v, "spearman_ci": [v - 0.02, v + 0.01], "cosine_mean": c}
                                                for p, v, c in (("aries", 0.79, 0.981), ("all-int8", 0.7, 0.975), ("optimistic", 0.8, 0.999))}}
    s["plan"]["stop_rule"], s["plan"]["stop_reason"] = "max_sites", "the site limit was reached before a noise rule stopped it"
    html = run_report(s, tmp_path)
    assert "0.7000 [0.680, 0.710], cosine 0.975" in html and "0.8000 [0.780, 0.810], cosine 0.999" in html
    assert "stopped by rule <code>max_sites</code>: the site limit was reached" in html
    plain = run_report(_with_figures(tmp_path), tmp_path)  # a summary from before the intervals: the bare Spearman, no stop sentence
    assert "cosine 0.9" not in plain and "stopped by rule" not in plain


def test_next_command_is_the_bundles_own_with_the_target_device_to_fill_in(tmp_path):
    """From a new-user trial: the card's docker command is the bundle README's (one function), and without a target device it
    asks for one where qbcompiler 1.3 needs it, instead of a command that stops inside the image."""
    from bertnpu.device.bundle import docker_command
    from bertnpu.ui.report import esc

    s = _with_figures(tmp_path)
    card = run_report(s, tmp_path)
    card = card[:card.index("</section>")]
    planned = Recipe.from_dict(s["evaluation"]["planned"]["recipe"])
    assert esc(docker_command(planned)) in card and "compile_mxq.py --target-device DEVICE" in card
    assert "aries-rb, regulus-ra, regulus-rb, regulus-rb-usb" in card and "1.1+ instead" not in card
    s["evaluation"]["planned"]["recipe"] = planned.with_(target_device="aries-rb").to_dict()
    card = run_report(s, tmp_path)
    card = card[:card.index("</section>")]
    assert "DEVICE" not in card and esc(docker_command(planned.with_(target_device="aries-rb"))) in card


def test_empty_bracket_columns_say_why(tmp_path):
    s = _with_figures(tmp_path)
    s["plan"]["brackets"] = {}
    assert "not computed in this run, e.g. a --quick run" in run_report(s, tmp_path)
    assert "not computed in this run" not in run_report(_with_figures(tmp_path), tmp_path)
