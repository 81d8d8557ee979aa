"""Stage 7, evaluate: FP32 against sentence-transformers; every row's Spearman, cosine to FP32 and recall@10 against numpy."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.stats import spearmanr

from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu import stages as st


@pytest.fixture(scope="module")
def test40(stsb_test):
    return stsb_test.subset(40)


def test_evaluate_fp32_against_sentence_transformers(tiny_model, tiny_stats, test40):
    from sentence_transformers import SentenceTransformer

    r = st.evaluate(st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(calibration=QuantConfig(method=0)), progress=False))
    model = SentenceTransformer(str(tiny_model.path), device="cpu")
    a = model.encode(test40.sentence1, convert_to_numpy=True)
    b = model.encode(test40.sentence2, convert_to_numpy=True)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert r.fp32["spearman"] == pytest.approx(spearmanr(cos, test40.scores).statistic, abs=1e-4)
    # the tutorial entry is exactly what the simulate stage says for the default recipe
    sim = st.simulate(st.SimulateInputs(tiny_model, tiny_stats, test40, progress=False))
    assert r.tutorial_default["spearman"] == pytest.approx(sim.spearman, abs=1e-12)
    assert r.recommended["config"]["method"] == 0 and 0 < r.fidelity["cosine_mean"] <= 1
    # one encode per model gives the numbers of the separate paths (evaluate_sts; embedding_fidelity)
    from bertnpu.model.sentence_encoder import SentenceEncoder
    from bertnpu.quant.simulate import simulate
    from bertnpu.tune.error_analysis import embedding_fidelity

    rec = simulate(tiny_model, tiny_stats, QuantConfig(method=0))
    fid = embedding_fidelity(SentenceEncoder(tiny_model, progress=False), rec.encoder_for(), test40)
    assert r.fidelity["cosine_mean"] == pytest.approx(fid["cosine_mean"], abs=1e-12) and r.fidelity["recall@10"] == fid["recall@10"]
    assert r.recommended["cosine_mean"] == r.fidelity["cosine_mean"] and 0 < r.tutorial_default["cosine_mean"] <= 1
    assert r.fidelity["entry"] == "recommended"  # no planned recipe: the recommended one is what gets compiled
    # the agreed interval keys: the same paired bootstrap as bertnpu.tune.bootstrap on the pair cosines, and the simulate stage's
    from bertnpu.tune.bootstrap import PairedBootstrap
    from bertnpu.tune.evaluate import pair_cosines, unique_sentences

    sentences, r1, r2 = unique_sentences(test40)
    boot = PairedBootstrap(test40.scores)
    fp32_samples = boot.samples(pair_cosines(SentenceEncoder(tiny_model, progress=False)(sentences), r1, r2))
    rec_samples = boot.samples(pair_cosines(rec.encoder_for()(sentences), r1, r2))
    assert r.fp32["spearman_ci"] == pytest.approx(boot.interval(fp32_samples), abs=1e-6)
    assert r.recommended["spearman_ci"] == pytest.approx(boot.interval(rec_samples), abs=1e-6)
    assert r.recommended["diff_to_fp32"] == pytest.approx(r.recommended["spearman"] - r.fp32["spearman"], abs=1e-15)
    assert r.recommended["diff_to_fp32_ci"] == pytest.approx(boot.interval(rec_samples - fp32_samples), abs=1e-6)
    assert r.tutorial_default["diff_to_fp32_ci"] == pytest.approx(list(sim.diff_to_fp32_ci), abs=1e-12)
    assert r.tutorial_default["spearman_ci"] == pytest.approx(list(sim.spearman_ci), abs=1e-12) and "diff_to_fp32" not in r.fp32


def _knn(e: np.ndarray, k: int) -> list[set]:
    """Each row's k nearest rows by cosine (itself excluded), by a full sort."""
    e = e.astype(np.float64) / np.linalg.norm(e.astype(np.float64), axis=1, keepdims=True)
    sim = e @ e.T
    return [set([j for j in np.argsort(-row) if j != i][:k]) for i, row in enumerate(sim)]


