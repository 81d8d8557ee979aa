"""What range of embedding values a calibration set covers, per channel and against an eval split."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

PERCENTILES = (0.1, 1.0, 50.0, 99.0, 99.9)


@dataclass(frozen=True)
class ChannelRanges:
    """Per-channel statistics over all calibration tokens; every array is ``[hidden]``.

    ``percentiles`` is ``[len(PERCENTILES), hidden]`` for the levels in ``levels``.
    """

    min: np.ndarray
    max: np.ndarray
    absmax: np.ndarray
    percentiles: np.ndarray
    levels: tuple[float, ...]
    tokens: int


def channel_ranges(tokens: np.ndarray, levels: Sequence[float] = PERCENTILES) -> ChannelRanges:
    """Args: tokens ``[n_tokens, hidden]`` (e.g. ``CalibrationSet.tokens()``)."""
    tokens = np.asarray(tokens, dtype=np.float32)
    return ChannelRanges(
        min=tokens.min(0), max=tokens.max(0), absmax=np.abs(tokens).max(0),
        percentiles=np.percentile(tokens, levels, axis=0), levels=tuple(levels), tokens=len(tokens),
    )


def outlier_channels(ranges: ChannelRanges, factor: float = 4.0) -> list[dict]:
    """Channels whose abs-max exceeds ``factor`` times the median channel's abs-max, largest first."""
    median = float(np.median(ranges.absmax))
    ratio = ranges.absmax / max(median, 1e-12)
    idx = np.flatnonzero(ratio > factor)
    idx = idx[np.argsort(-ratio[idx])]
    return [{"channel": int(i), "absmax": float(ranges.absmax[i]), "ratio_to_median": float(ratio[i]),
             "min": float(ranges.min[i]), "max": float(ranges.max[i])} for i in idx]


def outside_fraction(calib_tokens: np.ndarray, eval_tokens: np.ndarray) -> tuple[np.ndarray, float]:
    """Fraction of eval values outside the calibration's per-channel [min, max].

    Returns ``(per_channel [hidden], overall)``.
    """
    lo, hi = calib_tokens.min(0), calib_tokens.max(0)
    outside = (eval_tokens < lo) | (eval_tokens > hi)
    return outside.mean(0), float(outside.mean())


def coverage_curve(calib_arrays: Sequence[np.ndarray], eval_tokens: np.ndarray, counts: Sequence[int] | None = None) -> dict[str, list]:
    """Overall outside fraction of the eval split as the calibration count grows (16, 32, ... all).

    Uses the first ``count`` samples in file order (a random order for the random strategy).
    """
    n = len(calib_arrays)
    if counts is None:
        counts = [c for c in (2 ** k for k in range(4, 20)) if c < n] + [n]
    lo = np.full(eval_tokens.shape[1], np.inf, dtype=np.float32)
    hi = np.full(eval_tokens.shape[1], -np.inf, dtype=np.float32)
    fractions, done = [], 0
    for c in counts:
        for a in calib_arrays[done:c]:  # running min/max: each sample is read once
            lo = np.minimum(lo, a[0].min(0))
            hi = np.maximum(hi, a[0].max(0))
        done = c
        fractions.append(float(((eval_tokens < lo) | (eval_tokens > hi)).mean()))
    return {"counts": list(counts), "outside_fraction": fractions}
