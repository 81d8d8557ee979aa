"""Sentence pooling against numpy: mean and max over real tokens only, cls, pooler output."""

import numpy as np
import pytest
import torch

from bertnpu.model.pooling import pool


@pytest.fixture()
def batch():
    rng = np.random.default_rng(3)
    hidden = rng.normal(size=(3, 5, 4)).astype(np.float32)
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0], [1, 0, 0, 0, 0]])
    hidden[1, 2:] = 1e6  # padding with huge values must never leak into mean or max
    return hidden, mask


def test_mean_and_max_use_real_tokens_only(batch):
    hidden, mask = batch
    h, m = torch.from_numpy(hidden), torch.from_numpy(mask)
    want_mean = np.stack([hidden[i, : mask[i].sum()].mean(0) for i in range(3)])
    want_max = np.stack([hidden[i, : mask[i].sum()].max(0) for i in range(3)])
    assert np.allclose(pool(h, m, None, "mean").numpy(), want_mean, atol=1e-6)
    assert np.array_equal(pool(h, m, None, "max").numpy(), want_max)


def test_cls_and_pooler(batch):
    hidden, mask = batch
    h, m = torch.from_numpy(hidden), torch.from_numpy(mask)
    assert np.array_equal(pool(h, m, None, "cls").numpy(), hidden[:, 0])
    pooled = torch.randn(3, 4)
    assert pool(h, m, pooled, "pooler") is pooled
    with pytest.raises(AssertionError):
        pool(h, m, None, "pooler")
