"""Pure plot functions over activation statistics; each returns a Figure."""

from __future__ import annotations

from typing import Optional

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ..quant.observers import EDGES
from .plots import _axes
from ..quant.config import QuantConfig
from ..quant.thresholds import ClipRange, clipped_fraction, site_range


def plot_site_ranges(stats, ranges: dict[str, ClipRange], ax: Optional[Axes] = None) -> Figure:
    """Every site's max |x| against its clip threshold (log scale), grouped by layer."""
    fig, ax = _axes(ax, (12, 4))
    names = [s.name for s in stats.sites]
    x = np.arange(len(names))
    absmax = np.array([stats[n].absmax for n in names])
    mins = np.array([abs(min(stats[n].min, 0.0)) for n in names])
    maxs = np.array([max(stats[n].max, 0.0) for n in names])
    thr = np.array([ranges[n].threshold for n in names])
    ax.bar(x, absmax, color="tab:blue", alpha=0.35, label="max |x|")
    ax.scatter(x, maxs, marker="^", color="tab:blue", s=9, zorder=3, label="max")
    ax.scatter(x, np.where(mins > 0, mins, np.nan), marker="v", color="tab:green", s=9, zorder=3, label="|min|")
    ax.scatter(x, thr, color="tab:red", s=10, zorder=4, label="clip threshold")
    ax.set_yscale("log")
    layers = [s.layer for s in stats.sites]
    for i in range(1, len(layers)):
        if layers[i] != layers[i - 1]:
            ax.axvline(i - 0.5, color="grey", lw=0.5)
    ticks = [i for i in range(len(names)) if i == 0 or layers[i] != layers[i - 1]]
    ax.set_xticks(ticks, [("layer %d" % layers[i]) if layers[i] >= 0 else names[i] for i in ticks], rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("magnitude (log)")
    ax.set_title("Activation ranges of all quantization sites vs clip thresholds")
    ax.legend(fontsize=8)
    return fig


def plot_site_histogram(obs, config: QuantConfig, name: str = "", ax: Optional[Axes] = None) -> Figure:
    """One site's |x| histogram with the Max, MaxPercentile and Histogram thresholds drawn."""
    fig, ax = _axes(ax, fast=True)
    hist = obs.abs_hist()
    nz = np.flatnonzero(hist)
    lo_bin, hi_bin = (nz[0], nz[-1]) if len(nz) else (0, 1)
    ax.stairs(hist[lo_bin : hi_bin + 1], EDGES[lo_bin : hi_bin + 2], fill=True, color="tab:blue", alpha=0.6)
    ax.set_xscale("log")
    ax.set_yscale("log")
    current = site_range(obs, config)
    lines = {
        "Max": site_range(obs, config.with_(mode=0, method=0)).threshold,
        f"MaxPercentile p={config.percentile:g} r={config.topk_ratio:g}": site_range(obs, config.with_(mode=1, method=0)).threshold,
        "Histogram (MSE)": site_range(obs, config.with_(mode=2, method=0)).threshold,
    }
    for (label, t), color in zip(lines.items(), ("black", "tab:red", "tab:green")):
        ax.axvline(t, color=color, ls="--", lw=1.2, label=f"{label}: {t:.4g}")
    frac = clipped_fraction(obs, current)
    ax.set_title(f"{name} |x| histogram; clipped by current config: {frac * 100:.4f}% of {obs.count:,} values", fontsize=9)
    ax.set_xlabel("|x| (log)")
    ax.set_ylabel("count (log)")
    ax.legend(fontsize=7, loc="lower left")
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


def plot_sweep_heatmap(rows: list[dict], chosen: Optional[dict] = None, ax: Optional[Axes] = None) -> Figure:
    """Spearman over percentile x topk_ratio (MaxPercentile rows of the chosen config's method), with the chosen point circled."""
    fig, ax = _axes(ax, (6, 4))
    mp = [r for r in rows if r["mode"] == 1]
    # show the chosen config's method, so the circle marks a point of the grid drawn
    method = chosen["method"] if chosen is not None and chosen.get("mode") == 1 else (mp[0]["method"] if mp else None)
    mp = [r for r in mp if r["method"] == method]
    ps = sorted({r["percentile"] for r in mp})
    ks = sorted({r["topk_ratio"] for r in mp})
    grid = np.full((len(ps), len(ks)), np.nan)
    for r in mp:
        grid[ps.index(r["percentile"]), ks.index(r["topk_ratio"])] = r["spearman"]
    im = ax.imshow(grid, cmap="viridis", aspect="auto", origin="lower")
    for i in range(len(ps)):
        for j in range(len(ks)):
            if np.isfinite(grid[i, j]):
                ax.text(j, i, f"{grid[i, j]:.3f}", ha="center", va="center", fontsize=8, color="white")
    if chosen is not None and chosen.get("mode") == 1 and chosen["percentile"] in ps and chosen["topk_ratio"] in ks:
        ax.scatter([ks.index(chosen["topk_ratio"])], [ps.index(chosen["percentile"])], s=600, facecolors="none", edgecolors="red", linewidths=2)
    ax.set_xticks(range(len(ks)), [f"{k:g}" for k in ks])
    ax.set_yticks(range(len(ps)), [f"{p:g}" for p in ps])
    ax.set_xlabel("topk_ratio")
    ax.set_ylabel("percentile")
    ax.set_title(f"Simulated INT8 STS-B Spearman (method {method}, MaxPercentile)")
    fig.colorbar(im, ax=ax)
    return fig
