"""Notebook tables: outlier sites, role summaries and the applied range of a site, against values gathered here
one sample at a time with no padding (``raw_values``), and the HTML table formatting."""

import numpy as np
import pytest
import torch

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.observers import BINS_PER_OCTAVE, EDGES
from bertnpu.quant.thresholds import clip_thresholds
from bertnpu.ui.range_tables import format_value, html_table, outlier_table, role_summary, site_range_view


@pytest.fixture(scope="module")
def stats(tiny_stats):
    return tiny_stats


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


def test_site_range_view_is_the_range_the_simulator_applies(stats):
    from bertnpu.quant.thresholds import site_range

    name = "layer.1.ffn.residual"
    shared = site_range_view(stats, QuantConfig(method=1, percentile=0.99, topk_ratio=0.5), name)
    # independent reference: the widest per-layer range of the role (the multi-layer rule, by hand)
    per_layer = [site_range(stats[f"layer.{i}.ffn.residual"], QuantConfig(method=1, percentile=0.99, topk_ratio=0.5)).threshold for i in range(3)]
    assert shared.shared and shared.threshold == pytest.approx(max(per_layer))
    assert shared.own_threshold == pytest.approx(per_layer[1]) and shared.lo == -shared.hi
    assert shared.threshold == clip_thresholds(stats, QuantConfig(method=1, percentile=0.99, topk_ratio=0.5))[name].threshold
    alone = site_range_view(stats, QuantConfig(method=0, percentile=0.99, topk_ratio=0.5), name)
    assert not alone.shared and alone.threshold == pytest.approx(per_layer[1])
    # clipped fraction by counting: values above the threshold among the exact top values
    obs = stats[name]
    top = np.asarray(obs.top_abs())
    assert alone.clipped_fraction * obs.count == pytest.approx((top > alone.threshold).sum())


def test_tables_use_thousands_separators_and_units():
    assert format_value(28409856) == "28,409,856" and format_value(12345.6) == "12,346" and format_value(0.123456) == "0.1235"
    assert format_value((1, 12, 384)) == "1 x 12 x 384" and format_value(2e-7) == "2e-07"
    html = html_table([{"op": "linear", "flops": 28409856}], units={"flops": "FLOP"}, max_height=300)
    assert ">flops (FLOP)</th>" in html and ">28,409,856<" in html and "overflow:auto" in html


def test_outlier_table_against_raw_values(stats, raw_values):
    """absmax, p99 (the (k+1)-th largest |x|, k = 1% of the values) and the worst channel, by numpy on every valid value."""
    want = {}
    for name, values in raw_values.items():
        a = np.abs(values.astype(np.float64))
        flat = np.sort(a.ravel())[::-1]
        p99 = flat[int(0.01 * flat.size)]
        ch = a.max(axis=0)
        want[name] = {"absmax": flat[0], "p99": p99, "max_over_p99": flat[0] / p99, "worst_channel": int(np.argmax(ch)),
                      "channel_ratio": ch.max() / np.median(ch)}
        assert stats[name].count == values.size, name
    rows = outlier_table(stats, top=len(want))
    assert {r["site"] for r in rows} == set(want)
    for r in rows:
        w = want[r["site"]]
        for key in ("absmax", "p99", "max_over_p99", "channel_ratio"):
            assert r[key] == pytest.approx(w[key], rel=1e-4), (r["site"], key)
        assert r["worst_channel"] == w["worst_channel"], r["site"]
    top3 = sorted(want, key=lambda n: -want[n]["max_over_p99"])[:3]
    assert [r["site"] for r in outlier_table(stats, top=3)] == top3


def test_role_summary_against_positions(stats, tiny_model, tiny_calib):
    """[CLS] is each sample's first token, [SEP] its last: counts and the max |x| bin of each role, by hand."""
    from bertnpu.model.npu_part import NpuEncoder

    site, rows = "layer.1.attention.residual", []

    def tap(name, x, mask):
        if name == site:
            rows.append(x[0].numpy().copy())  # [tokens, hidden] of one sample
        return x

    enc = NpuEncoder(tiny_model.bert)
    with torch.no_grad():
        for a in tiny_calib.arrays:
            enc(torch.from_numpy(a), torch.ones(1, a.shape[1], dtype=torch.long), tap=tap)
    parts = {"cls": np.concatenate([r[:1] for r in rows]), "sep": np.concatenate([r[-1:] for r in rows]),
             "content": np.concatenate([r[1:-1] for r in rows])}
    summary = role_summary(stats[site])
    for role, values in parts.items():
        top = float(np.abs(values).max())
        assert summary[role]["count"] == values.size, role
        upper = summary[role]["absmax_upper"]
        # the upper edge of the histogram bin that holds the role's max |x|: above it, by at most one bin width
        assert top < upper * (1 + 1e-5) and upper <= top * 2 ** (1 / BINS_PER_OCTAVE) * (1 + 1e-5), role
        assert upper in EDGES


def test_clipped_fraction_counts_the_values_above_the_threshold(stats, raw_values):
    for name in ("layer.0.ffn.gelu.out", "layer.2.attention.scores"):
        view = site_range_view(stats, QuantConfig(method=0, percentile=0.995, topk_ratio=0.2), name)
        values = raw_values[name]
        above = (np.abs(values) > view.threshold).sum() if not view.unsigned else (values > view.threshold).sum()
        assert view.clipped_fraction * view.count == pytest.approx(above, abs=1), name
        assert view.count == values.size and not view.shared and view.label.startswith("applied, this site only")


def test_zero_point_view_uses_the_asymmetric_range(stats):
    name = "layer.1.ffn.gelu.out"
    cfg = QuantConfig(method=3)
    view = site_range_view(stats, cfg, name)
    rng = clip_thresholds(stats, cfg)[name]
    assert (view.lo, view.hi, view.threshold) == (rng.lo, rng.hi, rng.hi) and not view.unsigned
    assert view.shared and view.label == "applied, shared across layers"
    softmax = site_range_view(stats, QuantConfig(method=0), "layer.0.attention.softmax.out")
    assert softmax.label == "applied, this site only, unsigned"


def test_format_value_edge_cases():
    assert format_value(None) == "" and format_value(True) == "True"  # bool is not the integer 1
    assert format_value(np.int64(1234567)) == "1,234,567" and format_value(np.float32(0.5)) == "0.5000"
    assert format_value(0.0) == "0.0000" and format_value(-0.00001234) == "-1.23e-05" and format_value(float("nan")) == "nan"
    assert format_value(-12345.4) == "-12,345" and format_value(3.14159, digits=2) == "3.14" and format_value("a<b") == "a<b"


def test_html_table_escapes_and_aligns():
    assert html_table([]) == "<p>(none)</p>"
    html = html_table([{"site": "<b>x</b>", "n": 3, "ok": False}, {"site": "y", "n": 12000, "ok": True}])
    # headers align with their column: left over text (and booleans), right over numbers
    assert ("<th style='text-align:left'>site</th><th style='text-align:right'>n</th><th style='text-align:left'>ok</th>" in html and "&lt;b&gt;x&lt;/b&gt;" in html and "<b>" not in html)
    assert "<td style='text-align:right'>12,000</td>" in html and "<td style='text-align:left'>False</td>" in html
    assert "overflow" not in html
    only = html_table([{"a": 1, "b": 2}], columns=["b"])
    assert "<th style='text-align:right'>b</th>" in only and ">a</th>" not in only
    assert "<th style='text-align:left'>name</th>" in html_table([{"name": None}, {"name": "x"}])  # first non-empty cell decides
