"""Pure plot functions over activation statistics; each returns a Figure."""

from __future__ import annotations

from typing import Optional

import numpy as np
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..quant.observers import EDGES
from .conclusions import GOOD, sweep_within_noise
from .messages import figure_text
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
    ax.set_title(figure_text("fig.site_ranges"))
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
    shared = figure_text("fig.shared") if view.shared else ""
    bound = figure_text("explorer.upper_clip" if view.lo < 0 and abs(view.lo) != view.hi else "explorer.threshold")
    ax.set_title(figure_text("fig.histogram", site=view.site, bound=bound, threshold=view.threshold, shared=shared,
                             clipped=view.clipped_fraction * 100, count=view.count), fontsize=9)
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
    ax.set_title(figure_text("fig.channel_absmax", role=role))
    fig.colorbar(im, ax=ax)
    return fig


def plot_threshold_stability(stability: dict[str, float], ax: Optional[Axes] = None, top: int = 25) -> Figure:
    """The sites whose threshold moves most across bootstrap resamples (relative std, %)."""
    fig, ax = _axes(ax, (8, 4))
    items = sorted(stability.items(), key=lambda kv: -kv[1])[:top]
    ax.barh([k for k, _ in items][::-1], [v * 100 for _, v in items][::-1], color="tab:purple")
    ax.set_xlabel("threshold spread over bootstrap resamples (% of mean)")
    ax.set_title(figure_text("fig.stability"))
    ax.tick_params(axis="y", labelsize=7)
    return fig


MODE_NAMES = {0: "Max", 1: "MaxPercentile", 2: "Histogram"}
# a light colour map (YlGnBu's lighter part, luminance 0.98 .. 0.56): dark cell text stays readable on every cell
SWEEP_CMAP = ListedColormap(colormaps["YlGnBu"](np.linspace(0.02, 0.55, 256)), name="sweep-light")
TIED_MARK = "\u2248"  # a cell statistically tied with the best (tune.sweep.tie_marks)
SHARED_MARK = "\u2261"  # ≡: same clip ranges as another cell, one evaluation for both


def _finite(value) -> bool:
    return value is not None and bool(np.isfinite(value))


def sweep_cell(row: dict) -> tuple[tuple[int, int], tuple]:
    """Where a sweep row sits in :func:`plot_sweep_heatmap`: ``((method, output), range setting)``,
    the range setting being ``(mode, percentile, topk_ratio)`` (percentile and topk only for MaxPercentile)."""
    setting = (row["mode"], row["percentile"], row["topk_ratio"]) if row["mode"] == 1 else (row["mode"], None, None)
    return (row["method"], row.get("output", 0)), setting


def _setting_order(setting: tuple) -> tuple:
    mode, p, k = setting
    # Max (clips nothing), then MaxPercentile by the clipped tail fraction r(1-p), then Histogram
    return ({0: 0, 1: 1, 2: 2}.get(mode, 3), k * (1 - p) if mode == 1 else 0.0, p or 0.0, k or 0.0)


def setting_label(setting: tuple) -> str:
    """A column label: ``Max``, ``Histogram``, or ``MaxPct`` with p, r and the clipped tail r(1-p)."""
    mode, p, k = setting
    if mode != 1:
        return MODE_NAMES.get(mode, f"mode {mode}")
    tail = k * (1 - p)
    return f"MaxPct\np {p:g}\nr {k:g}\nclips {tail:.0e}" if tail > 0 else f"MaxPct\np {p:g}\nr {k:g}\nclips 0"


def method_output_label(method: int, output: int) -> str:
    """A row label: the method (per layer / shared, zero point) and the output (per tensor / per channel)."""
    scope = "shared" if method in (1, 3) else "per layer"
    return f"method {method} ({scope}{', zero point' if method in (2, 3) else ''})\noutput {output} ({'per channel' if output == 1 else 'per tensor'})"


