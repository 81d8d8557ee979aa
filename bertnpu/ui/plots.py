"""Pure plot functions: each takes data (and optionally an Axes) and returns a Figure.

No pyplot state: figures are built with ``matplotlib.figure.Figure`` so notebooks,
reports and tests can share them.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..data.embedding_ranges import ChannelRanges
from .messages import figure_text


def _axes(ax: Optional[Axes], size=(8, 3.5), fast: bool = False, right: float = 0.98) -> tuple[Figure, Axes]:
    """A new Figure and Axes unless ``ax`` is given. ``fast`` uses fixed margins (``right`` leaves
    room for a legend outside the axes) instead of the constrained layout engine, which doubles
    the render time (matters for live sliders)."""
    if ax is not None:
        return ax.figure, ax
    if fast:
        fig = Figure(figsize=size)
        fig.subplots_adjust(left=0.08, right=right, bottom=0.14, top=0.9)
        return fig, fig.add_subplot()
    fig = Figure(figsize=size, layout="constrained")
    return fig, fig.add_subplot()


def plot_channel_ranges(ranges: ChannelRanges, outliers: Sequence[dict] = (), ax: Optional[Axes] = None, annotate_top: int = 3) -> Figure:
    """Per-channel min/max band and p1-p99 band of the calibration embeddings; the ``annotate_top``
    largest channels are labelled with their abs-max over the median channel's (red: in ``outliers``)."""
    fig, ax = _axes(ax)
    ch = np.arange(len(ranges.min))
    ax.fill_between(ch, ranges.min, ranges.max, color="tab:blue", alpha=0.25, step="mid", label="min..max")
    lo = ranges.percentiles[list(ranges.levels).index(1.0)] if 1.0 in ranges.levels else ranges.min
    hi = ranges.percentiles[list(ranges.levels).index(99.0)] if 99.0 in ranges.levels else ranges.max
    ax.fill_between(ch, lo, hi, color="tab:blue", alpha=0.6, step="mid", label="p1..p99")
    median = max(float(np.median(ranges.absmax)), 1e-12)
    flagged = {o["channel"] for o in outliers}
    for c in np.argsort(-ranges.absmax)[:annotate_top]:  # the largest channels, outliers (red) or not (grey)
        c = int(c)
        y = ranges.max[c] if abs(ranges.max[c]) >= abs(ranges.min[c]) else ranges.min[c]
        ax.annotate(f"{c} ({ranges.absmax[c] / median:.1f}x)", (c, y), fontsize=7, color="tab:red" if c in flagged else "dimgrey",
                    xytext=(3, 0), textcoords="offset points")
    ax.set_xlabel("hidden channel")
    ax.set_ylabel("embedding value")
    ax.set_title(figure_text("fig.channel_range", tokens=ranges.tokens))
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def plot_value_histogram(tokens: np.ndarray, bins: int = 200, ax: Optional[Axes] = None) -> Figure:
    """Histogram of all embedding values (log count), with the abs-max marked."""
    fig, ax = _axes(ax)
    values = np.asarray(tokens).ravel()
    ax.hist(values, bins=bins, color="tab:blue", log=True)
    m = float(np.abs(values).max())
    for x in (-m, m):
        ax.axvline(x, color="tab:red", lw=1, ls="--")
    ax.set_xlabel("embedding value")
    ax.set_ylabel("count (log)")
    ax.set_title(figure_text("fig.all_values", absmax=m))
    return fig


def plot_sequence_lengths(lengths: Sequence[int], ax: Optional[Axes] = None) -> Figure:
    """Histogram of calibration sequence lengths in tokens."""
    fig, ax = _axes(ax, (6, 3))
    lengths = np.asarray(lengths)
    ax.hist(lengths, bins=np.arange(lengths.min(), lengths.max() + 2) - 0.5, color="tab:green")
    ax.set_xlabel("tokens per sample")
    ax.set_ylabel("samples")
    ax.set_title(figure_text("fig.lengths", n=len(lengths), median=float(np.median(lengths))))
    return fig


def plot_coverage(per_channel: np.ndarray, curve: dict, ax: Optional[Axes] = None) -> Figure:
    """Left: eval values outside the calibration range per channel; right: that fraction vs count."""
    if ax is not None:
        fig, left = ax.figure, ax
        right = None
    else:
        fig = Figure(figsize=(10, 3.5), layout="constrained")
        left, right = fig.subplots(1, 2, width_ratios=[2, 1])
    left.bar(np.arange(len(per_channel)), per_channel * 100, color="tab:orange", width=1.0)
    left.set_xlabel("hidden channel")
    left.set_ylabel("% of eval values outside")
    left.set_title(figure_text("fig.outside", pct=per_channel.mean() * 100))
    if right is not None:
        right.plot(curve["counts"], np.asarray(curve["outside_fraction"]) * 100, "o-")
        right.set_xscale("log", base=2)
        right.set_xlabel("calibration samples")
        right.set_ylabel("% outside")
        right.set_title(figure_text("fig.coverage"))
    return fig


def plot_block_placement(blocks: list[dict], ax: Optional[Axes] = None) -> Figure:
    """The model's blocks in order, coloured by placement (CPU / NPU), with parameters and FLOPs."""
    fig, ax = _axes(ax, (9, 0.45 * len(blocks) + 1))
    colors = {"CPU": "tab:orange", "NPU": "tab:blue"}
    for i, b in enumerate(blocks):
        ax.barh(i, 1, color=colors[b["placement"]], edgecolor="white")
        ax.text(0.02, i, f"{b['block']}  [{b['placement']}]  {b['parameters'] / 1e6:.2f} M params, {b['flops'] / 1e6:.1f} MFLOP, {b['ops']} ops",
                va="center", fontsize=8, color="white")
    ax.set_ylim(len(blocks) - 0.5, -0.5)
    ax.set_xlim(0, 1)
    ax.axis("off")
    ax.set_title(figure_text("fig.placement"))
    return fig
