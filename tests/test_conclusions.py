"""Conclusions are computed from the numbers shown: hand-made inputs, hand-checked sentences."""

import numpy as np

from bertnpu.ui import conclusions as C


def test_simulate_conclusion_separates_ranking_from_embeddings():
    kept = C.simulate_conclusion(0.8200, 0.8180, 0.995, 0.95)
    assert "keeps the STS-B ranking" in kept and "stay close to FP32" in kept
    moved = C.simulate_conclusion(0.8200, 0.8190, 0.40, 0.32)  # the case: Spearman fine, vectors moved
    assert "keeps the STS-B ranking" in moved and "must not be mixed with stored FP32 vectors" in moved and "0.400" in moved
    lost = C.simulate_conclusion(0.8200, 0.7200, 0.90, 0.50)
    assert "loses 0.1000 Spearman (12.2% of FP32)" in lost  # 0.1 / 0.82 = 12.2 %
    assert "loses 0.0092 Spearman and" in C.simulate_conclusion(-0.0379, -0.0471, 0.9999, 0.96)  # no share of a ~0 score


def test_sqnr_conclusion_names_the_worst_role_and_layers():
    sqnr = {"layer.0.ffn.residual": 12.0, "layer.1.ffn.residual": 14.0, "layer.2.ffn.residual": 15.0,
            "layer.0.attention.query.out": 41.0, "layer.1.attention.query.out": 39.0, "pooler.out": float("inf")}
    text = C.sqnr_conclusion(sqnr, worst=3)
    assert "3 of 5 quantized sites are below 30 dB" in text and "layer.0.ffn.residual (12.0 dB)" in text
    assert "ffn.residual of layers 0-2" in text
    assert C.sqnr_conclusion({"a": float("inf")}).startswith("Every site is kept in FP32")


def test_sensitivity_conclusion():
    rows = [{"site": "layer.5.ffn.residual", "only_delta": -0.002, "all_but_delta": -0.010, "recovered": 0.030, "fp32": 0.82, "int8": 0.78},
            {"site": "layer.5.ffn.output.out", "only_delta": -0.020, "all_but_delta": -0.035, "recovered": 0.005, "fp32": 0.82, "int8": 0.78}]
    text = C.sensitivity_conclusion(rows)
    # 0.03 of the 0.04 lost = 75 %
    assert "Keeping layer.5.ffn.residual in FP32 recovers 0.0300 of the 0.0400 Spearman lost (75.00%)" in text
    assert "layer.5.ffn.output.out costs the most (-0.0200)" in text
    small = [dict(r, recovered=0.001, int8=0.819) for r in rows]
    assert "none of these sites needs 16 bits" in C.sensitivity_conclusion(small)
    better = [dict(r, recovered=0.0, int8=0.8245) for r in rows]  # INT8 above FP32 (seen on the tiny model): no "loses only -0.0045"
    assert C.sensitivity_conclusion(better).startswith("The full INT8 model scores 0.0045 above FP32 (noise) and no single site")
    # the default model's case in notebook 4: a real loss, but the analysed sites recover under 0.001 (seen: "costs the most (-0.0000)")
    spread = [dict(r, recovered=0.0005, only_delta=-9e-6, int8=0.80) for r in rows]
    text = C.sensitivity_conclusion(spread)
    assert "loses 0.0200 Spearman" in text and "spread over other sites" in text and "costs the most" not in text


def test_channel_conclusion_names_large_channels_even_below_the_outlier_factor():
    absmax = np.ones(8)
    absmax[3], absmax[6] = 3.5, 2.0  # large, but under 4x the median: not "outliers"
    text = C.channel_conclusion(absmax)
    assert text.startswith("Largest channels (abs-max / median channel): 3 (3.5x), 6 (2.0x)")
    assert "no channel exceeds 4x" in text
    absmax[3] = 10.0
    assert "1 channel(s) exceed 4x" in C.channel_conclusion(absmax)