def plot_sweep_heatmap(rows: list[dict], chosen: Optional[dict] = None) -> Figure:
    """Every ranked cell of a sweep: rows = (method, output), columns = range setting (Max,
    MaxPercentile p/r ordered by the clipped tail r(1-p), Histogram).

    The colour is the measure that ranked *every* cell: the validation Spearman when every cell
    was scored on the full split, else the fast sweep's proxy (mean cosine of the INT8 to the FP32
    embeddings on a validation sample). Under the proxy, cells confirmed on the full split are
    bold, framed in black and also print their Spearman (``ρ``); the others were ranked by the
    proxy only. ``≡`` marks a cell whose clip ranges equal another cell's (one evaluation for
    both); the chosen config is framed in red. The colour bar's label gives the span of the
    values, i.e. how much the choice matters. Rows are dicts with ``method``, ``output``,
    ``mode``, ``percentile``, ``topk_ratio``, ``spearman`` (None when not scored) and optionally
    ``proxy_cosine``, ``confirmed``, ``shares_with``.
    """
    rows = [r for r in rows if r.get("mode") is not None]
    every_scored = bool(rows) and all(_finite(r.get("spearman")) for r in rows)
    metric = "proxy_cosine" if not every_scored and any(_finite(r.get("proxy_cosine")) for r in rows) else "spearman"
    proxy = metric == "proxy_cosine"
    lines = sorted({sweep_cell(r)[0] for r in rows})
    settings = sorted({sweep_cell(r)[1] for r in rows}, key=_setting_order)
    values = np.full((len(lines), len(settings)), np.nan)
    cells: dict[tuple[int, int], dict] = {}
    for r in rows:
        line, setting = sweep_cell(r)
        i, j = lines.index(line), settings.index(setting)
        cells[i, j] = r
        if _finite(r.get(metric)):
            values[i, j] = r[metric]
    fig = Figure(figsize=(1.0 * max(len(settings), 1) + 5.2, 0.62 * max(len(lines), 1) + 2.6), layout="constrained")
    ax = fig.add_subplot()
    finite = values[np.isfinite(values)]
    best, worst = (float(finite.max()), float(finite.min())) if finite.size else (np.nan, np.nan)
    span = best - worst if finite.size else np.nan
    # enough decimals to tell the cells apart (two significant digits of the span), at least 4
    digits = int(min(6, max(4, np.ceil(-np.log10(span)) + 1))) if finite.size and span > 0 else 4
    cmap = SWEEP_CMAP.with_extremes(bad="#f2f2f2")
    vmin, vmax = (worst, best) if finite.size and span > 0 else ((best - 1e-4, best) if finite.size else (0.0, 1.0))
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    norm = im.norm
    for (i, j), r in cells.items():
        v = values[i, j]
        if not np.isfinite(v):
            ax.text(j, i, "not run", ha="center", va="center", fontsize=7, color="#555555")
            continue
        red, green, blue, _ = cmap(norm(v))
        ink = "black" if 0.2126 * red + 0.7152 * green + 0.0722 * blue > 0.45 else "white"  # dark text on light cells
        confirmed = proxy and _finite(r.get("spearman"))
        text = f"{v:.{digits}f}" + (f"\n\u03c1 {r['spearman']:.4f}" if confirmed else "")
        ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color=ink, fontweight="bold" if confirmed else "normal", gid=f"cell {i} {j}")
        if confirmed:
            ax.add_patch(Rectangle((j - 0.47, i - 0.47), 0.94, 0.94, fill=False, edgecolor="black", linewidth=1.3, gid="confirmed"))
        if r.get("shares_with"):
            ax.text(j + 0.44, i - 0.42, SHARED_MARK, ha="right", va="top", fontsize=8, color=ink, gid=f"shared {i} {j}")
        if r.get("tied_with_best"):
            ax.text(j - 0.44, i - 0.42, TIED_MARK, ha="left", va="top", fontsize=8, color=ink, gid=f"tied {i} {j}")
    if chosen is not None:
        line, setting = sweep_cell({"output": 0, **chosen})
        if line in lines and setting in settings:
            i, j = lines.index(line), settings.index(setting)
            ax.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=3, gid="chosen"))
    ax.set_xticks(range(len(settings)), [setting_label(s) for s in settings], fontsize=7)
    ax.set_yticks(range(len(lines)), [method_output_label(*line) for line in lines], fontsize=7)
    ax.tick_params(length=0)
    legend = [f"{SHARED_MARK} same clip ranges as another cell (evaluated once)"] if any(r.get("shares_with") for r in rows) else []
    if proxy:
        legend.insert(0, "bold, black frame, \u03c1 = Spearman on the full validation split; plain = ranked by the proxy only")
    if any(r.get("tied_with_best") for r in rows):
        legend.append(f"{TIED_MARK} tied with the best Spearman (paired 95 % bootstrap interval of the difference contains 0);\n"
                      "the recommendation is the tied cell with the fewest knobs changed from the tutorial's config")
    if chosen is not None:
        legend.append("red frame = recommended")
    ax.set_xlabel("range setting (MaxPercentile: percentile p, topk_ratio r; clips the tail r(1-p))" + "".join("\n" + item for item in legend), fontsize=8)
    measure = ("proxy: mean cosine(INT8, FP32)\non validation sentences (higher = closer)" if proxy
               else "STS-B Spearman\n(validation; higher is better)")
    bar = fig.colorbar(im, ax=ax, format=FuncFormatter(lambda v, _: f"{v:.{digits}f}"))
    spread = f"span {span:.{digits}f}" if finite.size else "no values"
    noise = ""
    if not proxy and sweep_within_noise(rows):  # the noise rule of the conclusions: the tie marks' intervals, else GOOD's rule of thumb
        tie_marks = any(r.get("tied_with_best") is not None for r in rows)
        noise = (" (every cell tied with the best: within the split's noise)" if tie_marks
                 else f" (under {GOOD['spearman_drop']:g}: within the split's noise)")
    bar.set_label(f"{measure}\n{spread}{noise}", fontsize=8)
    profile = (rows[0].get("recipe") or {}).get("profile", "aries") if rows and isinstance(rows[0].get("recipe"), dict) else "aries"
    scored = sum(1 for r in rows if _finite(r.get("spearman")))
    what = (f"{len(rows)} cells ranked by the proxy, {scored} confirmed on the full split" if proxy else f"{len(rows)} cells scored on the validation split")
    if not finite.size:
        best_text = "no results"
    elif proxy:
        confirmed = [r["spearman"] for r in rows if _finite(r.get("spearman"))]
        best_text = f"proxy {worst:.{digits}f} .. {best:.{digits}f} (span {span:.{digits}f})" + (f"; best confirmed Spearman {max(confirmed):.4f}" if confirmed else "")
    else:
        best_text = f"best {best:.4f}, all cells within {span:.4f} of it"
    fig.suptitle(figure_text("fig.sweep", profile=profile, what=what, best=best_text), fontsize=9)
    return fig