def test_evaluate_gives_every_row_its_cosine_and_recall(tiny_model, tiny_calib, tiny_stats, test40):
    """FP32 / tutorial / recommended / planned each carry Spearman, cosine to FP32 and recall@10; a planned
    recipe with transformations is simulated on stats of its transformed encoder."""
    from bertnpu.model.sentence_encoder import SentenceEncoder
    from bertnpu.quant.recipe import EquivalentTransformations
    from bertnpu.quant.simulate import simulate
    from bertnpu.quant.transforms import collect_transformed_stats

    planned = Recipe(calibration=QuantConfig(method=0, percentile=0.99), equivalent_transformation=EquivalentTransformations(qk=True, vo=True),
                     activation_16bits=("layer.2.ffn.residual",))
    inputs = st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(calibration=QuantConfig(method=0)), planned=planned, progress=False)
    with pytest.raises(BertnpuError, match=r"transformation\(s\) qk, vo"):
        st.evaluate(inputs)  # the transformed recipe needs the calibration set
    r = st.evaluate(dataclasses.replace(inputs, calib=tiny_calib))
    # the worst pairs and sentences are the planned recipe's, the one that gets compiled
    assert r.fidelity["entry"] == "planned" and r.fidelity["cosine_mean"] == r.planned["cosine_mean"]
    sentences = list(dict.fromkeys(test40.sentence1 + test40.sentence2))
    index = {s: i for i, s in enumerate(sentences)}
    rows1, rows2 = [index[s] for s in test40.sentence1], [index[s] for s in test40.sentence2]
    fp32 = np.asarray(SentenceEncoder(tiny_model, progress=False)(sentences), dtype=np.float64)
    transformed = collect_transformed_stats(tiny_model, tiny_calib, tiny_stats, ["qk", "vo"])
    want_recipes = {"tutorial_default": (Recipe(), tiny_stats), "recommended": (Recipe(calibration=QuantConfig(method=0)), tiny_stats),
                    "planned": (planned, transformed)}
    assert r.fp32["cosine_mean"] == 1.0 and r.fp32["recall@10"] == 1.0
    fp32_knn = _knn(fp32, 10)
    for name, (recipe, stats) in want_recipes.items():
        entry = getattr(r, name)
        emb = np.asarray(simulate(tiny_model, stats, recipe).encoder_for()(sentences), dtype=np.float64)
        a, b = emb[rows1], emb[rows2]
        pair_cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert entry["spearman"] == pytest.approx(spearmanr(pair_cos, test40.scores).statistic, abs=1e-9), name
        to_fp32 = (emb * fp32).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(fp32, axis=1)
        assert entry["cosine_mean"] == pytest.approx(to_fp32.mean(), abs=1e-9), name
        recall = np.mean([len(x & y) / 10 for x, y in zip(fp32_knn, _knn(emb, 10))])
        assert entry["recall@10"] == pytest.approx(recall, abs=1e-12), name
        assert Recipe.from_dict(entry["recipe"]) == recipe
    assert r.planned["cosine_mean"] != r.tutorial_default["cosine_mean"]
    assert r.to_dict()["planned"]["recipe"]["activation_16bits"] == ["layer.2.ffn.residual"]
    without = st.evaluate(st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(), progress=False))
    assert without.planned is None and without.to_dict()["planned"] is None


def test_evaluate_reuses_known_embeddings_and_repeated_recipes(tiny_model, tiny_stats, test40):
    """Embeddings handed over (as the plan stage's test confirmation does) and a recipe met twice give the numbers of a
    fresh evaluation; embeddings of other sentences are not used."""
    from bertnpu.model.sentence_encoder import SentenceEncoder
    from bertnpu.quant.simulate import simulate
    from bertnpu.tune.evaluate import recipe_key, unique_sentences

    planned = Recipe(calibration=QuantConfig(method=0), activation_16bits=("layer.0.ffn.residual",))
    fresh = st.evaluate(st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(), planned=planned, progress=False))
    sentences = unique_sentences(test40)[0]
    known = {"fp32": SentenceEncoder(tiny_model, progress=False)(sentences),
             recipe_key(planned.with_(prediction={"test_spearman": 0.5})): simulate(tiny_model, tiny_stats, planned).encoder_for()(sentences)}
    handed = st.evaluate(st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(), planned=planned, progress=False,
                                           known_embeddings=known, known_sentences=tuple(sentences)))
    assert handed.to_dict() == fresh.to_dict()
    assert fresh.recommended["spearman"] == fresh.tutorial_default["spearman"]  # recommended = tutorial: encoded once, same row
    # handed-over arrays are really used when the sentences match, and ignored when they do not
    wrong = {"fp32": -known["fp32"]}
    used = st.evaluate(st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(), progress=False,
                                         known_embeddings=wrong, known_sentences=tuple(sentences)))
    assert used.tutorial_default["cosine_mean"] == pytest.approx(-fresh.tutorial_default["cosine_mean"], abs=1e-9)
    ignored = st.evaluate(st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(), progress=False,
                                            known_embeddings=wrong, known_sentences=tuple(sentences[1:])))
    assert ignored.fp32 == fresh.fp32
