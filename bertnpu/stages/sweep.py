"""Stage 6, sweep: a grid of recipes on the validation split, its tables and heatmap, and the recommended recipe."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..data.stsb import StsPairs
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from ..errors import BertnpuError
from ..tune.sweep import CONFIRM, PERCENTILES, PROXY_SENTENCES, STRATEGIES, TOPK_RATIOS
from ..tune.sweep_rows import SweepRow
from .result import StageResult


SEARCHES = ("grid", "wide")


@dataclass(frozen=True)
class SweepInputs:
    """The grid varies ``base.calibration`` (percentile x topk_ratio x mode x method); the base recipe's
    other fields travel with every row. ``out``: folder for ``sweep.csv`` / ``sweep.json`` and the
    resumable cache (the heatmap is drawn from the result by :func:`bertnpu.ui.stage_figures.stage_figures`);
    ``recommended``: where the best recipe's calibration config is saved (default ``out/recommended_config.json``);
    a full recipe is saved beside it as ``recommended_recipe.json``."""

    model: LoadedModel
    stats: Any
    pairs: StsPairs
    base: Recipe = field(default_factory=Recipe)
    # the grid search's cells (None: PERCENTILES, TOPK_RATIOS, mode 1); the wide search scores its own (tune.sweep.wide_grid)
    percentiles: Optional[Sequence[float]] = None
    topk_ratios: Optional[Sequence[float]] = None
    modes: Optional[Sequence[int]] = None
    methods: Optional[Sequence[int]] = None
    outputs: Optional[Sequence[int]] = None
    search: str = "grid"  # "grid": percentiles x topk_ratios x modes x methods x outputs; "wide": tune.sweep.wide_grid over methods x outputs
    strategy: str = "fast"  # "fast": shared range sets + proxy ranking + `confirm` best on the full split; "exhaustive": every distinct set
    confirm: int = CONFIRM
    proxy_sentences: int = PROXY_SENTENCES  # validation sentences the fast strategy's proxy encodes per candidate
    out: Optional[Path] = None
    recommended: Optional[Path] = None
    progress: bool = True

    def __post_init__(self) -> None:
        if self.search not in SEARCHES:
            raise BertnpuError(f"SweepInputs.search={self.search!r} is invalid; use one of {', '.join(SEARCHES)}.")
        if self.strategy not in STRATEGIES:
            raise BertnpuError(f"SweepInputs.strategy={self.strategy!r} is invalid; use one of {', '.join(STRATEGIES)}.")
        if self.search == "wide":
            given = [name for name in ("percentiles", "topk_ratios", "modes") if getattr(self, name) is not None]
            if given:
                raise BertnpuError(f"SweepInputs.{given[0]} applies to the grid search, but search='wide' scores its own cells "
                                   f"(tune.sweep.wide_grid); leave {given[0]} unset or use search='grid'.")
        else:
            for name, default in (("percentiles", PERCENTILES), ("topk_ratios", TOPK_RATIOS), ("modes", (1,))):
                if getattr(self, name) is None:
                    object.__setattr__(self, name, default)


@dataclass(frozen=True)
class SweepResult(StageResult):
    configs: int
    rows: tuple[SweepRow, ...]
    recommended: Mapping[str, Any]
    recommended_recipe: Recipe
    validation_spearman: float
    files: tuple[Path, ...]
    # the noise-aware choice (tune.sweep.RECOMMENDATION_RULE): the recommended cell's interval, how many cells tie with
    # the best, and the best cell's own Spearman (the recommendation may be a simpler tied cell)
    validation_spearman_ci: Optional[tuple[float, float]] = None
    tied_with_best: int = 0
    best_validation_spearman: Optional[float] = None
    rule: str = ""


def grid(inputs: SweepInputs) -> list[Recipe]:
    """The recipes the sweep scores, in order."""
    from ..tune.sweep import config_grid, wide_grid

    if inputs.search == "wide":
        configs = wide_grid(inputs.base.calibration, inputs.methods or (0, 1, 2, 3), inputs.outputs or (0, 1))
    else:
        configs = config_grid(inputs.base.calibration, inputs.percentiles, inputs.topk_ratios, inputs.modes, inputs.methods, inputs.outputs)
    return [inputs.base.with_(calibration=cfg) for cfg in configs]


def run_sweep(inputs: SweepInputs) -> SweepResult:
    """Score every recipe of the grid on ``inputs.pairs`` (resumable) and recommend the best.

    Example:
        >>> r = run_sweep(SweepInputs(model, stats, load_stsb("validation"), out=Path("sweep")))
        >>> r.recommended_recipe.label()  # doctest: +SKIP
        'method 1, output 0, MaxPercentile p=0.99 topk=0.1 [aries]'
    """
    from ..tune.sweep import RECOMMENDATION_RULE, sweep, write_sweep_table
    from ..tune.sweep_rows import best_row, recommended_row

    recipes = grid(inputs)
    out = Path(inputs.out) if inputs.out is not None else None
    raw = sweep(inputs.model, inputs.stats, inputs.pairs, recipes, cache=out / "sweep_cache.jsonl" if out is not None else None,
                progress=inputs.progress, strategy=inputs.strategy, confirm=inputs.confirm,
                proxy_sentences=inputs.proxy_sentences)
    assert len(raw) == len(recipes), "sweep returns one row per config, in order"
    rows = tuple(SweepRow.from_dict(row, recipe) for row, recipe in zip(raw, recipes))
    best = recommended_row(rows)
    chosen = best.recipe
    dict_rows = [r.to_dict() for r in rows]
    files: tuple[Path, ...] = ()
    if out is not None:
        files += write_sweep_table(dict_rows, out, force=True)  # the table always reflects the cache
        config_path = Path(inputs.recommended) if inputs.recommended is not None else out / "recommended_config.json"
        files += (chosen.calibration.save(config_path, force=True), chosen.save(config_path.with_name("recommended_recipe.json"), force=True))
    return SweepResult(configs=len(rows), rows=rows, recommended=chosen.calibration.to_dict(), recommended_recipe=chosen,
                       validation_spearman=best.spearman, files=tuple(dict.fromkeys(files)),
                       validation_spearman_ci=tuple(best.extra["spearman_ci"]) if best.extra.get("spearman_ci") else None,
                       tied_with_best=sum(1 for r in rows if r.extra.get("tied_with_best")), best_validation_spearman=best_row(rows).spearman,
                       rule=RECOMMENDATION_RULE)
