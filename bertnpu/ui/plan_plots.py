"""Figures of a plan: the Pareto front (16-bit sites -> validation Spearman) and the per-layer map of 16-bit sites."""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure

from ..quant.precision import site_role
from ..quant.sites import LAYER_SITES
from .messages import figure_text


def plot_pareto(pareto: Sequence[Mapping], fp32: float, tolerance: float, profile: str, chosen: Optional[int] = None,
                ax=None, min_cosine: Optional[float] = None) -> Figure:
    """Validation Spearman against the number of 16-bit sites, with FP32 and the tolerance band;
    the mean embedding cosine to FP32 (rows with ``validation_cosine``) on a second axis, with the
    ``min_cosine`` floor dashed.

    Args:
        pareto: rows with ``n_sites``, ``validation_spearman``, ``traffic_16bit`` (share, 0-1), ``added``.
        chosen: ``n_sites`` of the chosen recipe (circled).
    """
    if ax is None:
        fig = Figure(figsize=(8.4, 3.8), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    n = [r["n_sites"] for r in pareto]
    s = [r["validation_spearman"] for r in pareto]
    ax.axhspan(fp32 - tolerance, max(max(s), fp32) + tolerance / 2, color="tab:green", alpha=0.12, label=f"within {tolerance:g} of FP32")
    ax.axhline(fp32, color="tab:green", lw=1, label=f"FP32 {fp32:.4f}")
    ax.plot(n, s, "o-", color="tab:blue", label="simulated (validation)")
    if chosen is not None and chosen in n:
        i = n.index(chosen)
        ax.plot([n[i]], [s[i]], "o", ms=14, mfc="none", mec="tab:red", mew=2, label="chosen")
    ax.set_xlabel("sites at 16 bits, added greedily (below: share of activation traffic at 16 bits)")
    ax.set_ylabel("STS-B validation Spearman")
    ax.set_title(figure_text("fig.plan", profile=profile))
    ax.set_xticks(n, [f"{r['n_sites']}\n{r['traffic_16bit']:.0%}" for r in pareto])  # under the axis: never on a line
    handles, labels = ax.get_legend_handles_labels()
    if all("validation_cosine" in r for r in pareto):
        ax2 = ax.twinx()
        ax2.plot(n, [r["validation_cosine"] for r in pareto], "s--", color="tab:purple", ms=4, label="cosine to FP32 (validation)")
        if min_cosine:
            ax2.axhline(min_cosine, color="tab:purple", lw=0.8, ls=":", label=f"minimum cosine {min_cosine:g}")
        ax2.set_ylabel("mean embedding cosine to FP32", color="tab:purple")
        h2, l2 = ax2.get_legend_handles_labels()
        handles, labels = handles + h2, labels + l2
    ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.12, 1.0))
    return fig


def site_grid(site_bits: Mapping[str, int], activation_16bits: Sequence[str], num_layers: int) -> np.ndarray:
    """``[num_layers, roles]`` codes: 0 = 8 bits, 1 = 16 bits by the profile, 2 = 16 bits by the recipe."""
    roles = [r for r, _, _ in LAYER_SITES]
    grid = np.zeros((num_layers, len(roles)), dtype=int)
    chosen = set(activation_16bits)
    for site, bits in site_bits.items():
        if not site.startswith("layer."):
            continue
        i, j = int(site.split(".")[1]), roles.index(site_role(site))
        grid[i, j] = 2 if site in chosen else (1 if bits > 8 else 0)
    return grid


def plot_site_map(site_bits: Mapping[str, int], activation_16bits: Sequence[str], num_layers: int, profile: str, ax=None) -> Figure:
    """Per-layer map of which sites run at 16 bits (by the profile, or added by the recipe)."""
    if ax is None:
        fig = Figure(figsize=(7.5, 0.45 * num_layers + 2.6), layout="constrained")
        ax = fig.add_subplot()
    fig = ax.figure
    grid = site_grid(site_bits, activation_16bits, num_layers)
    roles = [r for r, _, _ in LAYER_SITES]
    ax.imshow(grid, cmap=ListedColormap(["#e8e8e8", "#9ecae1", "#d62728"]), vmin=0, vmax=2, aspect="auto")
    ax.set_xticks(range(len(roles)), roles, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(num_layers), [f"layer {i}" for i in range(num_layers)], fontsize=8)
    ax.set_xticks(np.arange(-0.5, len(roles)), minor=True)
    ax.set_yticks(np.arange(-0.5, num_layers), minor=True)
    ax.grid(which="minor", color="white", lw=1)
    ax.tick_params(which="minor", length=0)
    extra = [s for s in activation_16bits if not s.startswith("layer.")]
    note = f" (+ {', '.join(extra)})" if extra else ""
    ax.set_title(figure_text("fig.site_map", profile=profile, note=note), fontsize=9)
    return fig