def test_outlier_and_stability_conclusions():
    rows = [{"site": "layer.2.ffn.output.out", "max_over_p99": 120.0, "worst_channel": 99, "channel_ratio": 40.0},
            {"site": "layer.3.ffn.output.out", "max_over_p99": 80.0, "worst_channel": 99, "channel_ratio": 30.0},
            {"site": "layer.1.attention.scores", "max_over_p99": 5.0, "worst_channel": 2, "channel_ratio": 2.0}]
    text = C.outlier_conclusion(rows)
    assert "layer.2.ffn.output.out" in text and "120x" in text and "channel 99" in text and "2 of the 3 worst sites are ffn.output.out (layers 2-3)" in text
    assert "enough samples" in C.stability_conclusion({"a": 0.01, "b": 0.02})
    text = C.stability_conclusion({"a": 0.01, "b": 0.08, "c": 0.2})
    assert text.startswith("2 of 3 thresholds move more than 5%") and "worst c: 20.0%" in text


def test_noise_verdict_reads_the_interval():
    assert C.noise_verdict(-0.020, [-0.028, -0.013]) == "worse than FP32: -0.020 [-0.028, -0.013]"
    assert C.noise_verdict(-0.004, [-0.011, 0.002]) == "within FP32's noise: -0.004 [-0.011, +0.002]"
    assert C.noise_verdict(0.006, [0.001, 0.012]).startswith("better than FP32: +0.006")
    assert "too few pairs" in C.noise_verdict(0.1, [float("nan"), float("nan")])
    # with an interval, the ranking verdict is the noise's, not the 0.005 rule of thumb
    assert "keeps the STS-B ranking (within FP32's noise: -0.009" in C.simulate_conclusion(0.82, 0.811, 0.995, 0.95, diff_ci=[-0.02, 0.001])
    assert "loses Spearman (worse than FP32: -0.004 [-0.006, -0.002]" in C.simulate_conclusion(0.82, 0.816, 0.995, 0.95, diff_ci=[-0.006, -0.002])


def test_sweep_conclusion_names_the_ties_and_the_simpler_pick():
    rows = [{"spearman": 0.7700, "tied_with_best": True, "recommended": True, "knobs_from_default": 1},
            {"spearman": 0.7720, "tied_with_best": True, "knobs_from_default": 3}, {"spearman": 0.7400, "tied_with_best": False}]
    text = C.sweep_conclusion(rows, {"method": 0, "mode": 1, "percentile": 0.999, "topk_ratio": 0.01})
    assert text.startswith("Best on validation 0.7720; recommended: method 0, percentile 0.999, topk_ratio 0.01 (0.7700), the simplest of the tied")
    assert "2 of the 3 scored cells are tied with the best" in text


def test_sweep_and_comparison_conclusions():
    rows = [{"spearman": 0.7700}, {"spearman": 0.7720}, {"spearman": 0.7690}]
    chosen = {"method": 1, "mode": 1, "percentile": 0.99, "topk_ratio": 0.1}
    text = C.sweep_conclusion(rows, chosen)
    assert "method 1, percentile 0.99, topk_ratio 0.1 (0.7720)" in text and "any of them would do" in text
    assert "the scored cells span 0.0300" in C.sweep_conclusion(rows + [{"spearman": 0.742}], chosen)
    # the fast sweep: 3 of 5 cells confirmed on the full split, 2 ranked by the proxy only; output and mode named
    text = C.sweep_conclusion(rows + [{"spearman": None}, {"spearman": None}], {"method": 2, "output": 1, "mode": 2})
    assert "Best on validation: method 2, output 1, Histogram (0.7720)" in text and "(3 configs scored, worst 0.7690; the other 2 cells were ranked by the proxy only)" in text
    table = [{"name": "FP32", "spearman": 0.82, "cosine": 1.0, "recall@10": 1.0},
             {"name": "tutorial config", "spearman": 0.70, "cosine": 0.5, "recall@10": 0.3},
             {"name": "recommended", "spearman": 0.78, "cosine": 0.995, "recall@10": 0.93}]
    text = C.comparison_conclusion(table)
    assert "recommended is the closest to FP32: 0.7800 vs 0.8200 (drop 0.0400)" in text
    assert "+0.0800 over the tutorial config" in text and "interchangeable with FP32" in text
    # the drop is that of the figures shown (0.9309 - 0.9302), not of the unrounded ones (0.00064)
    table[2]["spearman"], table[0]["spearman"] = 0.93024, 0.93088
    assert "0.9302 vs 0.9309 (drop 0.0007)" in C.comparison_conclusion(table)


