import numpy as np
import pytest
from matplotlib.figure import Figure

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.quant.config import QuantConfig
from bertnpu.ui.range_plots import plot_channel_heatmap, plot_site_histogram, plot_site_ranges, plot_threshold_stability
from bertnpu.ui.range_tables import site_range_view
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
        plot_site_histogram(stats["layer.0.ffn.gelu.out"], site_range_view(stats, cfg, "layer.0.ffn.gelu.out")),
        plot_channel_heatmap(stats, "ffn.layernorm.out"),
        plot_threshold_stability(threshold_stability(stats, cfg)),
    ]
    assert all(isinstance(f, Figure) for f in figs)
    assert "clips" in figs[1].axes[0].get_title()
    assert figs[2].axes[0].images[0].get_array().shape == (3, 36)
    assert plt.get_fignums() == []


def test_stability_shrinks_with_more_samples(tiny_model, stsb_validation, tmp_path):
    cfg = QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=1.0)
    spreads = []
    for n in (8, 128):
        calib = build_calibration_set(tiny_model, tmp_path / f"c{n}", CalibrationSpec(count=n), pairs=stsb_validation, progress=False)
        spreads.append(np.median(list(threshold_stability(collect_activation_stats(tiny_model, calib, progress=False), cfg).values())))
    assert spreads[1] < spreads[0]


def test_softmax_view_is_unsigned(stats):
    view = site_range_view(stats, QuantConfig(method=0), "layer.0.attention.softmax.out")
    assert view.unsigned and view.lo == 0.0 and 0 < view.hi <= 1.0 + 1e-6
    fig = plot_site_histogram(stats["layer.0.attention.softmax.out"], view)
    assert "unsigned range [0, hi]" in fig.axes[0].get_xlabel()
    zp = site_range_view(stats, QuantConfig(method=2), "layer.0.ffn.residual")
    assert not zp.unsigned and zp.lo == pytest.approx(stats["layer.0.ffn.residual"].min)


def test_histogram_draws_the_views_threshold(stats):
    name = "layer.2.ffn.gelu.out"
    view = site_range_view(stats, QuantConfig(method=1, percentile=0.995, topk_ratio=0.2), name)
    fig = plot_site_histogram(stats[name], view, {"Max (shared)": 123.0})
    ax = fig.axes[0]
    applied = [line for line in ax.lines if line.get_gid() == "applied-threshold"]
    assert len(applied) == 1 and applied[0].get_xdata()[0] == view.hi
    assert f"{view.threshold:.4g}" in ax.get_title() and "shared across layers" in ax.get_title()
    legend = ax.get_legend()
    assert legend.get_bbox_to_anchor().x0 >= ax.get_window_extent().x1 - 1  # legend sits right of the data
    assert any("Max (shared): 123" in t.get_text() for t in legend.get_texts())


def test_site_ranges_chart_labels_every_site(stats):
    fig = plot_site_ranges(stats, clip_thresholds(stats, QuantConfig()))
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert len(labels) == len(stats.sites) and labels[1] == "L0 q" and "L2 ffn resid" in labels


def test_sweep_heatmap_scale_and_readable_text():
    from bertnpu.ui.range_plots import plot_sweep_heatmap

    rows = [{"mode": 1, "method": m, "output": 0, "percentile": p, "topk_ratio": k, "spearman": 0.70 + 0.01 * m + 0.002 * (p == 1.0) + 0.001 * k}
            for m in (0, 1) for p in (0.99, 1.0) for k in (0.0, 1.0)]
    fig = plot_sweep_heatmap(rows, {"mode": 1, "method": 1, "output": 0, "percentile": 1.0, "topk_ratio": 1.0})
    assert "method 1" in fig.axes[0].get_title() and "method 0" in fig.axes[1].get_title()
    # best 0.713, worst 0.700: the title says how close the cells are
    assert "best 0.7130" in fig._suptitle.get_text() and "within 0.0130" in fig._suptitle.get_text()
    best = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    worst = {t.get_text(): t.get_color() for t in fig.axes[1].texts}
    assert best["0.7130"] == "black" and worst["0.7000"] == "white"  # dark text on light (high) cells, light on dark
    assert [p for p in fig.axes[0].patches if p.get_edgecolor()[:3] == (1.0, 0.0, 0.0)]
