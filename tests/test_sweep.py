import csv
import json
import re

import numpy as np
import pytest
from scipy.stats import spearmanr

import bertnpu.tune.sweep as sweep_mod
from bertnpu.cli import main
from bertnpu.errors import BertnpuError
from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.simulate import simulate
from bertnpu.quant.thresholds import clip_thresholds, clipped_count
from bertnpu.tune.evaluate import evaluate_sts, unique_sentences
from bertnpu.ui.range_plots import plot_sweep_heatmap
from bertnpu.tune.sweep import (best_config, config_grid, evaluation_count, proxy_sample, sweep, wide_grid,
                                write_sweep_table)

DEFAULT_GRID = config_grid(QuantConfig(), methods=(0, 1))  # the 24 cells `bertnpu run` sweeps


@pytest.fixture(scope="module")
def calib(tiny_calib):
    return tiny_calib


@pytest.fixture
def count_evaluations(monkeypatch):
    """Counts full-split evaluations and proxy evaluations made by the sweep."""
    calls = {"full": 0, "proxy": 0}
    real_full, real_proxy = sweep_mod._full_evaluation, sweep_mod.ProxyScorer.__call__

    def full(*args, **kwargs):
        calls["full"] += 1
        return real_full(*args, **kwargs)

    def proxy(self, sim):
        calls["proxy"] += 1
        return real_proxy(self, sim)

    monkeypatch.setattr(sweep_mod, "_full_evaluation", full)
    monkeypatch.setattr(sweep_mod.ProxyScorer, "__call__", proxy)
    return calls


def test_config_grid():
    grid = config_grid(QuantConfig(), [0.99, 1.0], [0.01, 0.1], modes=[0, 1, 2], methods=[0, 1])
    assert len(grid) == 2 * (1 + 4 + 1)
    assert QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.1) in grid
    assert len(DEFAULT_GRID) == 24
    assert {c.output for c in config_grid(QuantConfig(), [0.99], [0.1], outputs=(0, 1))} == {0, 1}


def test_wide_grid_covers_methods_outputs_and_modes_with_distinct_clipped_fractions():
    grid = wide_grid()
    assert len(grid) == len(set(grid)) == 48
    assert {(c.method, c.output, c.mode) for c in grid} == {(m, o, d) for m in range(4) for o in (0, 1) for d in (0, 1, 2)}
    fractions = sorted({c.topk_ratio * (1 - c.percentile) for c in grid if c.mode == 1})
    assert len(fractions) == 4 and fractions[0] == pytest.approx(1e-6) and fractions[-1] == pytest.approx(1e-3)
    # each cell clips a different number of values on a site of a million values
    assert len({clipped_count(10**6, c.percentile, c.topk_ratio) for c in grid if c.mode == 1}) == 4


def test_equivalent_cells_share_one_evaluation(tiny_model, tiny_stats, stsb_validation, count_evaluations):
    pairs = stsb_validation.subset(40)
    rows = sweep(tiny_model, tiny_stats, pairs, DEFAULT_GRID, strategy="exhaustive", progress=False)
    assert len(rows) == 24
    # independent count of distinct range sets: compare every site's clip range (same method = same plan kind)
    distinct = {(c.method, tuple(sorted(clip_thresholds(tiny_stats, c).items()))) for c in DEFAULT_GRID}
    counts = evaluation_count(rows)
    assert count_evaluations["full"] == counts["full"] == counts["distinct"] == len(distinct) < 24
    assert count_evaluations["proxy"] == 0
    by_label = {c.label(): (c, r) for c, r in zip(DEFAULT_GRID, rows)}
    sharing = [(c, r) for c, r in zip(DEFAULT_GRID, rows) if r["shares_with"] is not None]
    assert sharing, "p = 1 cells clip nothing: they must share"
    for c, r in sharing:
        first, first_row = by_label[r["shares_with"]]
        assert clip_thresholds(tiny_stats, c) == clip_thresholds(tiny_stats, first)
        assert r["spearman"] == first_row["spearman"] and r["range_key"] == first_row["range_key"]
    # a shared value is the value its own evaluation would give
    c, r = sharing[-1]
    assert evaluate_sts(simulate(tiny_model, tiny_stats, c).encoder_for(), pairs)["spearman"] == pytest.approx(r["spearman"], abs=1e-12)
    p1 = [r for c, r in zip(DEFAULT_GRID, rows) if c.percentile == 1.0 and c.method == 0]
    assert len({r["range_key"] for r in p1}) == 1


