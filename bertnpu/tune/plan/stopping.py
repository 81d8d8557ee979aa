"""When the planner stops adding 16-bit sites, and which row of its Pareto table it picks."""

from __future__ import annotations


def accepted(row: dict, target: float, min_cosine: float) -> bool:
    """A row is accepted when its validation Spearman reaches ``target`` (FP32 minus the tolerance) and its cosine ``min_cosine``."""
    return row["validation_spearman"] >= target and row["validation_cosine"] >= min_cosine


def pick_row(pareto: list[dict], target: float, min_cosine: float) -> tuple[dict, bool, bool]:
    """The row to compile: the cheapest accepted one; else, within tolerance, the closest embeddings; else the best Spearman.

    Returns ``(row, within_tolerance, cosine_met)``: whether any row reached the tolerance, and any both floors.
    """
    within = [row for row in pareto if row["validation_spearman"] >= target]
    both = [row for row in within if row["validation_cosine"] >= min_cosine]
    pick = both[0] if both else (max(within, key=lambda row: row["validation_cosine"]) if within
                                 else max(pareto, key=lambda row: row["validation_spearman"]))
    return pick, bool(within), bool(both)
