"""Tables for the notebooks: outlier sites and channels, the applied range of a site, formatted HTML tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..quant.outliers import outlier_table  # noqa: F401  (computed in quant/, re-exported for the notebooks)


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
    """The range the simulator applies to one site, with what a panel needs to draw and describe it.

    ``lo``/``hi`` are the quantization grid's ends as fake-quant uses them: ``[0, hi]`` for a
    symmetric-method site that is never negative (``unsigned``, e.g. softmax), ``[lo, hi]``
    with a zero-point (methods 2/3), else ``[-t, t]``; ``threshold`` is the upper clip point ``hi``
    (the symmetric ``t``). ``shared`` is true when methods 1/3 give the site the range shared by
    every layer's site of its role.
    """

    site: str
    lo: float
    hi: float
    threshold: float
    shared: bool
    unsigned: bool
    clipped_fraction: float
    count: int
    own_threshold: float  # the site's own (per-layer) upper clip point, for comparison

    @property
    def label(self) -> str:
        kind = "shared across layers" if self.shared else "this site only"
        return f"applied, {kind}{', unsigned' if self.unsigned else ''}"


def site_range_view(stats, config, site: str) -> SiteRangeView:
    """The :class:`SiteRangeView` of ``site`` under ``config``: the same ``clip_thresholds`` range
    :func:`~bertnpu.quant.simulate.simulate_int8` applies, so readout, line and title agree.

    Example:
        >>> v = site_range_view(stats, QuantConfig(method=1), "layer.0.ffn.residual")
        >>> v.shared, v.threshold == clip_thresholds(stats, QuantConfig(method=1))["layer.0.ffn.residual"].threshold
        (True, True)
    """
    from ..quant.thresholds import clip_thresholds, clipped_fraction, site_range

    obs = stats[site]
    rng = clip_thresholds(stats, config)[site]
    info = next(s for s in stats.sites if s.name == site)
    unsigned = not config.zero_point and obs.min >= 0
    if config.zero_point:
        lo, hi = rng.lo, rng.hi
    elif unsigned:
        lo, hi = 0.0, rng.hi
    else:
        lo, hi = -rng.threshold, rng.threshold
    return SiteRangeView(site=site, lo=float(lo), hi=float(hi), threshold=float(hi), shared=bool(config.multi_layer and info.layer >= 0),
                         unsigned=bool(unsigned), clipped_fraction=float(clipped_fraction(obs, rng)), count=int(obs.count),
                         own_threshold=float(site_range(obs, config).hi))


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
