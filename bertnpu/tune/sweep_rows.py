"""Typed sweep rows: the full recipe a row was scored with, plus its metrics, round-tripping through JSON.

A row dict from :func:`~bertnpu.tune.sweep.sweep` (flat calibration knobs + metrics) or from
an older cache reads back as a :class:`SweepRow`; keys this version does not know are kept in
``extra`` and written back, so nothing a newer sweep added is ever dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

from ..errors import BertnpuError
from ..quant.config import QuantConfig
from ..quant.recipe import Recipe

CONFIG_KEYS = ("method", "output", "mode", "percentile", "topk_ratio", "bits")
METRIC_KEYS = ("spearman", "pearson", "mean_sqnr_db")


@dataclass(frozen=True)
class SweepRow:
    """One scored candidate. ``split``: where it was scored; ``key``: its cache key."""

    recipe: Recipe
    spearman: Optional[float]  # None: ranked by the sweep's proxy only, not scored on the full split
    pearson: Optional[float]
    mean_sqnr_db: Optional[float] = None
    split: str = "validation"
    key: Optional[str] = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.recipe, Recipe):
            raise BertnpuError(f"SweepRow.recipe must be a Recipe, not {type(self.recipe).__name__}; wrap a QuantConfig as Recipe(calibration=cfg).")
        object.__setattr__(self, "extra", dict(self.extra))

    @property
    def config(self) -> QuantConfig:
        return self.recipe.calibration

    def to_dict(self) -> dict[str, Any]:
        """Flat calibration knobs (for tables and the heatmap), the whole ``recipe``, the metrics and ``extra``."""
        return {**self.extra, **self.config.to_dict(), "recipe": self.recipe.to_dict(), "spearman": self.spearman, "pearson": self.pearson,
                "mean_sqnr_db": self.mean_sqnr_db, "split": self.split, "key": self.key}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], recipe: Optional[Recipe] = None) -> "SweepRow":
        """Read a row; ``recipe`` (when given) is the recipe the row was scored with, overriding the row's own keys."""
        if recipe is None:
            if "recipe" in data:
                recipe = Recipe.from_dict(data["recipe"])
            else:
                missing = [k for k in CONFIG_KEYS[:5] if k not in data]
                if missing:
                    raise BertnpuError(f"A sweep row lacks {', '.join(missing)}; delete the sweep cache file and sweep again.")
                recipe = Recipe(calibration=QuantConfig.from_dict({k: data[k] for k in CONFIG_KEYS if k in data}))
        known = set(CONFIG_KEYS) | set(METRIC_KEYS) | {"recipe", "split", "key"}
        return cls(recipe=recipe, spearman=None if data.get("spearman") is None else float(data["spearman"]),
                   pearson=None if data.get("pearson") is None else float(data["pearson"]),
                   mean_sqnr_db=None if data.get("mean_sqnr_db") is None else float(data["mean_sqnr_db"]),
                   split=data.get("split", "validation"), key=data.get("key"), extra={k: v for k, v in data.items() if k not in known})


def best_row(rows: Sequence[SweepRow]) -> SweepRow:
    """The row with the highest Spearman (the first one on a tie); rows the fast sweep did not score on the full split are skipped."""
    scored = [r for r in rows if r.spearman is not None]
    if not scored:
        raise BertnpuError("The sweep has no rows; give at least one percentile, topk_ratio, mode and method.")
    return max(scored, key=lambda r: r.spearman)


def recommended_row(rows: Sequence[SweepRow]) -> SweepRow:
    """The row the sweep marked ``recommended`` (:data:`bertnpu.tune.sweep.RECOMMENDATION_RULE`: the simplest cell tied with
    the best); rows without that mark (an older sweep): :func:`best_row`."""
    marked = [r for r in rows if r.extra.get("recommended") and r.spearman is not None]
    return marked[0] if marked else best_row(rows)