def test_placement_and_split_conclusions():
    blocks = [{"block": "embeddings", "placement": "CPU", "parameters": 900, "flops": 10, "ops": 5},
              {"block": "layer.0", "placement": "NPU", "parameters": 100, "flops": 990, "ops": 50}]
    assert C.placement_conclusion(blocks).startswith("The NPU runs 1 of 2 blocks and 99.0% of the FLOPs; the CPU keeps embeddings, which hold 90.0%")
    assert "exact" in C.split_conclusion(3e-7) and "check the CPU part" in C.split_conclusion(0.1)


def test_ranges_conclusion_counts_clipped_and_widened_sites(tiny_stats):
    from bertnpu.quant.config import QuantConfig
    from bertnpu.quant.thresholds import clip_thresholds

    ranges = clip_thresholds(tiny_stats, QuantConfig(method=1, percentile=0.99, topk_ratio=1.0))
    names = [s.name for s in tiny_stats.sites]
    clipped = sum(ranges[n].threshold < tiny_stats[n].absmax * (1 - 1e-6) for n in names)
    widened = sum(ranges[n].threshold > tiny_stats[n].absmax * 1.5 for n in names)
    text = C.ranges_conclusion(tiny_stats, ranges)
    assert text.startswith(f"{clipped} of {len(names)} sites clip their largest values")
    assert (f"; {widened} get a range over 1.5x" in text) == (widened > 0)
    assert C.ranges_conclusion(tiny_stats, clip_thresholds(tiny_stats, QuantConfig(method=0, mode=0))).startswith(f"0 of {len(names)}")


def test_good_reads_the_planners_acceptance_rule():
    """"Close to FP32" is one rule: the conclusions' Spearman drop and cosine are PlanSpec's defaults, and the help texts say them."""
    from bertnpu.tune.plan.spec import PlanSpec

    assert (C.GOOD["spearman_drop"], C.GOOD["cosine"]) == (PlanSpec.tolerance, PlanSpec.min_cosine)
    assert f"a drop under {PlanSpec.tolerance:g}" in C.METRIC_HELP["spearman"] and f">= {PlanSpec.min_cosine:g} is close" in C.METRIC_HELP["cosine"]


def test_sweep_within_noise_reads_the_tie_marks_else_the_rule_of_thumb():
    drop = C.GOOD["spearman_drop"]
    assert C.sweep_within_noise([{"spearman": 0.80}, {"spearman": 0.80 + drop / 2}, {"spearman": None}])
    assert not C.sweep_within_noise([{"spearman": 0.80}, {"spearman": 0.80 + 2 * drop}])
    assert not C.sweep_within_noise([{"spearman": 0.80}])  # one scored cell: nothing to compare
    wide_but_tied = [{"spearman": 0.80, "tied_with_best": True}, {"spearman": 0.80 + 2 * drop, "tied_with_best": True}]
    assert C.sweep_within_noise(wide_but_tied)
    close_but_apart = [{"spearman": 0.80, "tied_with_best": False}, {"spearman": 0.801, "tied_with_best": True}]
    assert not C.sweep_within_noise(close_but_apart)
