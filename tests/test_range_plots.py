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


def _drawn_cells(fig):
    """What the heatmap draws, read back from the Axes: {(row label, column label): (image value, cell text, text artist)}."""
    ax = fig.axes[0]
    grid = ax.images[0].get_array()
    ys = [t.get_text() for t in ax.get_yticklabels()]
    xs = [t.get_text() for t in ax.get_xticklabels()]
    texts = {(round(t.get_position()[1]), round(t.get_position()[0])): t for t in ax.texts if (t.get_gid() or "").startswith("cell")}
    cells = {}
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            t = texts.get((i, j))
            cells[y, x] = (None if np.ma.is_masked(grid[i, j]) else float(grid[i, j]), t.get_text() if t else None, t)
    return ax, ys, xs, cells


def _frames(ax, gid):
    """Top-left corners of the cell frames with ``gid``, as (column, row) of the cell."""
    return {(round(p.get_x() + 0.5), round(p.get_y() + 0.5)) for p in ax.patches if p.get_gid() == gid}


def _marks(ax):
    """Cells (column, row) carrying the shared-evaluation mark, and the mark is the documented one."""
    marks = [t for t in ax.texts if (t.get_gid() or "").startswith("shared")]
    assert all(t.get_text() == "\u2261" for t in marks)
    return {(int(t.get_gid().split()[2]), int(t.get_gid().split()[1])) for t in marks}


def _luminance(rgba):
    return 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]


def test_sweep_heatmap_every_cell_sweep_draws_each_rows_spearman():
    """An exhaustive sweep (every cell scored on the full split): colour = Spearman, one cell per row."""
    from bertnpu.ui.range_plots import plot_sweep_heatmap

    rows = [{"mode": 1, "method": m, "output": 0, "percentile": p, "topk_ratio": k, "confirmed": True, "shares_with": None,
             "spearman": 0.70 + 0.01 * m + 0.002 * (p == 1.0) + 0.001 * k}
            for m in (0, 1) for p in (0.99, 1.0) for k in (0.01, 1.0)]
    rows[3]["shares_with"] = "method 0, output 0, MaxPercentile p=1 topk=0.01"  # p = 1 clips nothing for any r: same ranges
    chosen = {"mode": 1, "method": 1, "output": 0, "percentile": 1.0, "topk_ratio": 1.0}
    fig = plot_sweep_heatmap(rows, chosen)
    ax, ys, xs, cells = _drawn_cells(fig)
    row_label = {0: "method 0 (per layer)\noutput 0 (per tensor)", 1: "method 1 (shared)\noutput 0 (per tensor)"}
    # columns by the clipped tail r(1-p): 0 (p = 1, both r), 1e-4, 1e-2
    col_label = {(1.0, 0.01): "MaxPct\np 1\nr 0.01\nclips 0", (1.0, 1.0): "MaxPct\np 1\nr 1\nclips 0",
                 (0.99, 0.01): "MaxPct\np 0.99\nr 0.01\nclips 1e-04", (0.99, 1.0): "MaxPct\np 0.99\nr 1\nclips 1e-02"}
    assert ys == [row_label[0], row_label[1]] and xs == [col_label[1.0, 0.01], col_label[1.0, 1.0], col_label[0.99, 0.01], col_label[0.99, 1.0]]
    for r in rows:
        value, text, _ = cells[row_label[r["method"]], col_label[r["percentile"], r["topk_ratio"]]]
        assert value == pytest.approx(r["spearman"]) and text == f"{r['spearman']:.4f}"
    # best 0.713, worst 0.700: the title and the colour bar say how close the cells are
    assert "best 0.7130" in fig._suptitle.get_text() and "within 0.0130" in fig._suptitle.get_text()
    bar_label = fig.axes[1].get_ylabel()
    assert "Spearman" in bar_label and "span 0.0130" in bar_label and "noise" not in bar_label
    im = ax.images[0]
    for value, _, t in cells.values():
        assert t.get_color() == "black" and _luminance(im.cmap(im.norm(value))) > 0.45  # dark text on light cells
    assert _frames(ax, "chosen") == {(xs.index(col_label[1.0, 1.0]), ys.index(row_label[1]))}
    assert not _frames(ax, "confirmed") and not any("\u03c1" in text for _, text, _ in cells.values())  # every cell scored alike
    shared = _marks(ax)
    assert shared == {(xs.index(col_label[1.0, 1.0]), ys.index(row_label[0]))}
    close = [dict(r, spearman=0.80 + r["spearman"] / 10) for r in rows]  # span 0.0013: within noise, and the bar says so
    assert "under 0.005: within the split's noise" in plot_sweep_heatmap(close, chosen).axes[1].get_ylabel()
    # with the sweep's tie marks the bar reads the paired intervals (conclusions.sweep_within_noise), not the span
    tied = [dict(r, tied_with_best=True) for r in rows]  # span 0.013, yet every cell tied with the best
    assert "every cell tied with the best: within the split's noise" in plot_sweep_heatmap(tied, chosen).axes[1].get_ylabel()
    apart = [dict(r, tied_with_best=r is close[0]) for r in close]  # span 0.0013, yet only one cell tied
    assert "noise" not in plot_sweep_heatmap(apart, chosen).axes[1].get_ylabel()


