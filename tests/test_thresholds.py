"""Clip thresholds of modes 0-2 and methods 0-3 against brute force on the raw values (numpy, torch.ao)."""

import numpy as np
import pytest
import torch

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.observers import EDGES, TOPK
from bertnpu.quant.thresholds import clip_thresholds, clipped_count, clipped_fraction, site_range


def test_max_mode_matches_torch_ao(tiny_stats, raw_values):
    from torch.ao.quantization.observer import MinMaxObserver

    for name in ("layer.0.attention.scores", "layer.2.ffn.residual", "pooler.out"):
        ao = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
        ao(torch.from_numpy(raw_values[name]))
        r = site_range(tiny_stats[name], QuantConfig(method=0, mode=0))
        assert np.isclose(r.hi, max(-ao.min_val.item(), ao.max_val.item()), atol=1e-5)
        z = site_range(tiny_stats[name], QuantConfig(method=2, mode=0))
        assert np.isclose(z.lo, ao.min_val.item(), atol=1e-5) and np.isclose(z.hi, ao.max_val.item(), atol=1e-5)


@pytest.mark.parametrize("p,r", [(0.999, 0.01), (0.99, 0.5), (0.9, 1.0), (0.5, 1.0), (1.0, 0.01)])
def test_max_percentile_against_brute_force(tiny_stats, raw_values, p, r):
    for name in ("layer.1.ffn.gelu.out", "layer.0.attention.softmax.out", "embeddings.out"):
        a = np.sort(np.abs(raw_values[name]).ravel())[::-1]
        m = int(np.floor(r * (1 - p) * a.size + 1e-9))
        want = a[m]
        got = site_range(tiny_stats[name], QuantConfig(method=0, mode=1, percentile=p, topk_ratio=r)).hi
        if m < TOPK:
            assert np.isclose(got, want, rtol=1e-5), (name, m)
        else:  # within one histogram bin
            b = np.searchsorted(EDGES, want, side="right") - 1
            assert EDGES[b] <= got <= EDGES[b + 1] * 1.0000001 or np.isclose(got, want), (name, m, got, want)


def test_histogram_mode_against_brute_force(tiny_stats, raw_values):
    for name in ("layer.1.ffn.intermediate.out", "layer.2.attention.residual"):
        a = np.abs(raw_values[name]).ravel().astype(np.float64)
        got = site_range(tiny_stats[name], QuantConfig(method=0, mode=2)).hi
        top = int(np.searchsorted(EDGES, a.max()))
        cands = np.append(EDGES[1:top], a.max())

        def mse(t):
            q = np.clip(np.round(a / (t / 127)), -127, 127) * (t / 127)
            return ((a - q) ** 2).mean()

        errors = np.array([mse(t) for t in cands])
        best = cands[int(np.argmin(errors))]
        assert abs(np.log2(got) - np.log2(best)) <= 1 / 64 + 1e-9, (name, got, best)  # within one bin
        assert mse(got) <= errors.min() * 1.05  # rounding noise is modelled as uniform (step^2/12)


def test_multi_layer_shares_ranges(tiny_stats):
    per_layer = clip_thresholds(tiny_stats, QuantConfig(method=0, mode=0))
    shared = clip_thresholds(tiny_stats, QuantConfig(method=1, mode=0))
    names = [f"layer.{i}.ffn.gelu.out" for i in range(3)]
    assert len({shared[n] for n in names}) == 1
    assert shared[names[0]].hi == max(per_layer[n].hi for n in names)
    assert shared["embeddings.out"] == per_layer["embeddings.out"]


def test_clipped_fraction(tiny_stats, raw_values):
    name = "layer.1.ffn.gelu.out"
    cfg = QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.05)
    rng = site_range(tiny_stats[name], cfg)
    frac = clipped_fraction(tiny_stats[name], rng)
    a = np.abs(raw_values[name])
    assert np.isclose(frac, (a > rng.hi).mean(), atol=1e-6)
    assert np.isclose(frac * a.size, clipped_count(a.size, 0.99, 0.05), atol=1)


@pytest.mark.parametrize("count,p,r,clipped", [(10_000, 0.999, 0.01, 0), (1_000_000, 0.99, 0.1, 1000), (1_000_000, 0.999, 0.01, 10),
                                                (7, 0.5, 1.0, 3), (100, 1.0, 0.5, 0)])
def test_clipped_count_by_hand(count, p, r, clipped):
    assert clipped_count(count, p, r) == clipped  # floor(r (1 - p) N), by hand


def test_diagonal_cells_give_one_threshold(tiny_stats):
    """Only the tail fraction r (1 - p) matters: p 0.99 / r 0.001 equals p 0.999 / r 0.01."""
    a = clip_thresholds(tiny_stats, QuantConfig(percentile=0.99, topk_ratio=0.001))
    b = clip_thresholds(tiny_stats, QuantConfig(percentile=0.999, topk_ratio=0.01))
    assert a == b

