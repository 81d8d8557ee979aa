"""Stage 6, sweep: a grid of recipes on the validation split, its tables and heatmap, and the recommended recipe."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..data.stsb import StsPairs
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from ..tune.sweep import CONFIRM, GRID_KNOBS, PERCENTILES, PROXY_SENTENCES, STRATEGY_KNOBS, TOPK_RATIOS, Spelling, check_sweep_knobs
from ..tune.sweep_rows import SweepRow
from .result import StageResult


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
    confirm: Optional[int] = None  # fast strategy only (None: CONFIRM)
    proxy_sentences: Optional[int] = None  # fast strategy only: validation sentences the proxy encodes per candidate (None: PROXY_SENTENCES)
    out: Optional[Path] = None
    recommended: Optional[Path] = None
    progress: bool = True

    def __post_init__(self) -> None:
        # a knob set here (not None) that the search or strategy would ignore is refused, like a value out of range
        knobs = {name: getattr(self, name) for name in GRID_KNOBS + STRATEGY_KNOBS}
        check_sweep_knobs(self.search, self.strategy, knobs, given=[k for k, v in knobs.items() if v is not None],
                          spelling=Spelling.fields_of("SweepInputs"))
        defaults = {"confirm": CONFIRM, "proxy_sentences": PROXY_SENTENCES} if self.strategy == "fast" else {}
        if self.search == "grid":
            defaults["modes"] = (1,)
            if 1 in (self.modes or (1,)):
                defaults.update(percentiles=PERCENTILES, topk_ratios=TOPK_RATIOS)
        for name, default in defaults.items():
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
        base = inputs.base.calibration  # without mode 1 the cells read no percentile or topk_ratio: the base's stand in
        configs = config_grid(base, inputs.percentiles or (base.percentile,), inputs.topk_ratios or (base.topk_ratio,), inputs.modes,
                              inputs.methods, inputs.outputs)
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
                progress=inputs.progress, strategy=inputs.strategy, confirm=inputs.confirm or CONFIRM,
                proxy_sentences=inputs.proxy_sentences or PROXY_SENTENCES)  # None under the exhaustive strategy, which reads neither
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
