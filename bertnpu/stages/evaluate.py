"""Stage 7, evaluate: FP32, the tutorial's config and the recommended recipe, once, on the test split."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from ..data.stsb import StsPairs
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from .result import StageResult
from .simulate import simulated_embeddings


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


def _entry(recipe: Recipe, scores: dict, fidelity: dict) -> dict[str, Any]:
    return {"config": recipe.calibration.to_dict(), "recipe": recipe.to_dict(), "spearman": scores["spearman"], "pearson": scores["pearson"],
            "cosine_mean": fidelity["cosine_mean"], "recall@10": fidelity["recall@10"]}


def evaluate(inputs: EvaluateInputs) -> EvaluationResult:
    """Score FP32, the tutorial's recipe and the recommended one on ``inputs.pairs``.

    Each model encodes the split's unique sentences once; Spearman / Pearson are
    :func:`~bertnpu.tune.evaluate.evaluate_sts`'s arithmetic on those embeddings, and each INT8
    entry also carries its mean cosine to FP32 and nearest-neighbour recall@10.

    Example:
        >>> r = evaluate(EvaluateInputs(model, stats, load_stsb("test"), recommended=Recipe()))
        >>> r.fp32["spearman"]  # doctest: +SKIP
        0.8203
    """
    import numpy as np

    from ..model.sentence_encoder import SentenceEncoder
    from ..tune.error_analysis import fidelity_from_embeddings
    from ..tune.evaluate import sts_scores, unique_sentences

    pairs = inputs.pairs
    sentences, rows1, rows2 = unique_sentences(pairs)
    fp32_emb = np.asarray(SentenceEncoder(inputs.model, progress=False)(sentences))
    fp32 = sts_scores(fp32_emb, rows1, rows2, pairs.scores)
    entries, fidelity = {}, None
    for name, recipe in (("tutorial_default", inputs.tutorial), ("recommended", inputs.recommended)):
        emb, _ = simulated_embeddings(inputs.model, inputs.stats, recipe, sentences, progress=inputs.progress)
        fid = fidelity_from_embeddings(fp32_emb, emb, sentences, rows1, rows2, pairs)
        entries[name] = _entry(recipe, sts_scores(emb, rows1, rows2, pairs.scores), fid)
        if name == "recommended" and inputs.fidelity:
            fidelity = {k: v for k, v in fid.items() if k != "cosine"}  # per-sentence array: the summary keeps its mean / min / p05
    result = EvaluationResult(split=pairs.split, pairs=len(pairs), fp32={"spearman": fp32["spearman"], "pearson": fp32["pearson"]},
                              fidelity=fidelity, **entries)
    if inputs.out is None:
        return result
    from ..artifacts import atomic_write_json

    path = atomic_write_json(inputs.out, result.to_dict(), force=True)
    return replace(result, files=(path,))
