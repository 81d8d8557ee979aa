"""STS-B evaluation of any ``encode`` callable: Spearman and Pearson of cosine similarity."""

from __future__ import annotations

import time
from typing import Callable, Optional, Sequence

import numpy as np
from scipy.stats import pearsonr, spearmanr

from ..data.stsb import StsPairs

Encode = Callable[[Sequence[str]], np.ndarray]


def unique_sentences(pairs: StsPairs) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Every distinct sentence once, and the row of each pair's two sentences in that list."""
    index: dict[str, int] = {}
    for s in pairs.sentence1 + pairs.sentence2:
        index.setdefault(s, len(index))
    rows1 = np.fromiter((index[s] for s in pairs.sentence1), dtype=np.int64, count=len(pairs))
    rows2 = np.fromiter((index[s] for s in pairs.sentence2), dtype=np.int64, count=len(pairs))
    return list(index), rows1, rows2


def recipe_key(recipe) -> str:
    """What fixes a recipe's simulated embeddings, as text: the recipe without its ``prediction`` (two equal keys, equal embeddings)."""
    import json

    return json.dumps(recipe.with_(prediction={}).to_dict(), sort_keys=True)


def cosine_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two ``[n, d]`` arrays, in float64."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    num = (a * b).sum(1)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, 1e-12)


def pair_cosines(embeddings: np.ndarray, rows1: np.ndarray, rows2: np.ndarray) -> np.ndarray:
    """``[pairs]`` cosine similarity of each pair's two sentence embeddings (the score STS-B ranks)."""
    return cosine_rows(embeddings[rows1], embeddings[rows2])


def cosine_scores(cos: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Spearman / Pearson of pair cosines against gold scores."""
    return {"spearman": float(spearmanr(cos, gold).statistic), "pearson": float(pearsonr(cos, gold).statistic)}


def sts_scores(embeddings: np.ndarray, rows1: np.ndarray, rows2: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Spearman / Pearson of pair cosines against gold scores."""
    return cosine_scores(pair_cosines(embeddings, rows1, rows2), gold)


def scores_with_intervals(cos: np.ndarray, gold: np.ndarray, reference: Optional[dict] = None) -> dict:
    """:func:`cosine_scores` plus the paired bootstrap's ``spearman_ci`` (and, given FP32's ``reference``, a dict with its
    ``spearman`` and ``pair_cosines``: ``diff_to_fp32`` and ``diff_to_fp32_ci``); see :mod:`bertnpu.tune.bootstrap`."""
    from .bootstrap import interval_fields

    scores = cosine_scores(cos, gold)
    ref = (reference["pair_cosines"], reference["spearman"]) if reference is not None else (None, None)
    return {**scores, **interval_fields(cos, gold, scores["spearman"], *ref)}


def entry_from_embeddings(emb: np.ndarray, fp32_emb: Optional[np.ndarray], rows1: np.ndarray, rows2: np.ndarray, gold: np.ndarray,
                          fp32: Optional[dict] = None) -> dict:
    """One evaluated entry from a model's embeddings of the split's unique sentences: :func:`scores_with_intervals`
    (``fp32``: FP32's entry, for the paired difference), ``cosine_mean`` (mean cosine to ``fp32_emb``; 1 for FP32 itself)
    and ``pair_cosines`` (drop it before writing JSON)."""
    cos = pair_cosines(emb, rows1, rows2)
    out = scores_with_intervals(cos, gold, fp32)
    out["cosine_mean"] = 1.0 if fp32_emb is None else float(cosine_rows(emb, fp32_emb).mean())
    out["pair_cosines"] = cos
    return out


def evaluate_sts(encode: Encode, pairs: StsPairs, reference: Optional[dict] = None, *, keep_cosines: bool = False) -> dict:
    """Evaluate ``encode`` on STS-B pairs; every unique sentence is encoded once.

    Returns a flat dict: ``spearman`` (primary), ``pearson``, ``spearman_ci`` (95 % paired-bootstrap
    interval, :mod:`bertnpu.tune.bootstrap`), ``pairs``, ``sentences``, ``seconds``. With
    ``reference`` (FP32's result, evaluated with ``keep_cosines=True``) also ``diff_to_fp32`` and its
    paired interval ``diff_to_fp32_ci``. ``keep_cosines``: also return the ``pair_cosines`` array
    (not JSON: drop it before printing).

    Example:
        >>> evaluate_sts(SentenceEncoder(load_model()), load_stsb("test", d))["spearman"]  # doctest: +SKIP
        0.8203...
    """
    start = time.perf_counter()
    sentences, rows1, rows2 = unique_sentences(pairs)
    emb = np.asarray(encode(sentences))
    assert emb.shape[0] == len(sentences), "encode must return one row per sentence"
    cos = pair_cosines(emb, rows1, rows2)
    result = scores_with_intervals(cos, pairs.scores, reference)
    if keep_cosines:
        result["pair_cosines"] = cos
    result.update(pairs=len(pairs), sentences=len(sentences), seconds=time.perf_counter() - start)
    return result
