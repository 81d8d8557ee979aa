"""Stage 7, evaluate: FP32, the tutorial's config, the recommended recipe (and a planned one), once, on the test split."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from ..data.stsb import StsPairs
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from .result import StageResult
from .simulate import simulated_embeddings

# the INT8 entries in the order they are evaluated (and shown)
ENTRIES = ("tutorial_default", "recommended", "planned")


@dataclass(frozen=True)
class EvaluateInputs:
    """``pairs``: the held-out split (test); ``planned``: a further recipe to score (None: none);
    ``calib``: the calibration set, needed when a recipe has equivalent transformations and
    ``stats`` were collected without them; ``fidelity``: also keep the worst sentences and pairs of the
    recipe that gets compiled (the planned one when given, else the recommended one; its ``entry`` names
    which); ``out``: a JSON file for the result (None: none)."""

    model: LoadedModel
    stats: Any
    pairs: StsPairs
    recommended: Recipe
    tutorial: Recipe = field(default_factory=Recipe)
    planned: Optional[Recipe] = None
    calib: Any = None
    fidelity: bool = True
    out: Optional[Path] = None
    progress: bool = True
    # embeddings of ``pairs``' unique sentences already computed in this run (e.g. by the plan stage's test confirmation):
    # "fp32" and ``recipe_key(recipe)`` -> rows of ``known_sentences``; used only when those are this split's sentences
    known_embeddings: Mapping[str, Any] = field(default_factory=dict)
    known_sentences: tuple[str, ...] = ()


@dataclass(frozen=True)
class EvaluationResult(StageResult):
    """Every entry (``fp32`` included) carries ``spearman``, ``pearson``, ``cosine_mean`` (mean
    cosine of its sentence vectors to FP32's), ``recall@10`` (FP32's 10 nearest neighbours kept) and
    ``spearman_ci`` (95 % paired-bootstrap interval); the INT8 entries also carry their ``config``,
    ``recipe``, ``diff_to_fp32`` and its paired interval ``diff_to_fp32_ci``. ``planned`` is None when no
    planned recipe was given."""

    split: str
    pairs: int
    fp32: Mapping[str, float]
    tutorial_default: Mapping[str, Any]
    recommended: Mapping[str, Any]
    fidelity: Optional[Mapping[str, Any]]
    planned: Optional[Mapping[str, Any]] = None
    files: tuple[Path, ...] = ()


def _entry(recipe: Recipe, scores: dict, fidelity: dict) -> dict[str, Any]:
    return {"config": recipe.calibration.to_dict(), "recipe": recipe.to_dict(), "spearman": scores["spearman"], "pearson": scores["pearson"],
            "cosine_mean": fidelity["cosine_mean"], "recall@10": fidelity["recall@10"], "spearman_ci": scores["spearman_ci"],
            "diff_to_fp32": scores["diff_to_fp32"], "diff_to_fp32_ci": scores["diff_to_fp32_ci"]}


def evaluate(inputs: EvaluateInputs) -> EvaluationResult:
    """Score FP32, the tutorial's recipe, the recommended one and (if given) the planned one on ``inputs.pairs``.

    Each model encodes the split's unique sentences once; Spearman / Pearson are
    :func:`~bertnpu.tune.evaluate.evaluate_sts`'s arithmetic on those embeddings, and each INT8
    entry also carries its mean cosine to FP32 and nearest-neighbour recall@10 (FP32's own are 1
    by definition). A recipe with equivalent transformations is simulated on stats of its
    transformed encoder, collected from ``inputs.calib``.

    Example:
        >>> r = evaluate(EvaluateInputs(model, stats, load_stsb("test"), recommended=Recipe()))
        >>> r.fp32["spearman"]  # doctest: +SKIP
        0.8203
    """
    import numpy as np

    from ..model.sentence_encoder import SentenceEncoder
    from ..quant.transforms import stats_for_recipe, transformation_names
    from ..tune.error_analysis import fidelity_from_embeddings
    from ..tune.evaluate import pair_cosines, recipe_key, scores_with_intervals, unique_sentences

    pairs = inputs.pairs
    sentences, rows1, rows2 = unique_sentences(pairs)
    known = dict(inputs.known_embeddings) if list(inputs.known_sentences) == sentences else {}
    fp32_emb = known.get("fp32")
    if fp32_emb is None:
        fp32_emb = np.asarray(SentenceEncoder(inputs.model, progress=inputs.progress, desc="encode (FP32)")(sentences))
    fp32 = scores_with_intervals(pair_cosines(fp32_emb, rows1, rows2), pairs.scores)
    fp32_ref = {"spearman": fp32["spearman"], "pair_cosines": pair_cosines(fp32_emb, rows1, rows2)}  # every difference is paired with it
    recipes = {"tutorial_default": inputs.tutorial, "recommended": inputs.recommended, "planned": inputs.planned}
    entries, fidelity = {}, None
    compiled = "planned" if inputs.planned is not None else "recommended"  # the report shows the worst pairs of what is compiled
    encoders: dict[tuple, Any] = {}  # (weight bits, transformations) -> one weight-quantized NPU part for every entry
    embeddings: dict[str, Any] = {k: v for k, v in known.items() if k != "fp32"}  # a recipe met twice is encoded once
    for name in ENTRIES:
        recipe = recipes[name]
        if recipe is None:
            continue
        same = recipe_key(recipe)
        if same not in embeddings:
            stats = stats_for_recipe(inputs.model, inputs.stats, recipe, inputs.calib, progress=inputs.progress)
            group = (recipe.calibration.bits, tuple(transformation_names(recipe.equivalent_transformation)))
            embeddings[same], sim = simulated_embeddings(inputs.model, stats, recipe, sentences, progress=inputs.progress,
                                                         encoder=encoders.get(group))
            encoders.setdefault(group, sim.encoder)
        emb = embeddings[same]
        fid = fidelity_from_embeddings(fp32_emb, emb, sentences, rows1, rows2, pairs)
        entries[name] = _entry(recipe, scores_with_intervals(pair_cosines(emb, rows1, rows2), pairs.scores, fp32_ref), fid)
        if name == compiled and inputs.fidelity:
            # per-sentence array: the summary keeps its mean / min / p05
            fidelity = {**{k: v for k, v in fid.items() if k != "cosine"}, "entry": name}
    result = EvaluationResult(split=pairs.split, pairs=len(pairs), fidelity=fidelity,
                              fp32={"spearman": fp32["spearman"], "pearson": fp32["pearson"], "cosine_mean": 1.0, "recall@10": 1.0,
                                    "spearman_ci": fp32["spearman_ci"]}, **entries)
    if inputs.out is None:
        return result
    from ..artifacts import atomic_write_json

    path = atomic_write_json(inputs.out, result.to_dict(), force=True)
    return replace(result, files=(path,))
