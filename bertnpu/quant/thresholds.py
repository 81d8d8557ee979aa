"""Clip ranges of every site from activation statistics, for qbcompiler's three calibration modes.

qbcompiler's exact algorithms are not public; these are the definitions bertnpu uses.
Let ``N`` be the number of observed values of a site and ``|x|`` their magnitudes.

* **mode 0, Max**: ``T = max |x|`` (zero-point methods: ``[min x, max x]``).
* **mode 1, MaxPercentile(p, r)**: the top ``r`` fraction of values is kept apart, and the
  percentile ``p`` is taken *within* that top set, so ``m = floor(r * (1 - p) * N)`` values
  are clipped and ``T`` is the ``(m + 1)``-th largest ``|x|`` (zero-point methods: ``m``
  values clipped on each side). ``p = 1`` or a tiny ``r`` gives Max. Exact while ``m`` <
  1024 (the kept top values), within one histogram bin (1.09 %) beyond.
* **mode 2, Histogram**: the ``T`` on the histogram's bin edges (up to the max) minimizing
  the expected squared error ``sum_{|x| > T} (|x| - T)^2 + N_{|x| <= T} * step^2 / 12``
  with ``step = T / (2^(bits-1) - 1)`` (clipping error plus uniform rounding noise).
* **multi-layer (methods 1 and 3)**: the sites of one role (e.g. every
  ``layer.*.ffn.gelu.out``) share one range: the union of their per-site ranges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .observers import EDGES, SiteObserver, tail_from
from .config import QuantConfig

CENTERS = np.sqrt(EDGES[:-1] * EDGES[1:])
CENTERS[0] = 0.0  # bin 0 also holds zeros and tiny values


@dataclass(frozen=True)
class ClipRange:
    """Quantization range of one site; symmetric ranges have ``lo == -hi``."""

    lo: float
    hi: float

    @property
    def threshold(self) -> float:
        return max(abs(self.lo), abs(self.hi))


def clipped_share(percentile: float, topk_ratio: float) -> float:
    """Share of a site's values MaxPercentile clips: ``topk_ratio * (1 - percentile)`` (the percentile is taken within the top set)."""
    return topk_ratio * (1.0 - percentile)


def clipped_count(count: int, percentile: float, topk_ratio: float) -> int:
    """Values clipped by MaxPercentile: ``floor(topk_ratio * (1 - percentile) * count)``."""
    return int(math.floor(clipped_share(percentile, topk_ratio) * count + 1e-9))


def mse_threshold(hist: np.ndarray, absmax: float, bits: int) -> float:
    """Histogram-mode threshold: argmin over bin edges of clipping + rounding squared error."""
    if hist.sum() == 0 or absmax <= 0:
        return float(absmax)
    levels = 2 ** (bits - 1) - 1
    top_bin = int(np.flatnonzero(hist)[-1])
    candidates = EDGES[1 : top_bin + 2].copy()
    candidates[-1] = absmax
    # suffix sums over bins above each candidate's bin: sum h, sum h c, sum h c^2
    h = hist[: top_bin + 1]
    c = np.minimum(CENTERS[: top_bin + 1], absmax)
    s0 = np.concatenate([np.cumsum((h)[::-1])[::-1][1:], [0.0]])
    s1 = np.concatenate([np.cumsum((h * c)[::-1])[::-1][1:], [0.0]])
    s2 = np.concatenate([np.cumsum((h * c * c)[::-1])[::-1][1:], [0.0]])
    inside = h.sum() - s0
    t = candidates
    error = s2 - 2 * t * s1 + t * t * s0 + inside * (t / levels) ** 2 / 12
    return float(t[int(np.argmin(error))])


