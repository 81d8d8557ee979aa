"""Pure plot functions over activation statistics; each returns a Figure."""

from __future__ import annotations

from typing import Optional

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..quant.observers import EDGES
from .plots import _axes
from ..quant.thresholds import ClipRange

_PLAIN = FuncFormatter(lambda v, _: f"{v:g}")


SHORT_ROLES = {
    "attention.query.out": "q", "attention.key.out": "k", "attention.value.out": "v", "attention.scores": "scores",
    "attention.softmax.out": "softmax", "attention.output.in": "ctx", "attention.output.out": "attn out",
    "attention.residual": "attn resid", "attention.layernorm.out": "attn LN", "ffn.intermediate.out": "ffn in",
    "ffn.gelu.out": "gelu", "ffn.output.out": "ffn out", "ffn.residual": "ffn resid", "ffn.layernorm.out": "ffn LN",
}


def short_site_label(site) -> str:
    """A short tick label for a site: ``L3 ffn resid``, ``embeddings``, ``pooler``."""
    if site.layer < 0:
        return site.name.replace(".out", "").replace(".dense", " dense")
    return f"L{site.layer} {SHORT_ROLES.get(site.role, site.role)}"


def plot_site_ranges(stats, ranges: dict[str, ClipRange], ax: Optional[Axes] = None) -> Figure:
    """Every site's max |x| (bar) against the clip threshold applied to it (red dot), log scale,
    each bar labelled with its site; vertical lines separate the layers."""
    names = [s.name for s in stats.sites]
    fig, ax = _axes(ax, (max(12.0, 0.16 * len(names) + 2), 5))
    x = np.arange(len(names))
    absmax = np.array([stats[n].absmax for n in names])
    mins = np.array([abs(min(stats[n].min, 0.0)) for n in names])
    maxs = np.array([max(stats[n].max, 0.0) for n in names])
    thr = np.array([ranges[n].threshold for n in names])
    ax.bar(x, absmax, color="tab:blue", alpha=0.35, label="max |x| over the calibration set")
    ax.scatter(x, maxs, marker="^", color="tab:blue", s=9, zorder=3, label="max x")
    ax.scatter(x, np.where(mins > 0, mins, np.nan), marker="v", color="tab:green", s=9, zorder=3, label="|min x| (negative values)")
    ax.scatter(x, thr, color="tab:red", s=12, zorder=4, label="clip threshold applied (values above are clipped)")
    ax.set_yscale("log")
    layers = [s.layer for s in stats.sites]
    for i in range(1, len(layers)):
        if layers[i] != layers[i - 1]:
            ax.axvline(i - 0.5, color="grey", lw=0.5)
    ax.set_xticks(x, [short_site_label(s) for s in stats.sites], rotation=90, fontsize=6)
    ax.set_xlim(-0.7, len(names) - 0.3)
    ax.set_ylabel("magnitude (log)")
    ax.set_title("Activation ranges of all quantization sites vs the clip thresholds applied")
    ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, 1.08), ncol=4, frameon=False)
    return fig


def plot_site_histogram(obs, view, references: Optional[dict[str, float]] = None, ax: Optional[Axes] = None) -> Figure:
    """One site's value histogram with the applied clip range drawn from ``view`` (a
    :class:`~bertnpu.ui.range_tables.SiteRangeView`), and optional reference thresholds.

    The line, the title and the clipped fraction all come from ``view``, the range the
    simulator applies (shared across layers under methods 1/3, and labelled so). An unsigned
    site (never negative, e.g. softmax) is drawn on its ``[0, hi]`` range.
    """
    fig, ax = _axes(ax, (9, 3.4), fast=True, right=0.66)
    hist = obs.abs_hist()
    nz = np.flatnonzero(hist)
    lo_bin, hi_bin = (nz[0], nz[-1]) if len(nz) else (0, 1)
    counts = hist[lo_bin : hi_bin + 1].astype(float)
    edges = EDGES[lo_bin : hi_bin + 2]
    # a step-filled collection, not a stairs patch: matplotlib walks a patch's Bezier segments on every draw
    ax.fill_between(edges, np.append(counts, counts[-1]), 0.8, step="post", color="tab:blue", alpha=0.6, lw=0, label="calibration values")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylim(0.8, max(counts.max(), 1.0) * 2)
    ax.xaxis.set_major_formatter(_PLAIN)  # plain tick labels: mathtext parsing of 10^k labels costs ~100 ms a redraw
    ax.yaxis.set_major_formatter(_PLAIN)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.yaxis.set_minor_formatter(NullFormatter())
    for (label, t), color in zip((references or {}).items(), ("black", "tab:green", "tab:purple", "tab:olive")):
        ax.axvline(t, color=color, ls="--", lw=1.0, label=f"{label}: {t:.4g}")
    if view.lo < 0 and abs(view.lo) != view.hi:  # zero-point range: both ends on the |x| axis
        ax.axvline(abs(view.lo), color="tab:red", lw=2.0, ls=":", label=f"{view.label} |lo|: {abs(view.lo):.4g}", gid="applied-lower")
    ax.axvline(view.hi, color="tab:red", lw=2.0, label=f"{view.label}: {view.hi:.4g}", gid="applied-threshold")
    shared = " (shared across layers)" if view.shared else ""
    bound = "upper clip" if view.lo < 0 and abs(view.lo) != view.hi else "threshold"
    ax.set_title(f"{view.site}: {bound} {view.threshold:.4g}{shared}, clips {view.clipped_fraction * 100:.4f}% of {view.count:,} values", fontsize=9)
    ax.set_xlabel("x on its unsigned range [0, hi] (log)" if view.unsigned else "|x| (log)")
    ax.set_ylabel("count (log)")
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False)
    return fig


