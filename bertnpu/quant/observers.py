"""Streaming activation observers: *accumulate* batches, then *derive* ranges and tail values.

State per site, bounded independently of the number of calibration samples:

* count, min, max, and per-channel abs-max, min (with 0) and max (with 0) (``3 C`` floats);
* log-spaced histograms of positive values and of negative magnitudes,
  ``NBINS`` = 40 octaves x 64 bins per octave = 2560 bins each (relative bin width 1.09 %,
  from 2^-24 to 2^16; smaller magnitudes go to bin 0, larger ones to the last bin);
* the ``TOPK`` = 1024 largest positive values and largest negative magnitudes, so tail
  values are exact when fewer than 1024 values are clipped;
* the |x| histogram split by token role ([CLS], [SEP], content): 3 x NBINS;
* ``REPLICAS`` = 16 Poisson-bootstrap replicas of the |x| histogram (each sample is
  weighted Poisson(1) per replica, seeded by its index), for threshold stability.

That is about (2 + 3 + 16) x 2560 + 2 x 1024 + C numbers per site, whatever the sample count.
"""

from __future__ import annotations

import numpy as np
import torch

LOG2_MIN, LOG2_MAX, BINS_PER_OCTAVE = -24, 16, 64
NBINS = (LOG2_MAX - LOG2_MIN) * BINS_PER_OCTAVE
EDGES = 2.0 ** (LOG2_MIN + np.arange(NBINS + 1) / BINS_PER_OCTAVE)  # bin b holds [EDGES[b], EDGES[b+1])
TOPK = 1024
REPLICAS = 16
NROLES = 3
CHUNK_VALUES = 1 << 21  # values binned at once


def bin_float(magnitude: torch.Tensor) -> torch.Tensor:
    """Histogram bin of each non-negative value as float32 (0 and tiny values -> bin 0)."""
    # float32 log2 is exact enough: bins are 1.09 % wide
    b = (torch.log2(magnitude.float()) - LOG2_MIN).mul_(BINS_PER_OCTAVE).floor_()
    return torch.nan_to_num_(b, nan=0.0, neginf=0.0).clamp_(0, NBINS - 1)


def bin_index(magnitude: torch.Tensor) -> torch.Tensor:
    """Histogram bin of each non-negative value (0 and tiny values -> bin 0)."""
    return bin_float(magnitude).long()


def bootstrap_weights(sample_index: np.ndarray, seed: int = 0) -> torch.Tensor:
    """Poisson(1) weights ``[REPLICAS, n]`` per sample, fixed by each sample's global index."""
    w = np.stack([np.random.default_rng([seed, int(i)]).poisson(1.0, REPLICAS) for i in sample_index], axis=1)
    return torch.from_numpy(w.astype(np.float64))


