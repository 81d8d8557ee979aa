"""The run report: one section per stage from summary entries, every PNG a stage listed embedded once."""

import base64

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.ui.run_report import SECTIONS, figure_files, run_report

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
        "evaluation": {"fp32": {"spearman": 0.8, "pearson": 0.7, "cosine_mean": 1.0, "recall@10": 1.0},
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
