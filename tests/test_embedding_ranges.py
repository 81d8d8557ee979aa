import numpy as np
from matplotlib.figure import Figure

from bertnpu.data.embedding_ranges import channel_ranges, coverage_curve, outlier_channels, outside_fraction
from bertnpu.ui.plots import plot_channel_ranges, plot_coverage, plot_sequence_lengths, plot_value_histogram


def _arrays(rng, n, hidden=6):
    return [rng.normal(size=(1, rng.integers(3, 9), hidden)).astype(np.float32) for _ in range(n)]


def test_channel_ranges_match_numpy():
    rng = np.random.default_rng(0)
    tokens = rng.normal(size=(500, 7)).astype(np.float32)
    r = channel_ranges(tokens)
    for c in range(7):
        col = tokens[:, c]
        assert r.min[c] == col.min() and r.max[c] == col.max() and r.absmax[c] == np.abs(col).max()
        assert np.isclose(r.percentiles[r.levels.index(99.0), c], np.percentile(col, 99))


def test_outlier_channels():
    rng = np.random.default_rng(1)
    tokens = rng.uniform(-1, 1, size=(300, 10)).astype(np.float32)
    tokens[5, 3] = 20.0
    tokens[9, 7] = -9.0
    out = outlier_channels(channel_ranges(tokens), factor=4.0)
    assert [o["channel"] for o in out] == [3, 7]
    assert out[0]["absmax"] == 20.0


def test_outside_fraction_brute_force():
    rng = np.random.default_rng(2)
    calib = rng.normal(size=(50, 4)).astype(np.float32)
    ev = rng.normal(scale=1.5, size=(80, 4)).astype(np.float32)
    per, overall = outside_fraction(calib, ev)
    for c in range(4):
        expected = sum(1 for v in ev[:, c] if v < calib[:, c].min() or v > calib[:, c].max()) / 80
        assert per[c] == expected
    assert np.isclose(overall, per.mean())


def test_coverage_curve_ends_at_full_set_and_never_rises():
    rng = np.random.default_rng(3)
    arrays = _arrays(rng, 70)
    ev = rng.normal(size=(400, 6)).astype(np.float32)
    curve = coverage_curve(arrays, ev)
    assert curve["counts"] == [16, 32, 64, 70]
    _, overall = outside_fraction(np.concatenate([a[0] for a in arrays]), ev)
    assert curve["outside_fraction"][-1] == overall
    assert all(a >= b for a, b in zip(curve["outside_fraction"], curve["outside_fraction"][1:]))
    first16 = np.concatenate([a[0] for a in arrays[:16]])
    assert curve["outside_fraction"][0] == outside_fraction(first16, ev)[1]


def test_plots_are_pure_figures():
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(4)
    arrays = _arrays(rng, 20)
    tokens = np.concatenate([a[0] for a in arrays])
    r = channel_ranges(tokens)
    figs = [
        plot_channel_ranges(r, outlier_channels(r, 1.5)),
        plot_value_histogram(tokens),
        plot_sequence_lengths([a.shape[1] for a in arrays]),
        plot_coverage(outside_fraction(tokens, tokens * 2)[0], coverage_curve(arrays, tokens * 2)),
    ]
    assert all(isinstance(f, Figure) and f.axes for f in figs)
    assert len(figs[3].axes) == 2
    assert plt.get_fignums() == []  # no global pyplot state
