"""Stage 5, simulate: STS-B Spearman of the simulated INT8 model next to FP32, on one split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..data.stsb import StsPairs
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from .result import StageResult, not_serialized


@dataclass(frozen=True)
class SimulateInputs:
    """``keep_fp32``: sites left in FP32 (a diagnostic with no device counterpart; the recipe's
    ``activation_16bits`` is the compilable remedy). ``bracket``: also simulate the recipe under
    every precision profile. ``calib``: the calibration set, needed when the recipe has
    equivalent transformations and ``stats`` were collected without them."""

    model: LoadedModel
    stats: Any
    pairs: StsPairs
    recipe: Recipe = field(default_factory=Recipe)
    keep_fp32: tuple[str, ...] = ()
    progress: bool = True
    bracket: bool = False
    calib: Any = None


@dataclass(frozen=True)
class SimulateResult(StageResult):
    spearman: float
    pearson: float
    fp32_spearman: float
    fp32_pearson: float
    config: Mapping[str, Any]
    recipe: Recipe
    keep_fp32: tuple[str, ...]
    split: str
    pairs: int
    model: str
    simulation: Any = not_serialized()
    profile: str = "aries"
    profiles: Mapping[str, float] = field(default_factory=dict)


def fp32_scores(model: LoadedModel, pairs: StsPairs, progress: bool = True, batch_size: int = 64) -> dict[str, float]:
    """Spearman / Pearson of the FP32 model (the reference every INT8 number sits next to)."""
    from ..model.sentence_encoder import SentenceEncoder
    from ..tune.evaluate import evaluate_sts

    return evaluate_sts(SentenceEncoder(model, progress=progress, batch_size=batch_size), pairs)


def simulated_scores(model: LoadedModel, stats, recipe: Recipe, pairs: StsPairs, keep_fp32=(), progress: bool = True) -> tuple[dict[str, float], Any]:
    """Spearman / Pearson of the simulated INT8 model for ``recipe``, and the simulation itself."""
    from ..quant.simulate import simulate
    from ..tune.evaluate import evaluate_sts

    sim = simulate(model, stats, recipe, keep_fp32=list(keep_fp32))
    return evaluate_sts(sim.encoder_for(progress=progress), pairs), sim


def simulated_embeddings(model: LoadedModel, stats, recipe: Recipe, sentences, keep_fp32=(), progress: bool = True,
                         encoder=None) -> tuple[Any, Any]:
    """Embeddings ``[n, hidden]`` of ``sentences`` by the simulated INT8 model for ``recipe`` (the encode
    :func:`simulated_scores` scores), and the simulation itself. ``encoder``: a weight-quantized NPU part
    of the same bit width and transformations to reuse (e.g. another simulation's ``encoder``)."""
    import numpy as np

    from ..quant.simulate import simulate

    sim = simulate(model, stats, recipe, keep_fp32=list(keep_fp32), encoder=encoder)
    return np.asarray(sim.encoder_for(progress=progress)(list(sentences))), sim


def simulate(inputs: SimulateInputs) -> SimulateResult:
    """Predict the INT8 STS-B score of ``inputs.recipe`` by simulation.

    Example:
        >>> r = simulate(SimulateInputs(model, stats, load_stsb("validation")))
        >>> round(r.spearman - r.fp32_spearman, 2)  # doctest: +SKIP
        -0.22
    """
    from ..quant.transforms import stats_for_recipe

    stats = stats_for_recipe(inputs.model, inputs.stats, inputs.recipe, inputs.calib, progress=inputs.progress)
    fp32 = fp32_scores(inputs.model, inputs.pairs, inputs.progress)
    int8, sim = simulated_scores(inputs.model, stats, inputs.recipe, inputs.pairs, inputs.keep_fp32, inputs.progress)
    profiles = {}
    if inputs.bracket:
        from ..quant.precision import PROFILE_NAMES

        for name in PROFILE_NAMES:
            profiles[name] = int8["spearman"] if name == inputs.recipe.profile and not inputs.keep_fp32 else \
                simulated_scores(inputs.model, stats, inputs.recipe.with_(profile=name), inputs.pairs, (), inputs.progress)[0]["spearman"]
    return SimulateResult(spearman=int8["spearman"], pearson=int8["pearson"], fp32_spearman=fp32["spearman"], fp32_pearson=fp32["pearson"],
                          config=inputs.recipe.calibration.to_dict(), recipe=inputs.recipe, keep_fp32=tuple(inputs.keep_fp32),
                          split=inputs.pairs.split, pairs=len(inputs.pairs), model=str(inputs.model.name), profile=inputs.recipe.profile,
                          profiles=profiles, simulation=sim)