def test_fast_sweep_ranks_by_proxy_and_confirms_the_best(tiny_model, tiny_stats, stsb_validation, count_evaluations):
    pairs = stsb_validation.subset(60)
    rows = sweep(tiny_model, tiny_stats, pairs, DEFAULT_GRID, strategy="fast", confirm=2, proxy_sentences=40, progress=False)
    counts = evaluation_count(rows)
    assert count_evaluations == {"proxy": counts["distinct"], "full": 2} and counts["full"] == 2
    leaders = {r["range_key"]: r for r in rows if r["shares_with"] is None}
    ranked = sorted(leaders.values(), key=lambda r: -r["proxy_cosine"])
    assert [r["proxy_rank"] for r in ranked] == list(range(1, len(ranked) + 1))
    assert {r["range_key"] for r in ranked[:2]} == {r["range_key"] for r in rows if r["confirmed"]}
    assert all((r["spearman"] is None) != r["confirmed"] for r in rows)
    # the proxy, recomputed independently: mean cosine of FP32 and simulated embeddings of the sample
    sentences = unique_sentences(proxy_sample(pairs, 40))[0]
    assert len(sentences) <= 40
    cfg, row = next((c, r) for c, r in zip(DEFAULT_GRID, rows) if r["confirmed"])
    a = SentenceEncoder(tiny_model, progress=False)(sentences).astype(np.float64)
    b = simulate(tiny_model, tiny_stats, cfg).encoder_for()(sentences).astype(np.float64)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert row["proxy_cosine"] == pytest.approx(cos.mean(), abs=1e-9)
    assert row["spearman"] == pytest.approx(evaluate_sts(simulate(tiny_model, tiny_stats, cfg).encoder_for(), pairs)["spearman"], abs=1e-12)
    # confirming every distinct set gives the exhaustive sweep's values and recommendation
    everything = sweep(tiny_model, tiny_stats, pairs, DEFAULT_GRID, strategy="fast", confirm=counts["distinct"], proxy_sentences=40, progress=False)
    exhaustive = sweep(tiny_model, tiny_stats, pairs, DEFAULT_GRID, strategy="exhaustive", progress=False)
    assert [r["spearman"] for r in everything] == [r["spearman"] for r in exhaustive]
    assert best_config(everything) == best_config(exhaustive)


def test_sweep_caches_and_resumes(tiny_model, tiny_stats, stsb_validation, tmp_path, count_evaluations):
    pairs = stsb_validation.subset(60)
    configs = config_grid(QuantConfig(method=0), [0.99, 1.0], [0.1])
    cache = tmp_path / "cache.jsonl"
    first = sweep(tiny_model, tiny_stats, pairs, configs[:1], cache=cache, progress=False, strategy="exhaustive")
    with open(cache, "a") as fh:
        fh.write('{"key": "cut-by-an-inter')  # an interrupted write
    rows = sweep(tiny_model, tiny_stats, pairs, configs, cache=cache, progress=False, strategy="exhaustive")
    assert count_evaluations["full"] == 2  # the first run's one, then only the config not in the cache
    relative = ("diff_to_best", "diff_to_best_ci", "diff_to_best_ci_lo", "diff_to_best_ci_hi", "tied_with_best", "recommended")  # depend on the other rows
    assert {k: v for k, v in rows[0].items() if k not in relative} == {k: v for k, v in first[0].items() if k not in relative}
    assert {"spearman", "pearson", "mean_sqnr_db"} <= set(rows[1]) and rows[1]["percentile"] == 1.0
    fast = sweep(tiny_model, tiny_stats, pairs, configs, cache=cache, progress=False, confirm=2, proxy_sentences=30)
    assert count_evaluations["full"] == 2 and count_evaluations["proxy"] == 2  # full results came from the cache
    assert [r["spearman"] for r in fast] == [r["spearman"] for r in rows]
    assert [r["diff_to_best_ci"] for r in fast] == [r["diff_to_best_ci"] for r in rows]  # intervals from the cached pair cosines
    # a cache line from before the intervals (no pair cosines) is scored again
    lines = [json.loads(line) for line in cache.read_text().splitlines() if line.startswith('{"') and line.endswith("}")]
    cache.write_text("".join(json.dumps({k: v for k, v in row.items() if k != "pair_cosines"}) + "\n" for row in lines))
    again = sweep(tiny_model, tiny_stats, pairs, configs, cache=cache, progress=False, strategy="exhaustive")
    assert count_evaluations["full"] == 4 and [r["spearman_ci"] for r in again] == [r["spearman_ci"] for r in rows]


