"""Quantization parameters of a site: the one place a clip range becomes a grid (scale, zero point, code range).

:func:`calculate_qparams` has the shape of torch.ao's ``Observer.calculate_qparams``: a site's
statistics and the :class:`~bertnpu.quant.config.QuantConfig` in, a frozen :class:`QParams` out.
The simulator (:class:`~bertnpu.quant.simulate.FakeQuantTap`) fake-quantizes with it and the
notebook panels display it, so what a readout states is what the simulation applies.

The rules, once:

* **scheme**: methods 2/3 quantize with a zero point (``affine``, ``[lo, hi]`` widened to include
  0 onto ``0..2^bits-1``); otherwise a site never negative over the calibration set is
  ``unsigned`` (``[0, t]`` onto ``0..2^bits-1``), every other site ``symmetric`` (``[-t, t]``
  onto ``-qmax..qmax``, ``qmax = 2^(bits-1) - 1``, so ``-128`` is never used);
* **scale**: ``t / qmax`` (symmetric), ``t / (2^bits - 1)`` (unsigned), ``(hi - lo) / (2^bits - 1)``
  (affine), with the width floored at ``1e-12``; **zero point** ``round(-lo / scale)`` (affine), else 0;
* **per channel** (``output`` 1, the Linear outputs the simulator names): each channel keeps the
  site's clip ratio, so its abs-max (or min and max, with a zero point) is shrunk by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

import torch

from .config import QuantConfig
from .fake_quant import affine_channel_params, affine_params, qmax_symmetric, symmetric_scale
from .observers import SiteObserver
from .thresholds import ClipRange, clip_thresholds, clipped_fraction, shares_range, site_range

SYMMETRIC, UNSIGNED, AFFINE = "symmetric", "unsigned", "affine"


@dataclass(frozen=True)
class QParams:
    """What fake quantization applies to one site at one width: ``x̂ = (clamp(round(x / scale) + zero_point, qmin, qmax) - zero_point) * scale``.

    ``lo``/``hi``: the clip range as applied (``[-t, t]``, ``[0, t]`` unsigned, ``[lo, hi]`` affine);
    ``scale`` is a float32 tensor (0-dim, or ``[C]`` per channel) for the symmetric schemes and a
    Python float for a per-tensor zero point (``[C]`` tensors per channel); ``clipped_fraction`` is
    the share of the site's calibration values outside ``[lo, hi]``.

    Example:
        >>> qp = calculate_qparams(stats["layer.0.ffn.gelu.out"], QuantConfig(method=2, mode=0))
        >>> qp.scheme, qp.qmin, qp.qmax, qp.scale == (qp.hi - qp.lo) / 255
        ('affine', 0, 255, True)
    """

    scheme: str
    bits: int
    lo: float
    hi: float
    scale: Union[float, torch.Tensor]
    zero_point: Union[int, torch.Tensor]
    qmin: int
    qmax: int
    clipped_fraction: float

    @property
    def threshold(self) -> float:
        """The upper clip point (the symmetric ``t``)."""
        return self.hi

    @property
    def unsigned(self) -> bool:
        return self.scheme == UNSIGNED

    @property
    def per_channel(self) -> bool:
        return isinstance(self.scale, torch.Tensor) and self.scale.dim() > 0


def quant_scheme(obs: SiteObserver, config: QuantConfig) -> str:
    """``affine`` (methods 2/3), ``unsigned`` (a site never negative over the calibration set) or ``symmetric``."""
    if config.zero_point:
        return AFFINE
    return UNSIGNED if obs.min >= 0 else SYMMETRIC


def clip_plan(obs: SiteObserver, rng: ClipRange, config: QuantConfig, per_channel: bool = False) -> tuple:
    """The site's applied range, independent of the bit width: ``("symmetric", t, unsigned)`` (``t`` a float32
    tensor, ``[C]`` per channel), ``("affine", lo, hi)`` or ``("affine_channels", lo [C], hi [C])``.

    This tuple is what the simulator keeps per site (and what a sweep's range signature digests).
    """
    scheme = quant_scheme(obs, config)
    if scheme == AFFINE:
        if per_channel and (obs.min < 0 or obs.max > 0):
            # per-channel zero points: each channel's [min, max] keeps the site's clip ratio on each side
            lo = obs.channel_min.float() * (rng.lo / obs.min if obs.min < 0 else 0.0)
            hi = obs.channel_max.float() * (rng.hi / obs.max if obs.max > 0 else 0.0)
            return ("affine_channels", lo, hi)
        return ("affine", rng.lo, rng.hi)
    unsigned = scheme == UNSIGNED
    threshold = torch.tensor(rng.hi if unsigned else rng.threshold)
    if per_channel and obs.absmax > 0:
        # per-channel scales: each channel keeps the site's clip ratio
        threshold = (obs.channel_absmax.float() * (rng.threshold / obs.absmax)).clamp(min=1e-12)
    return ("symmetric", threshold, unsigned)


def plan_grid(plan: tuple, bits: int, dtype: torch.dtype = torch.float32) -> tuple:
    """``(scale, zero_point, qmin, qmax)`` of a :func:`clip_plan` at ``bits`` (symmetric scales as tensors of ``dtype``)."""
    if plan[0] == "affine":
        scale, zero_point, levels = affine_params(plan[1], plan[2], bits)
        return scale, zero_point, 0, levels
    if plan[0] == "affine_channels":
        scale, zero_point, levels = affine_channel_params(plan[1], plan[2], bits)
        return scale, zero_point, 0, levels
    unsigned = plan[2]
    qmax = (2**bits - 1) if unsigned else qmax_symmetric(bits)
    return symmetric_scale(plan[1], bits, unsigned, dtype), 0, 0 if unsigned else -qmax, qmax


def calculate_qparams(obs: SiteObserver, config: QuantConfig, *, rng: Optional[ClipRange] = None, bits: Optional[int] = None,
                      per_channel: bool = False, dtype: torch.dtype = torch.float32) -> QParams:
    """The :class:`QParams` of one site from its statistics and ``config`` (torch.ao's ``calculate_qparams``).

    Args:
        obs: the site's statistics.
        rng: the clip range to apply (e.g. the one shared across layers by :func:`~bertnpu.quant.thresholds.clip_thresholds`);
            default: the site's own :func:`~bertnpu.quant.thresholds.site_range`.
        bits: the width (default ``config.bits``); per_channel: one scale per channel (``output`` 1 on a Linear output);
        dtype: of the symmetric scale tensor (that of the activations it divides).

    Example:
        >>> qp = calculate_qparams(stats["layer.0.attention.softmax.out"], QuantConfig(method=0, mode=0))
        >>> qp.scheme, qp.lo, qp.qmin, qp.qmax, qp.zero_point
        ('unsigned', 0.0, 0, 255, 0)
    """
    rng = site_range(obs, config) if rng is None else rng
    bits = config.bits if bits is None else bits
    scheme = quant_scheme(obs, config)
    lo, hi = {AFFINE: (rng.lo, rng.hi), UNSIGNED: (0.0, rng.hi), SYMMETRIC: (-rng.threshold, rng.threshold)}[scheme]
    scale, zero_point, qmin, qmax = plan_grid(clip_plan(obs, rng, config, per_channel), bits, dtype)
    return QParams(scheme=scheme, bits=bits, lo=float(lo), hi=float(hi), scale=scale, zero_point=zero_point, qmin=qmin, qmax=qmax,
                   clipped_fraction=float(clipped_fraction(obs, rng)))


@dataclass(frozen=True)
class SiteQParams:
    """A site's :class:`QParams` under ``config`` as the simulator applies them per tensor, with what a panel states beside them.

    ``shared``: methods 1/3 give the site the range shared by every layer's site of its role;
    ``own``: the site's own (per-layer) qparams, for comparison; ``count``: values observed.
    """

    site: str
    qparams: QParams
    own: QParams
    shared: bool
    count: int


def site_qparams(stats, config: QuantConfig, site: str, ranges: Optional[dict[str, ClipRange]] = None) -> SiteQParams:
    """:func:`calculate_qparams` of ``site`` with the range :func:`~bertnpu.quant.thresholds.clip_thresholds` gives it
    (``ranges``: those, when computed already), at ``config.bits`` and one scale per tensor.

    Example:
        >>> s = site_qparams(stats, QuantConfig(method=1), "layer.0.ffn.residual")
        >>> s.shared, s.qparams.threshold == clip_thresholds(stats, QuantConfig(method=1))["layer.0.ffn.residual"].threshold
        (True, True)
    """
    obs = stats[site]
    rng = (clip_thresholds(stats, config) if ranges is None else ranges)[site]
    info = next(s for s in stats.sites if s.name == site)
    return SiteQParams(site=site, qparams=calculate_qparams(obs, config, rng=rng), own=calculate_qparams(obs, config),
                       shared=shares_range(info, config), count=int(obs.count))


__all__ = ["AFFINE", "QParams", "SYMMETRIC", "SiteQParams", "UNSIGNED", "calculate_qparams", "clip_plan", "plan_grid", "quant_scheme", "site_qparams"]
