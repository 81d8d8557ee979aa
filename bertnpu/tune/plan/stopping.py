"""When the planner stops adding 16-bit sites, and which row of its Pareto table it picks.

The rules read the paired 95 % bootstrap intervals of each row (:mod:`bertnpu.tune.bootstrap`):
``diff_to_fp32_ci`` (the row's validation Spearman minus FP32's) and ``gain_ci`` (the row's minus
the previous row's, over the same resampled pairs). A row stops the search once its embedding
cosine to FP32 meets the floor *and* its Spearman no longer differs from FP32 beyond noise, or the
site it added did not move the difference beyond noise (that site bought nothing the split can
see: the row before it is kept).
"""

from __future__ import annotations

from typing import Optional

#: the stop rules, as ``PlanResult.stop_rule`` names them and ``format_pareto`` explains them
STOP_RULES = {
    "fp32_noise": "its Spearman is within FP32's noise (the paired 95 % interval of the difference to FP32 reaches 0) and its "
                  "embedding cosine meets the floor",
    "no_gain": "the last site added did not move the difference to FP32 beyond noise (the paired 95 % interval of the change contains 0) "
               "while the cosine floor is met: the recipe without that site is kept",
    "max_sites": "the site limit was reached before a noise rule stopped it",
    "no_candidates": "every candidate site was tried before a noise rule stopped it",
}


def accepted(row: dict, target: float, min_cosine: float) -> bool:
    """A row is within the tolerance: validation Spearman reaches ``target`` (FP32 minus the tolerance) and cosine ``min_cosine``."""
    return row["validation_spearman"] >= target and row["validation_cosine"] >= min_cosine


def stop_rule(pareto: list[dict], min_cosine: float) -> Optional[str]:
    """The rule the last row of ``pareto`` stops the search by (a key of :data:`STOP_RULES`), or None to go on.

    Rows without intervals (a table from before them) never stop by a noise rule."""
    row = pareto[-1]
    if row["validation_cosine"] < min_cosine or row.get("diff_to_fp32_ci") is None:
        return None
    if row["diff_to_fp32_ci"][1] >= 0.0:
        return "fp32_noise"
    if len(pareto) > 1 and row.get("gain_ci") is not None and row["gain_ci"][0] <= 0.0:
        return "no_gain"
    return None


def pick_row(pareto: list[dict], target: float, min_cosine: float) -> tuple[dict, bool, bool]:
    """The row to compile, by the first stop rule that fires along the table (:func:`stop_rule`); no rule fired: the
    row within FP32's noise whose embeddings are closest; else the best Spearman among the rows meeting the cosine
    floor; else the best Spearman.

    Returns ``(row, within_tolerance, cosine_met)``: whether any row reached ``target`` (FP32 minus the tolerance,
    reported beside the intervals), and whether the picked row meets the cosine floor.
    """
    pick = None
    for k in range(len(pareto)):
        rule = stop_rule(pareto[: k + 1], min_cosine)
        if rule == "fp32_noise":
            pick = pareto[k]
        elif rule == "no_gain":
            previous = pareto[k - 1]
            pick = previous if previous["validation_cosine"] >= min_cosine else pareto[k]
        if pick is not None:
            break
    if pick is None:
        quiet = [row for row in pareto if row.get("diff_to_fp32_ci") is not None and row["diff_to_fp32_ci"][1] >= 0.0]
        floor = [row for row in pareto if row["validation_cosine"] >= min_cosine]
        pick = (max(quiet, key=lambda row: row["validation_cosine"]) if quiet else
                max(floor, key=lambda row: row["validation_spearman"]) if floor else max(pareto, key=lambda row: row["validation_spearman"]))
    within = any(row["validation_spearman"] >= target for row in pareto)
    return pick, within, pick["validation_cosine"] >= min_cosine
