"""Stage 5, simulate: STS-B Spearman of the simulated INT8 model next to FP32, on one split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional

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
    # 95 % paired-bootstrap intervals (bertnpu.tune.bootstrap): the INT8 Spearman's, FP32's, and the paired difference's
    spearman_ci: tuple[float, float] = (float("nan"), float("nan"))
    fp32_spearman_ci: tuple[float, float] = (float("nan"), float("nan"))
    diff_to_fp32: float = float("nan")
    diff_to_fp32_ci: tuple[float, float] = (float("nan"), float("nan"))
    # the bracket by what it measures: per profile ``spearman``, ``spearman_ci``, ``diff_to_fp32(_ci)`` and ``cosine_mean``
    # (mean embedding cosine to FP32, monotone in precision where Spearman is not)
    profile_details: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    cosine_mean: float = float("nan")  # mean cosine of the INT8 sentence embeddings to FP32's


def fp32_scores(model: LoadedModel, pairs: StsPairs, progress: bool = True, batch_size: int = 64, keep_cosines: bool = False) -> dict[str, Any]:
    """Spearman / Pearson (and ``spearman_ci``) of the FP32 model (the reference every INT8 number sits next to).

    ``keep_cosines``: also return ``pair_cosines``, the reference :func:`simulated_scores` pairs its difference with."""
    from ..model.sentence_encoder import SentenceEncoder
    from ..tune.evaluate import evaluate_sts

    return evaluate_sts(SentenceEncoder(model, progress=progress, batch_size=batch_size), pairs, keep_cosines=keep_cosines)


def simulated_scores(model: LoadedModel, stats, recipe: Recipe, pairs: StsPairs, keep_fp32=(), progress: bool = True,
                     reference: Optional[dict] = None) -> tuple[dict[str, Any], Any]:
    """Spearman / Pearson (and ``spearman_ci``) of the simulated INT8 model for ``recipe``, and the simulation itself.

    ``reference``: FP32's :func:`fp32_scores` with ``keep_cosines=True``; adds ``diff_to_fp32`` and its paired ``diff_to_fp32_ci``."""
    from ..quant.simulate import simulate
    from ..tune.evaluate import evaluate_sts

    sim = simulate(model, stats, recipe, keep_fp32=list(keep_fp32))
    return evaluate_sts(sim.encoder_for(progress=progress), pairs, reference, keep_cosines=reference is not None), sim


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

    from ..model.sentence_encoder import SentenceEncoder
    from ..quant.simulate import simulate as simulate_recipe
    from ..tune.evaluate import entry_from_embeddings, unique_sentences

    stats = stats_for_recipe(inputs.model, inputs.stats, inputs.recipe, inputs.calib, progress=inputs.progress)
    # each model encodes the split's unique sentences once (evaluate_sts's arithmetic); the FP32 embeddings are kept,
    # so every INT8 number gets its paired difference to FP32 and its embedding cosine to FP32
    sentences, rows1, rows2 = unique_sentences(inputs.pairs)
    fp32_emb = SentenceEncoder(inputs.model, progress=inputs.progress, batch_size=64)(sentences)
    fp32 = entry_from_embeddings(fp32_emb, None, rows1, rows2, inputs.pairs.scores)
    sim = simulate_recipe(inputs.model, stats, inputs.recipe, keep_fp32=list(inputs.keep_fp32))
    int8 = entry_from_embeddings(sim.encoder_for(progress=inputs.progress)(sentences), fp32_emb, rows1, rows2, inputs.pairs.scores, fp32)
    profiles, details = {}, {}
    if inputs.bracket:
        from ..quant.precision import PROFILE_NAMES

        for name in PROFILE_NAMES:
            if name == inputs.recipe.profile and not inputs.keep_fp32:
                details[name] = int8
            else:
                other = simulate_recipe(inputs.model, stats, inputs.recipe.with_(profile=name), encoder=sim.encoder)
                details[name] = entry_from_embeddings(other.encoder_for(progress=inputs.progress)(sentences), fp32_emb, rows1, rows2,
                                                      inputs.pairs.scores, fp32)
            details[name] = {k: v for k, v in details[name].items() if k != "pair_cosines"}
            profiles[name] = details[name]["spearman"]
    return SimulateResult(spearman=int8["spearman"], pearson=int8["pearson"], fp32_spearman=fp32["spearman"], fp32_pearson=fp32["pearson"],
                          config=inputs.recipe.calibration.to_dict(), recipe=inputs.recipe, keep_fp32=tuple(inputs.keep_fp32),
                          split=inputs.pairs.split, pairs=len(inputs.pairs), model=str(inputs.model.name), profile=inputs.recipe.profile,
                          profiles=profiles, simulation=sim, spearman_ci=tuple(int8["spearman_ci"]), fp32_spearman_ci=tuple(fp32["spearman_ci"]),
                          diff_to_fp32=int8["diff_to_fp32"], diff_to_fp32_ci=tuple(int8["diff_to_fp32_ci"]), cosine_mean=int8["cosine_mean"],
                          profile_details=details)
