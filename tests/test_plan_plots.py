"""Plan figures: the 16-bit site map's codes by hand, and what the Pareto figure draws (points, band, labels, chosen)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.figure import Figure

from bertnpu.quant.precision import site_bits
from bertnpu.quant.sites import LAYER_SITES
from bertnpu.ui.plan_plots import plot_pareto, plot_site_map, site_grid

ROLES = [r for r, _, _ in LAYER_SITES]
SITES = [f"layer.{i}.{r}" for i in range(3) for r in ROLES] + ["pooler.dense.out", "pooler.out"]
CHOSEN = ("layer.2.ffn.residual", "layer.0.attention.query.out", "pooler.out")


def test_site_grid_codes_by_hand():
    bits = site_bits(SITES, "aries", CHOSEN)
    grid = site_grid(bits, CHOSEN, 3)
    want = np.zeros((3, len(ROLES)), dtype=int)
    want[:, ROLES.index("attention.softmax.out")] = 1  # the aries profile runs softmax at 16 bits (Mobilint's statement)
    want[2, ROLES.index("ffn.residual")] = 2
    want[0, ROLES.index("attention.query.out")] = 2
    np.testing.assert_array_equal(grid, want)
    # all-int8: nothing at 16 bits by the profile, the recipe's sites only
    all8 = site_grid(site_bits(SITES, "all-int8", CHOSEN), CHOSEN, 3)
    assert (all8 == 1).sum() == 0 and (all8 == 2).sum() == 2


def test_site_map_draws_the_grid_and_names_sites_outside_the_layers():
    bits = site_bits(SITES, "aries", CHOSEN)
    fig = plot_site_map(bits, CHOSEN, 3, "aries")
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), site_grid(bits, CHOSEN, 3))
    assert [t.get_text() for t in ax.get_xticklabels()] == ROLES
    assert [t.get_text() for t in ax.get_yticklabels()] == ["layer 0", "layer 1", "layer 2"]
    assert ax.get_title().endswith("[aries] (+ pooler.out)")
    assert "(+" not in plot_site_map(bits, CHOSEN[:2], 3, "aries").axes[0].get_title()


PARETO = [{"n_sites": 0, "added": None, "validation_spearman": 0.70, "traffic_16bit": 0.0},
          {"n_sites": 1, "added": "layer.2.ffn.residual", "validation_spearman": 0.77, "traffic_16bit": 0.031},
          {"n_sites": 2, "added": "layer.1.ffn.residual", "validation_spearman": 0.803, "traffic_16bit": 0.062}]


def test_pareto_draws_points_band_and_chosen():
    fig = plot_pareto(PARETO, fp32=0.805, tolerance=0.005, profile="aries", chosen=2)
    ax = fig.axes[0]
    line = next(ln for ln in ax.lines if ln.get_label() == "simulated (validation)")
    np.testing.assert_array_equal(line.get_xdata(), [0, 1, 2])
    np.testing.assert_allclose(line.get_ydata(), [0.70, 0.77, 0.803])
    fp32 = next(ln for ln in ax.lines if ln.get_label() == "FP32 0.8050")
    assert fp32.get_ydata()[0] == pytest.approx(0.805)
    band = next(p for p in ax.patches if p.get_label() == "within 0.005 of FP32")
    ys = band.get_transform().transform(band.get_path().vertices)[:, 1]  # in display units: back to data y
    lo, hi = ax.transData.inverted().transform([[0, min(ys)], [0, max(ys)]])[:, 1]
    assert lo == pytest.approx(0.800) and hi == pytest.approx(0.805 + 0.0025)  # from fp32 - tol to the top + tol/2
    chosen = next(ln for ln in ax.lines if ln.get_label() == "chosen")
    assert (chosen.get_xdata()[0], chosen.get_ydata()[0]) == (2, pytest.approx(0.803))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0\n0%", "1\n3%", "2\n6%"]  # traffic at 16 bits under each count
    assert len(ax.texts) == 0  # nothing drawn over the lines
    assert list(ax.get_xticks()) == [0, 1, 2] and "[profile aries]" in ax.get_title()


def test_pareto_without_a_chosen_point_and_on_given_axes():
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_pareto(PARETO, 0.9, 0.01, "all-int8", chosen=None, ax=ax) is fig
    assert not [ln for ln in ax.lines if ln.get_label() == "chosen"]
    assert not [ln for ln in plot_pareto(PARETO, 0.9, 0.01, "x", chosen=7).axes[0].lines if ln.get_label() == "chosen"]  # not on the front
