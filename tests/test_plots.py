"""Calibration and placement plots: pure functions whose drawn data equal the inputs (numpy), no pyplot state."""

import numpy as np
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from bertnpu.data.embedding_ranges import channel_ranges, outlier_channels
from bertnpu.ui.plots import plot_block_placement, plot_channel_ranges, plot_coverage, plot_sequence_lengths


def _no_pyplot_figures():
    import matplotlib.pyplot as plt

    return plt.get_fignums() == []


def test_sequence_lengths_bars_are_the_counts():
    lengths = [5, 7, 7, 9, 5, 5, 12]
    fig = plot_sequence_lengths(lengths)
    heights = [p.get_height() for p in fig.axes[0].patches]
    assert heights == np.bincount(np.array(lengths) - 5).tolist()
    assert "n=7, median 7" in fig.axes[0].get_title()


def test_coverage_bars_and_curve_are_percentages():
    per_channel = np.array([0.0, 0.01, 0.25, 0.0])
    curve = {"counts": [8, 16, 32], "outside_fraction": [0.1, 0.05, 0.02]}
    fig = plot_coverage(per_channel, curve)
    left, right = fig.axes
    assert np.allclose([p.get_height() for p in left.patches], per_channel * 100)
    assert np.allclose(right.lines[0].get_ydata(), [10.0, 5.0, 2.0]) and right.get_xscale() == "log"
    assert "6.500% overall" in left.get_title()  # mean of the per-channel fractions


def test_channel_ranges_label_the_largest_channels_with_their_ratio():
    rng = np.random.default_rng(1)
    tokens = rng.normal(size=(400, 12)).astype(np.float32)
    tokens[3, 7] = 60.0
    ranges = channel_ranges(tokens)
    fig = plot_channel_ranges(ranges, outlier_channels(ranges))
    texts = {t.get_text(): to_hex(t.get_color()) for t in fig.axes[0].texts}
    absmax = np.abs(tokens).max(0)
    top = np.argsort(-absmax)[:3]
    want = [f"{c} ({absmax[c] / np.median(absmax):.1f}x)" for c in top]
    assert sorted(texts) == sorted(want)
    assert texts[want[0]] == to_hex("tab:red")  # channel 7 is an outlier
    assert "400 tokens" in fig.axes[0].get_title()


def test_block_placement_one_bar_per_block_coloured_by_placement():
    blocks = [{"block": "embeddings", "placement": "CPU", "parameters": 2_000_000, "flops": 0, "ops": 5},
              {"block": "layer.0", "placement": "NPU", "parameters": 1_500_000, "flops": 3e6, "ops": 40}]
    fig = plot_block_placement(blocks)
    bars = fig.axes[0].patches
    assert [to_hex(b.get_facecolor()) for b in bars] == [to_hex("tab:orange"), to_hex("tab:blue")]
    assert "embeddings  [CPU]  2.00 M params, 0.0 MFLOP, 5 ops" in [t.get_text() for t in fig.axes[0].texts]
    assert isinstance(fig, Figure) and _no_pyplot_figures()
