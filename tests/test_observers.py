"""SiteObserver: accumulate (update) and derive (min/max, histograms, top values, tails) against numpy on synthetic data."""

import numpy as np
import pytest
import torch

import bertnpu.quant.observers as observers
from bertnpu.quant.observers import EDGES, NBINS, REPLICAS, TOPK, SiteObserver, bin_index, bootstrap_weights, tail_from


def _feed(obs, values, batches=3, seed=0):
    """Feed ``values`` [n, C] in ``batches`` pieces; each row belongs to sample (row % 4), role (row % 3)."""
    rng_rows = np.array_split(np.arange(len(values)), batches)
    for rows in rng_rows:
        samples = torch.from_numpy(rows % 4)
        obs.update(torch.from_numpy(values[rows]), torch.from_numpy(rows % 3), samples, bootstrap_weights(np.arange(4), seed))
    return obs


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.standard_t(3, size=(3000, 5)).astype(np.float32)
    x[17, 2] = 55.0  # an outlier channel value
    x[5, 0] = -80.0
    return x


def test_scalars_and_channels_equal_numpy(data):
    obs = _feed(SiteObserver(5), data)
    assert obs.count == data.size and obs.min == data.min() and obs.max == data.max()
    assert np.array_equal(obs.channel_absmax.numpy(), np.abs(data).max(0).astype(np.float64))
    assert obs.absmax == 80.0
    assert np.array_equal(obs.channel_min.numpy(), np.minimum(data.min(0), 0).astype(np.float64))
    assert np.array_equal(obs.channel_max.numpy(), np.maximum(data.max(0), 0).astype(np.float64))


def test_histograms_count_every_value_in_its_log_bin(data):
    obs = _feed(SiteObserver(5), data)
    pos, neg = data[data > 0], -data[data < 0]  # 2560 bins of 1/64 octave from 2^-24
    want_pos = np.bincount(np.clip(np.floor(np.log2(pos.astype(np.float64)) * 64 + 24 * 64), 0, NBINS - 1).astype(int), minlength=NBINS)
    assert obs.pos_hist.sum() == (data >= 0).sum() and obs.neg_hist.sum() == neg.size  # zeros count as positive, in bin 0
    assert np.abs(obs.pos_hist.numpy() - want_pos).sum() <= 2  # float32 log2 may move a value at a bin edge
    assert np.array_equal(obs.role_hist.sum(0).numpy(), obs.abs_hist())
    roles = np.repeat(np.arange(len(data)) % 3, data.shape[1])
    assert obs.role_hist.sum(1).numpy().tolist() == np.bincount(roles, minlength=3).tolist()


def test_bins_agree_with_edges():
    v = torch.tensor([1e-30, 2.0 ** -24, 1.0, 1.5, 2.0 ** 15.99])
    b = bin_index(v).numpy()
    assert b[0] == 0 and b[1] == 0
    for value, index in zip(v.numpy()[1:], b[1:]):
        assert EDGES[index] <= value < EDGES[index + 1]


def test_top_values_and_exact_tails(data):
    obs = _feed(SiteObserver(5), data)
    a = np.sort(np.abs(data).ravel())[::-1]
    assert np.array_equal(obs.top_abs(), a[:TOPK])
    for clipped in (0, 1, 10, TOPK - 1):
        assert obs.tail_value(clipped) == a[clipped]
    assert obs.tail_value(0, "pos") == data.max() and obs.tail_value(0, "neg") == -data.min()


def test_deep_tail_is_within_one_bin(data):
    obs = _feed(SiteObserver(5), data)
    a = np.sort(np.abs(data).ravel())[::-1]
    for clipped in (TOPK, 5000, 12000):
        got = obs.tail_value(clipped)
        b = np.searchsorted(EDGES, a[clipped], side="right") - 1
        assert EDGES[b] <= got <= EDGES[b + 1] * (1 + 1e-7)
    assert tail_from(np.zeros(NBINS), np.zeros(0), 3) == 0.0


def test_chunked_update_equals_one_piece(data, monkeypatch):
    whole = _feed(SiteObserver(5), data, batches=1)
    monkeypatch.setattr(observers, "CHUNK_VALUES", 64)  # forces the chunked path (12 rows at a time)
    chunked = _feed(SiteObserver(5), data, batches=1)
    for key, value in whole.to_arrays().items():
        assert np.array_equal(value, chunked.to_arrays()[key]), key


def test_bootstrap_replicas_and_round_trip(data):
    obs = _feed(SiteObserver(5), data)
    w = bootstrap_weights(np.arange(4)).numpy()
    assert w.shape == (REPLICAS, 4)
    per_sample = np.bincount(np.repeat(np.arange(len(data)) % 4, data.shape[1]), minlength=4)
    assert np.allclose(obs.replica_hist.sum(1).numpy(), w @ per_sample)
    again = SiteObserver.from_arrays(obs.to_arrays())
    assert again.count == obs.count and np.array_equal(again.abs_hist(), obs.abs_hist()) and again.tail_value(3) == obs.tail_value(3)
    assert obs.state_size() == again.state_size()
