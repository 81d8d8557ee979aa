"""Stage 7, evaluate: FP32, the tutorial's config and the recommended recipe, once, on the test split."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from ..data.stsb import StsPairs
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from .result import StageResult
from .simulate import fp32_scores, simulated_scores


@dataclass(frozen=True)
class EvaluateInputs:
    """``pairs``: the held-out split (test); ``fidelity``: also measure cosine(FP32, INT8) and neighbour recall;
    ``out``: a JSON file for the result (None: none)."""

    model: LoadedModel
    stats: Any
    pairs: StsPairs
    recommended: Recipe
    tutorial: Recipe = field(default_factory=Recipe)
    fidelity: bool = True
    out: Optional[Path] = None
    progress: bool = True


@dataclass(frozen=True)
class EvaluationResult(StageResult):
    split: str
    pairs: int
    fp32: Mapping[str, float]
    tutorial_default: Mapping[str, Any]
    recommended: Mapping[str, Any]
    fidelity: Optional[Mapping[str, Any]]
    files: tuple[Path, ...] = ()


def _entry(recipe: Recipe, scores: dict) -> dict[str, Any]:
    return {"config": recipe.calibration.to_dict(), "recipe": recipe.to_dict(), "spearman": scores["spearman"], "pearson": scores["pearson"]}


def evaluate(inputs: EvaluateInputs) -> EvaluationResult:
    """Score FP32, the tutorial's recipe and the recommended one on ``inputs.pairs``.

    Example:
        >>> r = evaluate(EvaluateInputs(model, stats, load_stsb("test"), recommended=Recipe()))
        >>> r.fp32["spearman"]  # doctest: +SKIP
        0.8203
    """
    from ..model.sentence_encoder import SentenceEncoder
    from ..tune.error_analysis import embedding_fidelity

    fp32 = fp32_scores(inputs.model, inputs.pairs, progress=False)
    tutorial, _ = simulated_scores(inputs.model, inputs.stats, inputs.tutorial, inputs.pairs, progress=inputs.progress)
    recommended, sim = simulated_scores(inputs.model, inputs.stats, inputs.recommended, inputs.pairs, progress=inputs.progress)
    fidelity = None
    if inputs.fidelity:
        fidelity = embedding_fidelity(SentenceEncoder(inputs.model, progress=False), sim.encoder_for(progress=inputs.progress), inputs.pairs)
        fidelity.pop("cosine")  # per-sentence array: the summary keeps its mean / min / p05
    result = EvaluationResult(split=inputs.pairs.split, pairs=len(inputs.pairs), fp32={"spearman": fp32["spearman"], "pearson": fp32["pearson"]},
                              tutorial_default=_entry(inputs.tutorial, tutorial), recommended=_entry(inputs.recommended, recommended), fidelity=fidelity)
    if inputs.out is None:
        return result
    from ..artifacts import atomic_write_json

    path = atomic_write_json(inputs.out, result.to_dict(), force=True)
    return replace(result, files=(path,))