def plot_channel_heatmap(stats, role: str = "ffn.layernorm.out", ax: Optional[Axes] = None) -> Figure:
    """Per-channel abs-max of one site role across layers (rows), log colour: outlier channels stand out."""
    fig, ax = _axes(ax, (10, 3))
    rows = [s for s in stats.sites if s.role == role]
    data = np.stack([stats[s.name].channel_absmax.numpy() for s in rows])
    im = ax.imshow(np.log10(np.maximum(data, 1e-6)), aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(rows)), [f"layer {s.layer}" for s in rows], fontsize=7)
    ax.set_xlabel("channel")
    ax.set_title(f"log10 per-channel abs-max of {role}")
    fig.colorbar(im, ax=ax)
    return fig


def plot_threshold_stability(stability: dict[str, float], ax: Optional[Axes] = None, top: int = 25) -> Figure:
    """The sites whose threshold moves most across bootstrap resamples (relative std, %)."""
    fig, ax = _axes(ax, (8, 4))
    items = sorted(stability.items(), key=lambda kv: -kv[1])[:top]
    ax.barh([k for k, _ in items][::-1], [v * 100 for _, v in items][::-1], color="tab:purple")
    ax.set_xlabel("threshold spread over bootstrap resamples (% of mean)")
    ax.set_title("Threshold stability: is the calibration set large enough?")
    ax.tick_params(axis="y", labelsize=7)
    return fig


def plot_sweep_heatmap(rows: list[dict], chosen: Optional[dict] = None) -> Figure:
    """Spearman over percentile x topk_ratio of the MaxPercentile rows, one panel per method.

    Colours show the distance to the best cell in thousandths (so a scale of a few units says
    the choice hardly matters); each cell prints its Spearman in a colour readable on its
    background; the chosen config's cell is outlined. Rows are dicts with ``method``, ``mode``,
    ``percentile``, ``topk_ratio``, ``spearman`` (and optionally ``output``).
    """
    mp = [r for r in rows if r["mode"] == 1 and r.get("spearman") is not None and np.isfinite(r["spearman"])]  # None: not scored on the full split
    if chosen is not None and "output" in chosen:
        mp = [r for r in mp if r.get("output", chosen["output"]) == chosen["output"]]
    methods = sorted({r["method"] for r in mp})
    if chosen is not None and chosen.get("method") in methods:  # the recommended config's method first
        methods.remove(chosen["method"])
        methods.insert(0, chosen["method"])
    ps = sorted({r["percentile"] for r in mp})
    ks = sorted({r["topk_ratio"] for r in mp})
    fig = Figure(figsize=(3.2 * max(len(methods), 1) + 1.6, 0.45 * max(len(ps), 1) + 2.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, max(len(methods), 1), sharey=True, squeeze=False)[0])
    best = max((r["spearman"] for r in mp), default=np.nan)
    worst = min((r["spearman"] for r in mp), default=np.nan)
    span_milli = max((best - worst) * 1000, 1e-3)
    cmap = "viridis"
    im = None
    for ax, method in zip(axes, methods):
        grid = np.full((len(ps), len(ks)), np.nan)
        for r in mp:
            if r["method"] == method:
                grid[ps.index(r["percentile"]), ks.index(r["topk_ratio"])] = r["spearman"]
        delta = (grid - best) * 1000
        im = ax.imshow(grid, cmap=cmap, aspect="auto", origin="lower", vmin=best - span_milli / 1000, vmax=best)
        for i in range(len(ps)):
            for j in range(len(ks)):
                if np.isfinite(grid[i, j]):
                    light = (delta[i, j] + span_milli) / span_milli > 0.55  # viridis is light at the top of its scale
                    ax.text(j, i, f"{grid[i, j]:.4f}", ha="center", va="center", fontsize=8, color="black" if light else "white")
        if chosen is not None and chosen.get("mode") == 1 and chosen.get("method") == method and chosen["percentile"] in ps and chosen["topk_ratio"] in ks:
            j, i = ks.index(chosen["topk_ratio"]), ps.index(chosen["percentile"])
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=3, label="recommended"))
        ax.set_xticks(range(len(ks)), [f"{k:g}" for k in ks])
        ax.set_yticks(range(len(ps)), [f"{p:g}" for p in ps])
        ax.set_xlabel("topk_ratio")
        ax.set_title(f"method {method}" + (" (shared ranges)" if method in (1, 3) else " (per layer)"), fontsize=9)
    axes[0].set_ylabel("percentile")
    if im is not None:
        bar = fig.colorbar(im, ax=list(axes), format=FuncFormatter(lambda v, _: f"{(v - best) * 1000:+.1f}"))
        bar.set_label("Spearman - best (thousandths)")
    profile = (rows[0].get("recipe") or {}).get("profile", "aries") if rows and isinstance(rows[0].get("recipe"), dict) else "aries"
    fig.suptitle(f"Simulated INT8 STS-B Spearman [profile {profile}], MaxPercentile: best {best:.4f}, all cells within {span_milli / 1000:.4f} of it"
                 + ("; red box = recommended" if chosen is not None else ""), fontsize=9)
    return fig