def test_tie_marks_are_paired_bootstrap_differences_and_the_simplest_tied_cell_is_recommended():
    from bertnpu.tune.bootstrap import PairedBootstrap
    from bertnpu.tune.sweep import knobs_from_default, recommend_index, tie_marks

    rng = np.random.default_rng(0)
    gold = rng.uniform(0, 5, 300)
    base = gold + rng.normal(0, 1.0, 300)
    cos = {"a": base, "b": base + rng.normal(0, 0.05, 300), "c": gold + rng.normal(0, 3.0, 300)}
    rho = {k: spearmanr(v, gold).statistic for k, v in cos.items()}
    best, marks = tie_marks(cos, rho, gold)
    assert best == max(rho, key=rho.get)
    boot = PairedBootstrap(gold)
    for k in cos:
        want = [0.0, 0.0] if k == best else boot.interval(boot.samples(cos[k]) - boot.samples(cos[best]))
        assert marks[k]["diff_to_best_ci"] == pytest.approx(want, abs=1e-12)
        assert marks[k]["tied_with_best"] == (want[0] <= 0 <= want[1])
    assert marks["a"]["tied_with_best"] and marks["b"]["tied_with_best"] and not marks["c"]["tied_with_best"]  # near-copies tie; noise does not
    # knobs counted from the tutorial's config; percentile/topk only under MaxPercentile
    assert knobs_from_default(QuantConfig()) == 0 and knobs_from_default(QuantConfig(method=0, percentile=1.0)) == 2
    assert knobs_from_default(QuantConfig(mode=2, percentile=0.5)) == 1
    rows = [{"spearman": 0.80, "tied_with_best": True, "knobs_from_default": 2}, {"spearman": 0.79, "tied_with_best": True, "knobs_from_default": 1},
            {"spearman": 0.78, "tied_with_best": True, "knobs_from_default": 1}, {"spearman": 0.70, "tied_with_best": False, "knobs_from_default": 0}]
    assert recommend_index(rows) == 1  # fewest knobs among the tied, then the higher Spearman


def test_bad_sweep_arguments(tiny_model, tiny_stats, stsb_validation):
    pairs = stsb_validation.subset(10)
    with pytest.raises(BertnpuError, match="strategy 'quick'"):
        sweep(tiny_model, tiny_stats, pairs, DEFAULT_GRID[:1], strategy="quick")
    with pytest.raises(BertnpuError, match="confirm=0"):
        sweep(tiny_model, tiny_stats, pairs, DEFAULT_GRID[:1], confirm=0)
    with pytest.raises(BertnpuError, match="proxy 'loss'"):
        sweep(tiny_model, tiny_stats, pairs, DEFAULT_GRID[:1], proxy="loss")


def test_tables_heatmap_and_recommendation(tiny_model, tiny_stats, stsb_validation, stsb_test, tmp_path):
    rows = sweep(tiny_model, tiny_stats, stsb_validation.subset(50), config_grid(QuantConfig(method=0), [0.99, 1.0], [0.01, 0.5]),
                 progress=False, strategy="exhaustive")
    csv_path, json_path = write_sweep_table(rows, tmp_path)
    table = list(csv.DictReader(open(csv_path)))
    assert len(table) == 4 and float(table[0]["spearman"]) == pytest.approx(rows[0]["spearman"])
    assert {"shares_with", "confirmed", "proxy_cosine"} <= set(table[0])
    assert json.loads(json_path.read_text())[3]["topk_ratio"] == 0.5
    chosen = best_config(rows)
    rec = next(r for r in rows if r["percentile"] == chosen.percentile and r["topk_ratio"] == chosen.topk_ratio)
    tied = [r for r in rows if r["tied_with_best"]]
    assert rec["recommended"] and sum(r["recommended"] for r in rows) == 1 and rec["tied_with_best"]  # the simplest tied cell
    assert rec["knobs_from_default"] == min(r["knobs_from_default"] for r in tied)
    assert max(r["spearman"] for r in rows) in [r["spearman"] for r in tied]
    assert {"spearman_ci_lo", "diff_to_best_ci_hi", "tied_with_best", "recommended"} <= set(table[0])
    fig = plot_sweep_heatmap(rows, chosen.to_dict())
    grid = fig.axes[0].images[0].get_array()  # one method/output row, the four percentile x topk cells as columns
    assert grid.shape == (1, 4) and sorted(grid[0].tolist()) == pytest.approx(sorted(r["spearman"] for r in rows))
    assert len([t for t in fig.axes[0].texts if (t.get_gid() or "").startswith("tied")]) == len(tied)