def test_sweep_heatmap_wide_search_shows_all_48_ranked_cells():
    """The wide search (methods 0-3 x outputs 0/1 x Max, 4 MaxPercentile cells, Histogram): colour = proxy for
    every cell; the cells confirmed on the full split carry their Spearman, a frame and bold text; shared cells are marked."""
    from bertnpu.tune.sweep import wide_grid
    from bertnpu.ui.range_plots import plot_sweep_heatmap

    configs = wide_grid()
    rows = []
    for n, cfg in enumerate(configs):
        rows.append({**cfg.to_dict(), "proxy_cosine": 0.95 - 0.003 * n, "spearman": None, "confirmed": False,
                     "shares_with": "method 0, output 0, Max" if n % 7 == 3 else None})
    for n, spearman in ((10, 0.851), (11, 0.8537), (17, 0.8568), (29, 0.8563)):
        rows[n].update(spearman=spearman, confirmed=True)
    chosen = configs[17].to_dict()
    fig = plot_sweep_heatmap(rows, chosen)
    ax, ys, xs, cells = _drawn_cells(fig)
    assert len(ys) == 8 and len(xs) == 6 and len(cells) == 48
    assert xs[0] == "Max" and xs[-1] == "Histogram"
    assert xs[1:5] == ["MaxPct\np 0.9999\nr 0.01\nclips 1e-06", "MaxPct\np 0.999\nr 0.01\nclips 1e-05",
                       "MaxPct\np 0.99\nr 0.01\nclips 1e-04", "MaxPct\np 0.99\nr 0.1\nclips 1e-03"]
    mode_col = {0: "Max", 2: "Histogram"}
    im = ax.images[0]
    positions = {}
    for r in rows:
        row = f"method {r['method']} ({'shared' if r['method'] in (1, 3) else 'per layer'}{', zero point' if r['method'] in (2, 3) else ''})\n" \
              f"output {r['output']} ({'per channel' if r['output'] else 'per tensor'})"
        col = mode_col.get(r["mode"]) or next(x for x in xs if x.startswith(f"MaxPct\np {r['percentile']:g}\nr {r['topk_ratio']:g}\n"))
        value, text, t = cells[row, col]
        positions[id(r)] = (xs.index(col), ys.index(row))
        assert value == pytest.approx(r["proxy_cosine"])
        assert text.split("\n")[0] == f"{r['proxy_cosine']:.4f}"
        if r["confirmed"]:
            assert text.split("\n")[1] == f"\u03c1 {r['spearman']:.4f}" and t.get_fontweight() == "bold"
        else:
            assert "\u03c1" not in text and t.get_fontweight() == "normal"
        assert t.get_color() == "black" and _luminance(im.cmap(im.norm(value))) > 0.45
    assert _frames(ax, "confirmed") == {positions[id(r)] for r in rows if r["confirmed"]}
    assert _frames(ax, "chosen") == {positions[id(rows[17])]}
    shared = _marks(ax)
    assert shared == {positions[id(r)] for r in rows if r["shares_with"]}
    span = 0.003 * 47  # proxy 0.95 .. 0.809
    bar_label = fig.axes[1].get_ylabel()
    assert "proxy" in bar_label and f"span {span:.4f}" in bar_label
    title = fig._suptitle.get_text()
    assert "48 cells ranked by the proxy, 4 confirmed on the full split" in title and "best confirmed Spearman 0.8568" in title
    assert "ranked by the proxy only" in ax.get_xlabel() and "evaluated once" in ax.get_xlabel()


def test_sweep_heatmap_prints_enough_decimals_to_tell_cells_apart():
    """Proxy values 0.00006 apart (span 0.00018): five decimals, so no two cells print the same number."""
    from bertnpu.ui.range_plots import plot_sweep_heatmap

    rows = [{"mode": 0, "method": m, "output": 0, "percentile": 0.999, "topk_ratio": 0.01, "spearman": None,
             "proxy_cosine": 0.99980 + 0.00006 * m} for m in range(4)]
    rows[0]["spearman"] = 0.8
    fig = plot_sweep_heatmap(rows)
    _, ys, _, cells = _drawn_cells(fig)
    assert [text.split("\n")[0] for _, text, _ in cells.values()] == ["0.99980", "0.99986", "0.99992", "0.99998"]
    assert "span 0.00018" in fig.axes[1].get_ylabel()
