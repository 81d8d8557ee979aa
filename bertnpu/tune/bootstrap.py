"""Paired bootstrap over STS-B pairs: a 95 % interval for a Spearman, and for its difference to FP32.

An STS-B Spearman is a statistic of the n pairs that were drawn; a resample draws n pairs with
replacement and recomputes it. The resamples are one seeded ``(B, n)`` index matrix that
depends only on ``(n, resamples, seed)``, so two models scored on the same pairs see the *same*
resampled pairs: the difference between their resampled Spearman values is paired, and its
interval is much narrower than the two intervals side by side suggest.

Speed: the Spearman of a resample equals the Pearson correlation of average ranks of the
resampled rows. A resample is a count per original pair (``C[b, i]`` copies of pair ``i``), and
the average rank of pair ``i`` within resample ``b`` is the number of resampled copies of smaller
values plus half the copies of equal ones, plus one half: a cumulative sum of counts in the
value's sorted order, computed for all ``B`` resamples at once (one sort of ``n`` values, no
sort per resample). The gold scores' ranks are computed once per split; a model's costs a few
``(B, n)`` array passes (about 10-30 ms for 1379 pairs x 1000 resamples).

Intervals are percentile intervals (the 2.5th and 97.5th percentiles of the resampled values).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def resample_counts(n: int, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """``[resamples, n]`` counts: how often each of the ``n`` pairs is drawn in each resample (rows sum to ``n``).

    The draws are ``numpy.random.default_rng(seed).integers(0, n, (resamples, n))``, so equal
    ``(n, resamples, seed)`` give equal resamples in any process.
    """
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    flat = (idx + (np.arange(resamples) * n)[:, None]).ravel()
    return np.bincount(flat, minlength=resamples * n).reshape(resamples, n).astype(np.float64)


def resampled_ranks(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """``[B, n]`` average rank (1-based, ties averaged) of each pair's value within each resample, centred on ``(n + 1) / 2``.

    ``counts``: :func:`resample_counts`. Entries of pairs not drawn in a resample are meaningless
    (they get weight 0 in :func:`weighted_corr`).
    """
    values = np.asarray(values, dtype=np.float64)
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    c = counts[:, order]
    # ties in the original values: one group per distinct value (copies of one pair are ties too)
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    group_counts = np.add.reduceat(c, starts, axis=1)
    below = np.cumsum(group_counts, axis=1) - group_counts
    group_rank = below + (group_counts + 1.0) / 2.0
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, len(values)]))
    ranks = np.empty_like(c)
    ranks[:, order] = group_rank[:, group_of]
    return ranks - (counts.shape[1] + 1) / 2.0


def weighted_corr(ranks_x: np.ndarray, ranks_y: np.ndarray, counts: np.ndarray, norm_y: Optional[np.ndarray] = None) -> np.ndarray:
    """Per resample, Pearson correlation of centred ranks weighted by the counts (``[B]``; NaN where a resample is constant)."""
    num = (counts * ranks_x * ranks_y).sum(1)
    nx = (counts * ranks_x * ranks_x).sum(1)
    ny = (counts * ranks_y * ranks_y).sum(1) if norm_y is None else norm_y
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / np.sqrt(nx * ny)


def percentile_interval(samples: np.ndarray, level: float = LEVEL) -> list[float]:
    """``[lo, hi]``: the percentile interval of ``samples`` (NaN resamples, from constant data, left out)."""
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.nanpercentile(np.asarray(samples, dtype=np.float64), [tail, 100.0 - tail])
    return [float(lo), float(hi)]


class PairedBootstrap:
    """Resampled Spearman of pair scores against fixed gold scores; one object per split, reused for every model.

    Example:
        >>> boot = PairedBootstrap(gold)                   # gold: [n] human scores
        >>> fp32 = boot.samples(fp32_cosines)              # [1000] resampled Spearman values
        >>> boot.interval(boot.samples(int8_cosines) - fp32)  # paired interval of the difference  # doctest: +SKIP
        [-0.028, -0.013]
    """

    def __init__(self, gold: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL):
        self.gold = np.asarray(gold, dtype=np.float64)
        self.n, self.resamples, self.seed, self.level = len(self.gold), resamples, seed, level
        self.counts = resample_counts(self.n, resamples, seed)
        self.gold_ranks = resampled_ranks(self.gold, self.counts)
        self.gold_norm = (self.counts * self.gold_ranks * self.gold_ranks).sum(1)
        self._recent: dict[bytes, np.ndarray] = {}  # FP32's resamples are asked for once per compared model: computed once

    def samples(self, values: Sequence[float]) -> np.ndarray:
        """``[B]`` Spearman of ``values`` (one score per pair, e.g. its cosine) against gold, per resample."""
        values = np.asarray(values, dtype=np.float64)
        assert values.shape == (self.n,), f"one value per pair: expected {self.n}, got {values.shape}"
        key = values.tobytes()
        if key not in self._recent:
            if len(self._recent) >= 4:
                self._recent.pop(next(iter(self._recent)))
            self._recent[key] = weighted_corr(resampled_ranks(values, self.counts), self.gold_ranks, self.counts, self.gold_norm)
        return self._recent[key]

    def interval(self, samples: np.ndarray) -> list[float]:
        return percentile_interval(samples, self.level)


_CACHE: dict[tuple, PairedBootstrap] = {}


def bootstrap_for(gold: Sequence[float], resamples: int = RESAMPLES, seed: int = SEED) -> PairedBootstrap:
    """The :class:`PairedBootstrap` of these gold scores, built once per process (a sweep scores many models on one split)."""
    gold = np.asarray(gold, dtype=np.float64)
    key = (gold.tobytes(), resamples, seed)
    if key not in _CACHE:
        if len(_CACHE) >= 8:  # a few splits per process; never grow without bound
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = PairedBootstrap(gold, resamples, seed)
    return _CACHE[key]


def interval_fields(cosines: Sequence[float], gold: Sequence[float], point: float, reference: Optional[Sequence[float]] = None,
                    reference_point: Optional[float] = None) -> dict:
    """The agreed JSON keys of one evaluated entry: ``spearman_ci``, and with a ``reference`` (FP32's pair cosines and its
    Spearman ``reference_point``) ``diff_to_fp32`` (the point difference) and ``diff_to_fp32_ci`` (paired)."""
    boot = bootstrap_for(gold)
    own = boot.samples(cosines)
    out = {"spearman_ci": boot.interval(own)}
    if reference is not None:
        assert reference_point is not None, "the difference needs FP32's point Spearman"
        out["diff_to_fp32"] = float(point - reference_point)
        out["diff_to_fp32_ci"] = boot.interval(own - boot.samples(reference))
    return out


def paired_difference_ci(cosines_a: Sequence[float], cosines_b: Sequence[float], gold: Sequence[float]) -> list[float]:
    """Paired 95 % interval of Spearman(a) - Spearman(b) over the same resampled pairs."""
    boot = bootstrap_for(gold)
    return boot.interval(boot.samples(cosines_a) - boot.samples(cosines_b))


def noise_verdict(ci: Sequence[float]) -> str:
    """``"within"`` when the interval of a difference contains 0, else ``"below"`` or ``"above"``."""
    lo, hi = ci
    return "below" if hi < 0 else "above" if lo > 0 else "within"