@pytest.mark.slow
def test_fast_sweep_agrees_with_exhaustive_on_the_default_model(default_model, stsb_validation):
    """The default model's 24-cell grid: the fast sweep recommends what the exhaustive one does."""
    from bertnpu.data.calibration import CalibrationSet, CalibrationSpec, embed_sentences, select_samples
    from bertnpu.quant.stats import collect_activation_stats

    sentences, _ = select_samples(stsb_validation, CalibrationSpec(count=256), None)
    stats = collect_activation_stats(default_model, CalibrationSet([], embed_sentences(default_model, sentences)), progress=False)
    fast = sweep(default_model, stats, stsb_validation, DEFAULT_GRID, progress=False)
    exhaustive = sweep(default_model, stats, stsb_validation, DEFAULT_GRID, strategy="exhaustive", progress=False)
    # the fast sweep's recommendation is statistically tied with the exhaustive sweep's best (the exhaustive one may pick a
    # simpler tied cell the fast sweep never confirmed)
    pick = best_config(fast)
    assert next(e for e in exhaustive if QuantConfig.from_dict({k: e[k] for k in pick.to_dict()}) == pick)["tied_with_best"]
    leaders = [(f, e) for f, e in zip(fast, exhaustive) if f["shares_with"] is None]
    rho = spearmanr([f["proxy_cosine"] for f, _ in leaders], [e["spearman"] for _, e in leaders]).statistic
    assert rho > 0.5, rho


