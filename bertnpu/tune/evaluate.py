"""STS-B evaluation of any ``encode`` callable: Spearman and Pearson of cosine similarity."""

from __future__ import annotations

import time
from typing import Callable, Sequence

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


def sts_scores(embeddings: np.ndarray, rows1: np.ndarray, rows2: np.ndarray, gold: np.ndarray) -> dict[str, float]:
    """Spearman / Pearson of pair cosines against gold scores."""
    cos = cosine_rows(embeddings[rows1], embeddings[rows2])
    return {"spearman": float(spearmanr(cos, gold).statistic), "pearson": float(pearsonr(cos, gold).statistic)}


def evaluate_sts(encode: Encode, pairs: StsPairs) -> dict[str, float]:
    """Evaluate ``encode`` on STS-B pairs; every unique sentence is encoded once.

    Returns a flat dict: ``spearman`` (primary), ``pearson``, ``pairs``, ``sentences``, ``seconds``.

    Example:
        >>> evaluate_sts(SentenceEncoder(load_model()), load_stsb("test", d))["spearman"]  # doctest: +SKIP
        0.8203...
    """
    start = time.perf_counter()
    sentences, rows1, rows2 = unique_sentences(pairs)
    emb = np.asarray(encode(sentences))
    assert emb.shape[0] == len(sentences), "encode must return one row per sentence"
    result = sts_scores(emb, rows1, rows2, pairs.scores)
    result.update(pairs=len(pairs), sentences=len(sentences), seconds=time.perf_counter() - start)
    return result