def _merge_top(old: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
    """The TOPK largest positive values of ``old`` and ``flat``, largest first."""
    floor = old[-1] if old.numel() == TOPK else 0.0
    new = flat[flat > floor]  # usually a handful once the store is full
    both = torch.cat([old, new])
    return torch.topk(both, min(TOPK, both.numel())).values if both.numel() else both


class SiteObserver:
    """Statistics of one site. ``update(values, roles, samples, weights)`` accumulates; the rest derives."""

    def __init__(self, channels: int):
        self.channels = channels
        self.count = 0
        self.min = float("inf")
        self.max = float("-inf")
        self.channel_absmax = torch.zeros(channels, dtype=torch.float64)
        self.channel_min = torch.zeros(channels, dtype=torch.float64)  # min(0, every value of the channel)
        self.channel_max = torch.zeros(channels, dtype=torch.float64)  # max(0, every value of the channel)
        self.pos_hist = torch.zeros(NBINS, dtype=torch.float64)
        self.neg_hist = torch.zeros(NBINS, dtype=torch.float64)
        self.top_pos = torch.zeros(0, dtype=torch.float32)
        self.top_neg = torch.zeros(0, dtype=torch.float32)
        self.role_hist = torch.zeros(NROLES, NBINS, dtype=torch.float64)
        self.replica_hist = torch.zeros(REPLICAS, NBINS, dtype=torch.float64)

    def update(self, values: torch.Tensor, roles: torch.Tensor, samples: torch.Tensor, weights: torch.Tensor) -> None:
        """Accumulate valid (unpadded) values.

        Args: values ``[n, C]``; roles ``[n]`` (0 cls, 1 sep, 2 content); samples ``[n]``
        (row of ``weights``' columns); weights ``[REPLICAS, batch]`` bootstrap weights.
        """
        if values.numel() == 0:
            return
        rows = max(1, CHUNK_VALUES // values.shape[1])
        if values.shape[0] > rows:  # bound the transient memory of the bin keys
            for start in range(0, values.shape[0], rows):
                sl = slice(start, start + rows)
                self.update(values[sl], roles[sl], samples[sl], weights)
            return
        v = values.detach().float()
        a = v.abs()
        self.count += v.numel()
        self.min = min(self.min, float(v.min()))
        self.max = max(self.max, float(v.max()))
        self.channel_absmax = torch.maximum(self.channel_absmax, a.amax(0).double())
        self.channel_min = torch.minimum(self.channel_min, v.amin(0).double())
        self.channel_max = torch.maximum(self.channel_max, v.amax(0).double())
        # One bincount over a joint key (sample, role, sign, bin); every histogram is a sum of it.
        batch = weights.shape[1]
        token_key = ((samples * NROLES + roles) * (2 * NBINS)).float()  # exact: keys stay far below 2^24
        key = bin_float(a).add_((v < 0).float().mul_(NBINS)).add_(token_key[:, None]).long()
        joint = torch.bincount(key.reshape(-1), minlength=batch * NROLES * 2 * NBINS).view(batch, NROLES, 2, NBINS).double()
        by_sign = joint.sum((0, 1))
        self.pos_hist += by_sign[0]
        self.neg_hist += by_sign[1]
        self.role_hist += joint.sum((0, 2))
        self.replica_hist += weights @ joint.sum((1, 2))
        flat = v.reshape(-1)
        self.top_pos = _merge_top(self.top_pos, flat)
        self.top_neg = _merge_top(self.top_neg, -flat)

    # ---- derive -------------------------------------------------------------------------
    @property
    def absmax(self) -> float:
        return max(abs(self.min), abs(self.max))

    def abs_hist(self) -> np.ndarray:
        return (self.pos_hist + self.neg_hist).numpy()

    def top_abs(self) -> np.ndarray:
        both = torch.cat([self.top_pos, self.top_neg])
        return torch.sort(both, descending=True).values[:TOPK].numpy()

    def tail_value(self, clipped: int, side: str = "abs") -> float:
        """The (clipped + 1)-th largest value of |x| (``abs``), x (``pos``) or -x (``neg``).

        Exact while ``clipped`` < the kept top values; otherwise the upper edge of the
        histogram bin holding it (within one bin, 1.09 % relative).
        """
        top = {"abs": self.top_abs(), "pos": self.top_pos.numpy(), "neg": self.top_neg.numpy()}[side]
        hist = {"abs": self.abs_hist(), "pos": self.pos_hist.numpy(), "neg": self.neg_hist.numpy()}[side]
        return tail_from(hist, top, clipped, exact_cap=TOPK)

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {
            "scalars": np.array([self.count, self.min, self.max], dtype=np.float64),
            "channel_absmax": self.channel_absmax.numpy(), "channel_min": self.channel_min.numpy(), "channel_max": self.channel_max.numpy(),
            "pos_hist": self.pos_hist.numpy(), "neg_hist": self.neg_hist.numpy(),
            "top_pos": self.top_pos.numpy(), "top_neg": self.top_neg.numpy(),
            "role_hist": self.role_hist.numpy(), "replica_hist": self.replica_hist.numpy(),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "SiteObserver":
        obs = cls(len(arrays["channel_absmax"]))
        count, obs.min, obs.max = arrays["scalars"].tolist()
        obs.count = int(count)
        for key in ("channel_absmax", "channel_min", "channel_max", "pos_hist", "neg_hist", "top_pos", "top_neg", "role_hist", "replica_hist"):
            setattr(obs, key, torch.from_numpy(np.array(arrays[key])))
        return obs

    def state_size(self) -> int:
        """Numbers held: the documented bound (independent of the sample count)."""
        return sum(int(np.asarray(x).size) for x in self.to_arrays().values())


def tail_from(hist: np.ndarray, top: np.ndarray, clipped: int, exact_cap: int = TOPK) -> float:
    """(clipped + 1)-th largest value from exact top values or, deeper, a histogram's upper bin edge."""
    total = float(hist.sum())
    if total == 0:
        return 0.0
    clipped = int(min(max(clipped, 0), total - 1))
    if clipped < len(top) and (len(top) < exact_cap or clipped < exact_cap):
        return float(top[clipped])
    from_top = np.cumsum(hist[::-1])  # values in the top bins, largest first
    b = NBINS - 1 - int(np.searchsorted(from_top, clipped + 1))
    return float(min(EDGES[b + 1], top[0] if len(top) else EDGES[b + 1]))
