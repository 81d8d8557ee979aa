"""Tables for the notebooks: outlier sites and channels, the applied range of a site, formatted HTML tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant.outliers import outlier_table  # noqa: F401  (computed in quant/, re-exported for the notebooks)
from ..quant.qparams import SiteQParams, site_qparams


def role_summary(obs) -> dict[str, dict]:
    """Max |x| and value count per token role ([CLS], [SEP], content) of one site, from its role histograms."""
    from ..quant.observers import EDGES

    out = {}
    for i, role in enumerate(("cls", "sep", "content")):
        hist = obs.role_hist[i].numpy()
        nz = np.flatnonzero(hist)
        out[role] = {"count": int(hist.sum()), "absmax_upper": float(EDGES[nz[-1] + 1]) if len(nz) else 0.0}
    return out


@dataclass(frozen=True)
class SiteRangeView:
    """The quantization parameters the simulator applies to one site, read out for a panel to draw and describe.

    Every number comes from :func:`~bertnpu.quant.qparams.site_qparams` (``of``); this only names them
    for display. ``lo``/``hi`` are the clip range as fake quantization applies it: ``[0, hi]`` for a
    symmetric-method site that is never negative (``unsigned``, e.g. softmax), ``[lo, hi]`` with a
    zero-point (methods 2/3), else ``[-t, t]``; ``threshold`` is the upper clip point ``hi`` (the
    symmetric ``t``); ``scale``, ``zero_point`` and ``qmin..qmax`` are the grid at ``config.bits``,
    one per tensor (under ``output`` 1 the simulator shrinks it per channel of a Linear output).
    ``shared`` is true when methods 1/3 give the site the range shared by every layer's site of its role.
    """

    of: SiteQParams

    site = property(lambda self: self.of.site)
    lo = property(lambda self: self.of.qparams.lo)
    hi = property(lambda self: self.of.qparams.hi)
    threshold = property(lambda self: self.of.qparams.threshold)
    unsigned = property(lambda self: self.of.qparams.unsigned)
    clipped_fraction = property(lambda self: self.of.qparams.clipped_fraction)
    scale = property(lambda self: float(self.of.qparams.scale))
    zero_point = property(lambda self: int(self.of.qparams.zero_point))
    qmin = property(lambda self: self.of.qparams.qmin)
    qmax = property(lambda self: self.of.qparams.qmax)
    bits = property(lambda self: self.of.qparams.bits)
    shared = property(lambda self: self.of.shared)
    count = property(lambda self: self.of.count)
    own_threshold = property(lambda self: self.of.own.threshold)  # the site's own (per-layer) upper clip point, for comparison

    @property
    def label(self) -> str:
        kind = "shared across layers" if self.shared else "this site only"
        return f"applied, {kind}{', unsigned' if self.unsigned else ''}"


def site_range_view(stats, config, site: str, ranges=None) -> SiteRangeView:
    """The :class:`SiteRangeView` of ``site`` under ``config``: the :func:`~bertnpu.quant.qparams.site_qparams`
    the simulator applies (``ranges``: ``clip_thresholds(stats, config)`` when at hand), so readout, line and title agree.

    Example:
        >>> v = site_range_view(stats, QuantConfig(method=1), "layer.0.ffn.residual")
        >>> v.shared, v.threshold == clip_thresholds(stats, QuantConfig(method=1))["layer.0.ffn.residual"].threshold
        (True, True)
    """
    return SiteRangeView(site_qparams(stats, config, site, ranges))


def format_value(value, digits: int = 4) -> str:
    """A table cell: integers with thousands separators, floats rounded (large ones separated too)."""
    import math

    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if not math.isfinite(value):
            return str(value)
        if abs(value) >= 1e4:
            return f"{value:,.0f}"
        return f"{value:.{digits}f}" if abs(value) >= 10 ** -digits or value == 0 else f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return " x ".join(format_value(v, digits) for v in value)
    return str(value)


def html_table(rows, columns=None, units=None, digits: int = 4, max_height: int | None = None) -> str:
    """An HTML table of dict rows: thousands separators, ``units`` per column in the header
    (e.g. ``{"flops": "FLOP"}``), right-aligned numbers; ``max_height`` (px) makes it scroll."""
    import html

    rows = list(rows)
    if not rows:
        return "<p>(none)</p>"
    columns = list(columns or rows[0].keys())
    units = units or {}

    def align(v) -> str:
        return "right" if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) else "left"

    # a header sits over its column: left over text, right over numbers (judged by the first non-empty cell)
    firsts = {c: next((r.get(c) for r in rows if r.get(c) not in (None, "")), None) for c in columns}
    from .messages import label

    def header(c: str) -> str:  # in the page's language (catalogue), else the column's own name
        unit = f" ({html.escape(label('unit.' + units[c]))})" if c in units else ""
        return f"<th style='text-align:{align(firsts[c])}'>{html.escape(label('column.' + c))}{unit}</th>"

    head = "".join(header(c) for c in columns)

    def cell(v) -> str:
        return f"<td style='text-align:{align(v)}'>{html.escape(format_value(v, digits))}</td>"

    body = "".join("<tr>" + "".join(cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
    table = f"<table class='bertnpu-table'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if max_height:
        return f"<div class='bertnpu-scroll' style='max-height:{max_height}px;overflow:auto'>{table}</div>"
    return table
