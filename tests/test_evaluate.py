import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.tune.evaluate import evaluate_sts, unique_sentences
from bertnpu.model.load import Pooling


def _st_evaluator(pairs):
    try:
        from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    except ImportError:  # older sentence-transformers
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator
    return EmbeddingSimilarityEvaluator(pairs.sentence1, pairs.sentence2, pairs.scores.tolist())


@pytest.mark.slow
def test_agrees_with_sentence_transformers_default_model(default_model, stsb_test):
    from sentence_transformers import SentenceTransformer

    ours = evaluate_sts(SentenceEncoder(default_model, progress=False), stsb_test)
    theirs = _st_evaluator(stsb_test)(SentenceTransformer(str(default_model.path), device="cpu"))
    assert abs(ours["spearman"] - theirs["spearman_cosine"]) <= 1e-4
    assert abs(ours["pearson"] - theirs["pearson_cosine"]) <= 1e-4
    assert ours["pairs"] == 1379 and ours["sentences"] < 2 * 1379


def test_agrees_with_sentence_transformers_tiny_model(tiny_model, stsb_test):
    from sentence_transformers import SentenceTransformer

    pairs = stsb_test.subset(300)
    ours = evaluate_sts(SentenceEncoder(tiny_model, progress=False), pairs)
    st = SentenceTransformer(str(tiny_model.path), device="cpu")  # builds mean pooling for a plain HF folder
    theirs = _st_evaluator(pairs)(st)
    assert abs(ours["spearman"] - theirs["spearman_cosine"]) <= 1e-4


def test_every_unique_sentence_encoded_once(stsb_test):
    calls = []

    def encode(sentences):
        calls.append(list(sentences))
        return np.random.default_rng(0).normal(size=(len(sentences), 8))

    result = evaluate_sts(encode, stsb_test)
    assert len(calls) == 1
    assert len(calls[0]) == len(set(calls[0])) == len(set(stsb_test.sentence1) | set(stsb_test.sentence2))
    assert result["sentences"] == len(calls[0])


def test_batched_sorted_encoding_equals_one_at_a_time(tiny_model, stsb_test):
    sentences, _, _ = unique_sentences(stsb_test.subset(40))
    batched = SentenceEncoder(tiny_model, batch_size=16, progress=False)(sentences)
    single = np.stack([SentenceEncoder(tiny_model, batch_size=1, progress=False)([s])[0] for s in sentences])
    assert np.abs(batched - single).max() < 1e-5


def test_pooler_output_way_of_the_tutorial(default_model, stsb_test):
    """The tutorial's pooler_output path, against Hugging Face's own pooler_output."""
    pairs = stsb_test.subset(200)
    ours = evaluate_sts(SentenceEncoder(default_model, pooling=Pooling("pooler"), progress=False), pairs)
    with torch.no_grad():
        def hf(sentences):
            return default_model.bert(**default_model.tokenizer(sentences, padding=True, return_tensors="pt")).pooler_output.numpy()
        a, b = hf(pairs.sentence1), hf(pairs.sentence2)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert abs(ours["spearman"] - spearmanr(cos, pairs.scores).statistic) < 1e-4


@pytest.mark.slow
def test_pooler_vs_mean_on_full_test_split(default_model, stsb_test):
    """Mobilint's facts sheet: pooler output 0.731 vs mean pooling 0.820 for all-MiniLM-L6-v2 on test."""
    pooler = evaluate_sts(SentenceEncoder(default_model, pooling=Pooling("pooler"), progress=False), stsb_test)
    assert abs(pooler["spearman"] - 0.731) < 0.0015
