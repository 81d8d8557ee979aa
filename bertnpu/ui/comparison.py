"""The closing table of notebook 04: FP32 next to simulated INT8 recipes, each with Spearman,
embedding cosine to FP32 and nearest-neighbour recall@10, on one split."""

from __future__ import annotations

from typing import Mapping

from tqdm.auto import tqdm


def comparison_rows(model, stats, pairs, recipes: Mapping[str, object], calibration=None, progress: bool = True) -> list[dict]:
    """One row per entry: ``name``, ``spearman``, ``pearson``, ``cosine`` (mean cosine(FP32, INT8)
    over the split's sentences), ``recall@10``; the first row is FP32 (cosine and recall 1 by definition).
    A recipe with equivalent transformations is simulated on stats of its transformed encoder,
    collected from ``calibration`` (:func:`~bertnpu.quant.transforms.stats_for_recipe`).

    Scores are :func:`~bertnpu.tune.evaluate.evaluate_sts`'s arithmetic on the embeddings of
    :func:`~bertnpu.quant.simulate.simulate_int8`, so they equal what ``bertnpu run`` reports for
    the same recipe and split; each split is encoded once per recipe.

    Example:
        >>> rows = comparison_rows(model, stats, load_stsb("test"), {"tutorial": Recipe(), "recommended": rec})
        >>> [r["name"] for r in rows]  # doctest: +SKIP
        ['FP32', 'tutorial', 'recommended']
    """
    import numpy as np

    from ..model.sentence_encoder import SentenceEncoder
    from ..quant.recipe import Recipe
    from ..quant.simulate import simulate_int8
    from ..quant.transforms import stats_for_recipe
    from ..tune.error_analysis import fidelity_from_embeddings
    from ..tune.evaluate import sts_scores, unique_sentences

    sentences, rows1, rows2 = unique_sentences(pairs)
    steps = tqdm(total=1 + len(recipes), desc=f"compare on {pairs.split}", disable=not progress)
    fp32_emb = np.asarray(SentenceEncoder(model, progress=False)(sentences))
    fp32 = sts_scores(fp32_emb, rows1, rows2, pairs.scores)
    rows = [{"name": "FP32", "config": "no quantization", "spearman": fp32["spearman"], "pearson": fp32["pearson"], "cosine": 1.0, "recall@10": 1.0}]
    steps.update()
    for name, recipe in recipes.items():
        recipe = recipe if isinstance(recipe, Recipe) else Recipe(calibration=recipe)
        recipe_stats = stats_for_recipe(model, stats, recipe, calibration)
        emb = np.asarray(simulate_int8(model, recipe_stats, recipe).encoder_for()(sentences))  # the same encode evaluate_sts uses
        scores = sts_scores(emb, rows1, rows2, pairs.scores)
        fid = fidelity_from_embeddings(fp32_emb, emb, sentences, rows1, rows2, pairs)
        rows.append({"name": name, "config": recipe.label(), "spearman": scores["spearman"], "pearson": scores["pearson"],
                     "cosine": fid["cosine_mean"], "recall@10": fid["recall@10"]})
        steps.update()
    steps.close()
    return rows
