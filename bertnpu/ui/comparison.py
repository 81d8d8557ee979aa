"""The closing table of notebook 04 and of the run report: what the evaluate stage returned, one row per model.

Only formatting: every number comes from :func:`bertnpu.stages.evaluate` (its result, or the
``evaluation`` entry of a run's ``summary.json``).
"""

from __future__ import annotations

from typing import Any, Mapping

# evaluation entry -> the row's name, in the table's order
ROW_NAMES = {"fp32": "FP32", "tutorial_default": "tutorial config", "recommended": "recommended", "planned": "planned recipe"}
COLUMNS = ("name", "config", "spearman", "spearman 95% CI", "vs FP32 (paired 95% CI)", "pearson", "cosine", "recall@10")
# the intervals as numbers (not table columns): ``spearman_ci``, ``diff_to_fp32``, ``diff_to_fp32_ci`` (None where absent)
INTERVAL_KEYS = ("spearman_ci", "diff_to_fp32", "diff_to_fp32_ci")


def _ci_text(ci) -> str:
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""


def _diff_text(diff, ci) -> str:
    return f"{diff:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]" if diff is not None and ci else ""


def _config_label(entry: Mapping[str, Any]) -> str:
    from ..quant.config import QuantConfig
    from ..quant.recipe import Recipe

    if entry.get("recipe"):
        return Recipe.from_dict(entry["recipe"]).label()
    return QuantConfig.from_dict(entry["config"]).label() if entry.get("config") else "no quantization"


def comparison_rows(evaluation) -> list[dict]:
    """One row per evaluated model: ``name``, ``config`` (the recipe's label), ``spearman``, its 95 %
    interval and the paired difference to FP32 with its interval (as text, for the table), ``pearson``,
    ``cosine`` (mean cosine to FP32) and ``recall@10``; the first row is FP32. The intervals also come
    as numbers under :data:`INTERVAL_KEYS` (for :func:`~bertnpu.ui.conclusions.comparison_conclusion`).

    ``evaluation``: an :class:`~bertnpu.stages.evaluate.EvaluationResult` or its ``to_dict()``
    (e.g. ``summary["evaluation"]``). A measure the entry lacks (a summary from an older run) is ``None``.

    Example:
        >>> rows = comparison_rows(evaluate(EvaluateInputs(model, stats, load_stsb("test"), recommended=rec)))
        >>> [r["name"] for r in rows]  # doctest: +SKIP
        ['FP32', 'tutorial config', 'recommended']
    """
    data = evaluation if isinstance(evaluation, Mapping) else evaluation.to_dict()
    rows = []
    for key, name in ROW_NAMES.items():
        entry = data.get(key)
        if not entry:
            continue
        ci, diff, diff_ci = (entry.get(k) for k in INTERVAL_KEYS)
        rows.append({"name": name, "config": "no quantization" if key == "fp32" else _config_label(entry), "spearman": entry["spearman"],
                     "spearman 95% CI": _ci_text(ci), "vs FP32 (paired 95% CI)": _diff_text(diff, diff_ci),
                     "pearson": entry["pearson"], "cosine": entry.get("cosine_mean"), "recall@10": entry.get("recall@10"),
                     "spearman_ci": ci, "diff_to_fp32": diff, "diff_to_fp32_ci": diff_ci})
    return rows
