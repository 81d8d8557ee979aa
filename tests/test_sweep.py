import csv
import json

import pytest

import bertnpu.tune.sweep as sweep_mod
from bertnpu.cli import main
from bertnpu.quant.config import QuantConfig
from bertnpu.ui.range_plots import plot_sweep_heatmap
from bertnpu.tune.sweep import best_config, config_grid, recommend, sweep, write_sweep_table


@pytest.fixture(scope="module")
def calib(tiny_calib):
    return tiny_calib


def test_config_grid():
    grid = config_grid(QuantConfig(), [0.99, 1.0], [0.01, 0.1], modes=[0, 1, 2], methods=[0, 1])
    assert len(grid) == 2 * (1 + 4 + 1)
    assert QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.1) in grid


def test_sweep_caches_and_resumes(tiny_model, tiny_stats, stsb_validation, tmp_path, monkeypatch):
    pairs = stsb_validation.subset(60)
    configs = config_grid(QuantConfig(method=0), [0.99, 1.0], [0.1])
    cache = tmp_path / "cache.jsonl"
    first = sweep(tiny_model, tiny_stats, pairs, configs[:1], cache=cache, progress=False)
    with open(cache, "a") as fh:
        fh.write('{"key": "cut-by-an-inter')  # an interrupted write
    calls = []
    real = sweep_mod.evaluate_sts
    monkeypatch.setattr(sweep_mod, "evaluate_sts", lambda enc, p: calls.append(1) or real(enc, p))
    rows = sweep(tiny_model, tiny_stats, pairs, configs, cache=cache, progress=False)
    assert len(calls) == 1  # only the config not in the cache ran
    assert rows[0] == first[0]
    assert {"spearman", "pearson", "mean_sqnr_db"} <= set(rows[1])
    assert rows[1]["percentile"] == 1.0


def test_tables_heatmap_and_recommendation(tiny_model, tiny_stats, stsb_validation, stsb_test, tmp_path):
    rows = sweep(tiny_model, tiny_stats, stsb_validation.subset(50), config_grid(QuantConfig(method=0), [0.99, 1.0], [0.01, 0.5]), progress=False)
    csv_path, json_path = write_sweep_table(rows, tmp_path)
    table = list(csv.DictReader(open(csv_path)))
    assert len(table) == 4 and float(table[0]["spearman"]) == pytest.approx(rows[0]["spearman"])
    assert json.loads(json_path.read_text())[3]["topk_ratio"] == 0.5
    chosen = best_config(rows)
    assert max(r["spearman"] for r in rows) == next(r["spearman"] for r in rows if r["percentile"] == chosen.percentile and r["topk_ratio"] == chosen.topk_ratio)
    fig = plot_sweep_heatmap(rows, chosen.to_dict())
    assert fig.axes[0].images[0].get_array().shape == (2, 2)
    rec = recommend(tiny_model, tiny_stats, rows, stsb_test.subset(40))
    assert rec["config"] == chosen.to_dict() and rec["tutorial_default"]["config"] == QuantConfig().to_dict()
    assert {"spearman", "pearson"} <= set(rec["fp32"]) and rec["split"] == "test"


def test_heatmap_shows_the_chosen_method():
    rows = [{"mode": 1, "method": m, "percentile": p, "topk_ratio": 0.1, "spearman": 0.5 + 0.1 * m + p / 10}
            for m in (0, 1) for p in (0.99, 1.0)]
    fig = plot_sweep_heatmap(rows, {"mode": 1, "method": 1, "percentile": 1.0, "topk_ratio": 0.1})
    grid = fig.axes[0].images[0].get_array()
    assert grid[1, 0] == pytest.approx(0.6 + 0.1)  # method 1's value at percentile 1.0
    assert "method 1" in fig.axes[0].get_title()


def test_cli_simulate_and_sweep(tiny_model_dir, calib, stsb_dir, tmp_path, capsys):
    cfg = QuantConfig(method=0, percentile=0.99).save(tmp_path / "cfg.json")
    calib_dir = str(calib.files[0].parent)
    assert main(["simulate", "--model", str(tiny_model_dir), "--calib", calib_dir, "--stsb-dir", str(stsb_dir),
                 "--config", str(cfg), "--limit", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"spearman", "pearson", "fp32_spearman", "config"} <= set(result) and result["config"]["percentile"] == 0.99
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", str(tiny_model_dir), "--calib", calib_dir, "--stsb-dir", str(stsb_dir), "--out", str(out),
                 "--percentiles", "0.99,1.0", "--topk-ratios", "0.1", "--limit", "30", "--test"]) == 0
    assert {p.name for p in out.iterdir()} >= {"sweep.csv", "sweep.json", "sweep_heatmap.png", "recommended_config.json", "recommendation.json", "sweep_cache.jsonl"}
    assert main(["sweep", "--model", str(tiny_model_dir), "--out", str(out), "--percentiles", "x"]) == 2
    assert "comma-separated numbers" in capsys.readouterr().err