def site_range(obs: SiteObserver, config: QuantConfig) -> ClipRange:
    """Clip range of one site under ``config`` (before multi-layer sharing)."""
    if config.mode == 0:
        return ClipRange(obs.min, obs.max) if config.zero_point else ClipRange(-obs.absmax, obs.absmax)
    if config.mode == 1:
        m = clipped_count(obs.count, config.percentile, config.topk_ratio)
        if config.zero_point:
            hi = obs.tail_value(m, "pos") if obs.max > 0 else obs.max
            lo = -obs.tail_value(m, "neg") if obs.min < 0 else obs.min
            return ClipRange(lo, hi)
        t = obs.tail_value(m, "abs")
        return ClipRange(-t, t)
    if config.zero_point:
        hi = mse_threshold(obs.pos_hist.numpy(), max(obs.max, 0.0), config.bits + 1) if obs.max > 0 else obs.max
        lo = -mse_threshold(obs.neg_hist.numpy(), max(-obs.min, 0.0), config.bits + 1) if obs.min < 0 else obs.min
        return ClipRange(lo, hi)
    t = mse_threshold(obs.abs_hist(), obs.absmax, config.bits)
    return ClipRange(-t, t)


def shares_range(site, config: QuantConfig) -> bool:
    """Whether methods 1/3 give ``site`` (a :class:`~bertnpu.quant.sites.SiteInfo`) the range shared by its role across layers
    (the embeddings and pooler sites, outside the layers, keep their own)."""
    return config.multi_layer and site.layer >= 0


def clip_thresholds(stats, config: QuantConfig) -> dict[str, ClipRange]:
    """Clip range of every site of ``stats`` (an :class:`~bertnpu.stats.ActivationStats`).

    Example:
        >>> r = clip_thresholds(stats, QuantConfig(mode=1, percentile=0.999, topk_ratio=0.01))
        >>> r["layer.0.attention.softmax.out"].hi <= 1.0
        True
    """
    ranges = {s.name: site_range(stats[s.name], config) for s in stats.sites}
    if config.multi_layer:
        groups: dict[str, list[str]] = {}
        for s in stats.sites:
            if shares_range(s, config):
                groups.setdefault(s.role, []).append(s.name)
        for names in groups.values():
            shared = ClipRange(min(ranges[n].lo for n in names), max(ranges[n].hi for n in names))
            for n in names:
                ranges[n] = shared
    return ranges


def clipped_fraction(obs: SiteObserver, rng: ClipRange) -> float:
    """Fraction of the site's observed values outside ``rng`` (exact within the kept top values)."""
    if obs.count == 0:
        return 0.0

    def above(top: np.ndarray, hist: np.ndarray, t: float) -> float:
        if t < 0:
            return float(hist.sum())
        if len(top) and top[-1] <= t:
            return float((top > t).sum())
        return float(hist[EDGES[:-1] >= t].sum())

    hi = above(np.asarray(obs.top_pos), obs.pos_hist.numpy(), rng.hi)
    lo = above(np.asarray(obs.top_neg), obs.neg_hist.numpy(), -rng.lo)
    return (hi + lo) / obs.count


def threshold_stability(stats, config: QuantConfig) -> dict[str, float]:
    """Relative spread (std / mean) of each site's symmetric threshold over the bootstrap replicas.

    Each replica re-weights the calibration samples by Poisson(1) counts; a spread of a few
    percent means the calibration set is large enough for that site.
    """
    out = {}
    for s in stats.sites:
        obs = stats[s.name]
        values = []
        for hist in obs.replica_hist.numpy():
            total = hist.sum()
            if total == 0:
                continue
            top_bin = int(np.flatnonzero(hist)[-1])
            if config.mode == 0:
                t = float(EDGES[top_bin + 1])
            elif config.mode == 1:
                t = tail_from(hist, np.zeros(0), clipped_count(int(total), config.percentile, config.topk_ratio))
            else:
                t = mse_threshold(hist, float(EDGES[top_bin + 1]), config.bits)
            values.append(t)
        values = np.asarray(values)
        out[s.name] = float(values.std() / values.mean()) if len(values) > 1 and values.mean() > 0 else 0.0
    return out
