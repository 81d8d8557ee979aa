"""The figures of each stage, drawn from its typed result on the presentation side.

Stages compute (numbers, arrays, the data files they write); this module turns a result into
named figures (:func:`stage_figures`) and writes them as PNGs (:func:`present`), for ``bertnpu
run`` (through :mod:`bertnpu.ui.run`), the CLI, the widgets and the notebooks alike.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Optional

FIGURE_DPI = 100


def stage_figures(result: Any) -> dict[str, Any]:
    """name -> Figure for a stage result (an empty dict for a stage that draws none).

    Example:
        >>> stage_figures(analyze(AnalyzeInputs(model, mblt=False)))["placement"]  # doctest: +SKIP
        <Figure size 900x505 with 1 Axes>
    """
    from ..stages import AnalyzeResult, CalibrationResult, PlanResult, StatsResult, SweepResult

    if isinstance(result, AnalyzeResult):
        from .plots import plot_block_placement

        return {"placement": plot_block_placement(list(result.blocks))}
    if isinstance(result, CalibrationResult):
        from .plots import plot_channel_ranges, plot_coverage, plot_sequence_lengths

        figures = {"calibration_ranges": plot_channel_ranges(result.channel_ranges, result.outlier_channels),
                   "calibration_lengths": plot_sequence_lengths(result.calibration.lengths)}
        if result.outside_per_channel is not None:
            figures["calibration_coverage"] = plot_coverage(result.outside_per_channel, result.coverage_curve)
        return figures
    if isinstance(result, StatsResult):
        if result.thresholds is None:
            return {}
        from .range_plots import plot_site_ranges, plot_threshold_stability

        return {"site_ranges": plot_site_ranges(result.stats, result.thresholds), "threshold_stability": plot_threshold_stability(result.stability)}
    if isinstance(result, SweepResult):
        from .range_plots import plot_sweep_heatmap

        return {"sweep_heatmap": plot_sweep_heatmap([r.to_dict() for r in result.rows], dict(result.recommended))}
    if isinstance(result, PlanResult):
        from .plan_plots import plot_pareto, plot_site_map

        return {"plan_pareto": plot_pareto(result.pareto, result.fp32_validation_spearman, result.tolerance, result.profile,
                                           len(result.activation_16bits), min_cosine=result.min_cosine),
                "plan_sites": plot_site_map(result.site_bits, result.recipe.activation_16bits, result.layers, result.profile)}
    return {}


def save_figures(figures: Mapping[str, Any], folder: Optional[str | os.PathLike], *, force: bool = False) -> tuple[Path, ...]:
    """Write each figure as ``<folder>/<name>.png``, atomically; an existing file is replaced only with ``force``."""
    from ..artifacts import atomic_write

    if folder is None:
        return ()
    folder = Path(folder)
    return tuple(atomic_write(folder / f"{name}.png", lambda p, fig=fig: fig.savefig(p, format="png", dpi=FIGURE_DPI), force=force)
                 for name, fig in figures.items())


def present(result: Any, folder: Optional[str | os.PathLike], *, force: bool = False) -> Any:
    """``result`` with its figures written into ``folder`` (None: none written) and their paths added to its ``files``."""
    written = save_figures(stage_figures(result), folder, force=force) if folder is not None else ()
    if not written:
        return result
    return dataclasses.replace(result, files=tuple(dict.fromkeys(tuple(result.files) + written)))