def test_cli_simulate_and_sweep(tiny_model_dir, calib, stsb_dir, tmp_path, capsys):
    cfg = QuantConfig(method=0, percentile=0.99).save(tmp_path / "cfg.json")
    calib_dir = str(calib.files[0].parent)
    assert main(["simulate", "--model", str(tiny_model_dir), "--calib", calib_dir, "--stsb-dir", str(stsb_dir),
                 "--config", str(cfg), "--limit", "40", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"spearman", "pearson", "fp32_spearman", "config"} <= set(result) and result["config"]["percentile"] == 0.99
    out = tmp_path / "sweep"
    assert main(["sweep", "--model", str(tiny_model_dir), "--calib", calib_dir, "--stsb-dir", str(stsb_dir), "--out", str(out),
                 "--percentiles", "0.99,1.0", "--topk-ratios", "0.1", "--outputs", "0,1", "--strategy", "exhaustive", "--limit", "30", "--test"]) == 0
    assert {p.name for p in out.iterdir()} >= {"sweep.csv", "sweep.json", "sweep_heatmap.png", "recommended_config.json", "recommendation.json", "sweep_cache.jsonl"}
    table = list(csv.DictReader(open(out / "sweep.csv")))
    assert [(int(r["output"]), float(r["percentile"])) for r in table] == [(0, 0.99), (0, 1.0), (1, 0.99), (1, 1.0)]
    assert all(r["confirmed"] == "True" and r["spearman"] for r in table)  # exhaustive: every cell has its full-split Spearman
    assert main(["sweep", "--model", str(tiny_model_dir), "--out", str(out), "--strategy", "quick"]) == 2
    assert "invalid choice: 'quick'" in capsys.readouterr().err
    assert main(["sweep", "--model", str(tiny_model_dir), "--out", str(out), "--percentiles", "x"]) == 2
    assert "comma-separated numbers" in capsys.readouterr().err


def test_sweep_stage_searches_the_wide_space_and_rejects_unknown_values(tiny_model, tiny_stats, stsb_validation):
    from bertnpu.run_config import RunConfig
    from bertnpu.quant.recipe import Recipe
    from bertnpu.stages.sweep import SweepInputs, grid

    base = Recipe(profile="all-int8")
    recipes = grid(SweepInputs(tiny_model, tiny_stats, stsb_validation, base, search="wide"))
    assert [r.calibration for r in recipes] == wide_grid(base.calibration) and {r.profile for r in recipes} == {"all-int8"}
    full, quick = RunConfig.full(), RunConfig.quick()
    assert (full.search, full.methods, full.outputs, full.strategy) == ("wide", (0, 1, 2, 3), (0, 1), "fast")
    assert len(grid(SweepInputs(tiny_model, tiny_stats, stsb_validation, search=quick.search, percentiles=quick.percentiles,
                                topk_ratios=quick.topk_ratios, methods=quick.methods, outputs=quick.outputs))) == 4  # 2 percentiles x 1 topk x 2 methods
    with pytest.raises(BertnpuError, match="search='huge'"):
        SweepInputs(tiny_model, tiny_stats, stsb_validation, search="huge")
    with pytest.raises(BertnpuError, match="strategy='slow'"):
        SweepInputs(tiny_model, tiny_stats, stsb_validation, strategy="slow")


def test_wide_search_refuses_grid_cells_it_would_ignore(tiny_model, tiny_stats, stsb_validation, tiny_model_dir, tmp_path, capsys):
    """--wide scores its own cells: --percentiles (or --topk-ratios, --modes) is refused in one sentence, not dropped silently."""
    from bertnpu.cli import main
    from bertnpu.stages.sweep import SweepInputs
    from bertnpu.tune.sweep import PERCENTILES, TOPK_RATIOS

    assert main(["sweep", "--model", str(tiny_model_dir), "--out", str(tmp_path / "s"), "--wide", "--percentiles", "0.99"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line]
    assert err == ["bertnpu: error: --percentiles would be ignored: the wide search scores its own cells (Max, four MaxPercentile "
                   "percentile x topk_ratio cells, Histogram); drop --percentiles or drop --wide."]
    with pytest.raises(BertnpuError, match=re.escape("SweepInputs.topk_ratios=(0.1,) would be ignored: the wide search")):
        SweepInputs(tiny_model, tiny_stats, stsb_validation, search="wide", topk_ratios=(0.1,))
    grid = SweepInputs(tiny_model, tiny_stats, stsb_validation)
    assert (grid.percentiles, grid.topk_ratios, grid.modes) == (PERCENTILES, TOPK_RATIOS, (1,))  # the grid's defaults, unchanged


@pytest.mark.parametrize("search, strategy, modes, ignored", [
    ("grid", "fast", None, {}),
    ("grid", "fast", (0, 1, 2), {}),
    ("grid", "fast", (0, 2), {"percentiles": "no mode 1", "topk_ratios": "no mode 1"}),
    ("wide", "fast", None, {"percentiles": "wide", "topk_ratios": "wide", "modes": "wide"}),
    ("grid", "exhaustive", None, {"confirm": "exhaustive", "proxy_sentences": "exhaustive"}),
    ("wide", "exhaustive", (1,), {"percentiles": "wide", "topk_ratios": "wide", "modes": "wide", "confirm": "exhaustive",
                                  "proxy_sentences": "exhaustive"}),
])
def test_what_each_search_and_strategy_ignores(search, strategy, modes, ignored):
    from bertnpu.tune.sweep import ignored_knobs, read_knobs

    assert ignored_knobs(search, strategy, modes) == ignored
    knobs = {"percentiles": (0.99,), "topk_ratios": (0.1,), "modes": modes, "methods": (0,), "outputs": (0,), "confirm": 2, "proxy_sentences": 64}
    assert set(read_knobs(search, strategy, knobs)) == {"search", "strategy"} | set(knobs) - set(ignored)


def test_ignored_knobs_really_are_unread():
    """What ignored_knobs says matches the grids: the wide grid is the same whatever the cells, and without mode 1 the grid's
    cells read no percentile or topk_ratio."""
    without_mode_1 = config_grid(QuantConfig(), [0.99, 1.0], [0.1, 0.01], modes=[0, 2])
    assert [(c.mode, c.percentile, c.topk_ratio) for c in without_mode_1] == [(0, 0.999, 0.01), (2, 0.999, 0.01)]  # the base's, unread


@pytest.mark.parametrize("argv, says", [
    (["--modes", "0,2", "--percentiles", "0.99"], "--percentiles would be ignored: only MaxPercentile (mode 1) reads percentiles and topk "
                                                  "ratios, and the grid's modes leave it out; drop --percentiles or add 1 to --modes."),
    (["--percentiles", "0.99,1.5"], "--percentiles holds 1.5, which lies outside (0, 1]; give e.g. 0.99, 0.999, 1.0."),
    (["--topk-ratios", "0"], "--topk-ratios holds 0.0, which lies outside (0, 1]; give e.g. 0.001, 0.01, 0.1."),
    (["--modes", "3"], "--modes holds 3, which is not one of 0, 1, 2; give e.g. 0, 1, 2."),
    (["--modes", "nan"], "--modes 'nan' holds nan, not a whole number; write e.g. 0,1."),
    (["--methods", "0,4"], "--methods holds 4, which is not one of 0, 1, 2, 3; give e.g. 0, 1."),
    (["--outputs", "2"], "--outputs holds 2, which is not one of 0, 1 (output 2, sigmoid-based, is not modelled by the simulator); give e.g. 0, 1."),
    (["--wide", "--modes", "1"], "--modes would be ignored: the wide search scores its own cells (Max, four MaxPercentile percentile x "
                                 "topk_ratio cells, Histogram); drop --modes or drop --wide."),
])
def test_sweep_options_are_checked_before_the_model_is_loaded(argv, says, tmp_path, capsys):
    """A bad grid value or an option the search ignores: one sentence, and no model is loaded (this one does not exist)."""
    assert main(["sweep", "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "s"), *argv]) == 2
    assert [line for line in capsys.readouterr().err.splitlines() if line] == [f"bertnpu: error: {says}"]


def test_sweep_inputs_refuse_what_the_grid_or_strategy_would_ignore(tiny_model, tiny_stats, stsb_validation):
    from bertnpu.stages.sweep import SweepInputs, grid

    with pytest.raises(BertnpuError, match=re.escape("SweepInputs.percentiles=(0.99,) would be ignored: only MaxPercentile (mode 1) reads "
                                                     "percentiles and topk ratios, and the grid's modes leave it out; leave "
                                                     "SweepInputs.percentiles out or add 1 to SweepInputs.modes.")):
        SweepInputs(tiny_model, tiny_stats, stsb_validation, modes=(0, 2), percentiles=(0.99,))
    with pytest.raises(BertnpuError, match=re.escape("SweepInputs.confirm=2 would be ignored: the exhaustive strategy")):
        SweepInputs(tiny_model, tiny_stats, stsb_validation, strategy="exhaustive", confirm=2)
    with pytest.raises(BertnpuError, match=re.escape("SweepInputs.proxy_sentences=0 is invalid")):
        SweepInputs(tiny_model, tiny_stats, stsb_validation, proxy_sentences=0)
    exhaustive = SweepInputs(tiny_model, tiny_stats, stsb_validation, strategy="exhaustive")
    assert (exhaustive.confirm, exhaustive.proxy_sentences) == (None, None)  # unread, so unset
    plain = SweepInputs(tiny_model, tiny_stats, stsb_validation, modes=(0, 2))
    assert (plain.percentiles, plain.topk_ratios) == (None, None)
    assert [r.calibration.mode for r in grid(plain)] == [0, 2]


def test_a_base_config_the_search_replaces_is_one_note(tiny_model_dir, tmp_path, capsys):
    from bertnpu.tune.sweep import replaced_base_knobs

    assert replaced_base_knobs(QuantConfig(), "wide") == []  # the tutorial's config: nothing the user set
    assert replaced_base_knobs(QuantConfig(method=0, mode=0, bits=6), "grid") == ["mode"]
    assert replaced_base_knobs(QuantConfig(method=0, output=1), "grid", methods=(0, 1)) == ["method"]
    assert replaced_base_knobs(QuantConfig(method=0, output=1, topk_ratio=0.1), "wide") == ["method", "output", "topk_ratio"]
    cfg = QuantConfig(percentile=0.99).save(tmp_path / "cfg.json")
    assert main(["sweep", "--model", str(tmp_path / "no-model"), "--out", str(tmp_path / "s"), "--recipe", str(cfg)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("bertnpu: note: --recipe's percentile=0.99 is replaced by every cell of the grid search (its bits, profile, "
                      "16-bit sites and transformations are kept).")
