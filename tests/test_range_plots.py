import numpy as np
import pytest
from matplotlib.figure import Figure

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.quant.config import QuantConfig
from bertnpu.ui.range_plots import plot_channel_heatmap, plot_site_histogram, plot_site_ranges, plot_threshold_stability
from bertnpu.ui.range_tables import outlier_table, role_summary
from bertnpu.quant.stats import collect_activation_stats
from bertnpu.quant.thresholds import clip_thresholds, threshold_stability


@pytest.fixture(scope="module")
def stats(tiny_stats):
    return tiny_stats


def test_views_are_pure_figures(stats):
    import matplotlib.pyplot as plt

    cfg = QuantConfig()
    ranges = clip_thresholds(stats, cfg)
    figs = [
        plot_site_ranges(stats, ranges),
        plot_site_histogram(stats["layer.0.ffn.gelu.out"], cfg, "layer.0.ffn.gelu.out"),
        plot_channel_heatmap(stats, "ffn.layernorm.out"),
        plot_threshold_stability(threshold_stability(stats, cfg)),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert "clipped by current config" in figs[1].axes[0].get_title()
    assert figs[2].axes[0].images[0].get_array().shape == (3, 36)
    assert plt.get_fignums() == []


def test_outlier_table_orders_by_max_over_p99(stats):
    rows = outlier_table(stats, top=5)
    assert len(rows) == 5
    ratios = [r["max_over_p99"] for r in rows]
    assert ratios == sorted(ratios, reverse=True) and all(r >= 1 for r in ratios)
    worst = stats[rows[0]["site"]]
    assert rows[0]["worst_channel"] == int(np.argmax(worst.channel_absmax.numpy()))


def test_role_summary(stats):
    summary = role_summary(stats["layer.1.attention.residual"])
    assert summary["cls"]["count"] == summary["sep"]["count"] == stats.meta["samples"] * 36
    assert summary["content"]["absmax_upper"] > 0


def test_stability_shrinks_with_more_samples(tiny_model, stsb_validation, tmp_path):
    cfg = QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=1.0)
    spreads = []
    for n in (8, 128):
        calib = build_calibration_set(tiny_model, tmp_path / f"c{n}", CalibrationSpec(count=n), pairs=stsb_validation, progress=False)
        spreads.append(np.median(list(threshold_stability(collect_activation_stats(tiny_model, calib, progress=False), cfg).values())))
    assert spreads[1] < spreads[0]
