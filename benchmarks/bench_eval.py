"""FP32 STS-B test evaluation: bertnpu vs sentence-transformers' evaluator vs the GEMM floor.

Targets (issue 2): time / sentence-transformers <= 0.9; time / GEMM floor <= 1.5.
Run: .venv/bin/python benchmarks/bench_eval.py
"""

from __future__ import annotations

import torch

from _common import best_of, encoder_flops, matmul_flops_per_second, stsb_dir
from bertnpu import SentenceEncoder, evaluate_sts, load_model, load_stsb
from bertnpu.model.sentence_encoder import tokenize
from bertnpu.tune.evaluate import unique_sentences


def main() -> None:
    model = load_model()
    pairs = load_stsb("test", stsb_dir())
    encoder = SentenceEncoder(model, progress=False)
    evaluate_sts(encoder, pairs.subset(50))  # warm-up
    ours = best_of(lambda: evaluate_sts(encoder, pairs), 3)

    from sentence_transformers import SentenceTransformer

    try:
        from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    except ImportError:
        from sentence_transformers.evaluation import EmbeddingSimilarityEvaluator
    st = SentenceTransformer(str(model.path), device="cpu")
    evaluator = EmbeddingSimilarityEvaluator(pairs.sentence1, pairs.sentence2, pairs.scores.tolist(), show_progress_bar=False)
    theirs = best_of(lambda: evaluator(st), 3)

    sentences, _, _ = unique_sentences(pairs)
    lengths = [len(x) for x in tokenize(model, sentences)]
    cfg = model.config
    flops = encoder_flops(lengths, cfg.hidden_size, cfg.intermediate_size, cfg.num_hidden_layers)
    floor = flops / matmul_flops_per_second()

    print(f"threads                      {torch.get_num_threads()}")
    print(f"bertnpu evaluate_sts         {ours:.2f} s ({len(pairs)} pairs, {len(sentences)} unique sentences)")
    print(f"sentence-transformers        {theirs:.2f} s")
    print(f"GEMM floor                   {floor:.2f} s ({flops / 1e9:.1f} GFLOP of unpadded tokens)")
    print(f"ratio to sentence-transformers  {ours / theirs:.2f}  (target <= 0.9)")
    print(f"ratio to GEMM floor             {ours / floor:.2f}  (target <= 1.5)")
    print(f"sentence-transformers / floor   {theirs / floor:.2f}")


if __name__ == "__main__":
    main()
