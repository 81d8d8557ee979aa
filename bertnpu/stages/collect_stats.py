"""Stage 4, collect stats: activation statistics of every quantization site, and the range figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional

from ..data.calibration import CalibrationSet
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from .result import StageResult, not_serialized


@dataclass(frozen=True)
class StatsInputs:
    """``out``: the ``.npz`` to write (None: keep in memory); ``recipe``: whose thresholds the result carries (for the range figures);
    ``describe``: also compute the outlier table and the thresholds the figures draw (off: the statistics alone)."""

    model: LoadedModel
    calibration: CalibrationSet
    out: Optional[Path] = None
    recipe: Recipe = field(default_factory=Recipe)
    batch_size: int = 32
    force: bool = False
    progress: bool = True
    describe: bool = True


@dataclass(frozen=True)
class StatsResult(StageResult):
    sites: int
    samples: int
    outlier_sites: tuple[Mapping[str, Any], ...]
    files: tuple[Path, ...]
    stats: Any = not_serialized()
    thresholds: Any = not_serialized(default=None)  # clip_thresholds under the recipe (None without describe)
    stability: Any = not_serialized(default=None)  # threshold_stability under the recipe


def collect_stats(inputs: StatsInputs) -> StatsResult:
    """Run the calibration set through the NPU part and observe every site.

    Example:
        >>> r = collect_stats(StatsInputs(model, calibration, out=Path("stats.npz")))
        >>> r.sites  # doctest: +SKIP
        98
    """
    from ..artifacts import check_writable
    from ..quant.stats import collect_activation_stats
    from ..quant.thresholds import clip_thresholds, threshold_stability
    from ..quant.outliers import outlier_table

    if inputs.out is not None:
        check_writable(inputs.out, inputs.force, "stats file")  # before the long part
    stats = collect_activation_stats(inputs.model, inputs.calibration, batch_size=inputs.batch_size, progress=inputs.progress)
    files: tuple[Path, ...] = ()
    if inputs.out is not None:
        files = (Path(stats.save(inputs.out, force=inputs.force)),)
    if not inputs.describe:
        return StatsResult(sites=len(stats.sites), samples=len(inputs.calibration), outlier_sites=(), files=files, stats=stats)
    cfg = inputs.recipe.calibration
    return StatsResult(sites=len(stats.sites), samples=len(inputs.calibration), outlier_sites=tuple(outlier_table(stats, 8)),
                       files=files, stats=stats, thresholds=clip_thresholds(stats, cfg), stability=threshold_stability(stats, cfg))
