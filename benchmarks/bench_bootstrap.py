"""Cost of the paired bootstrap next to one FP32 STS-B test evaluation (issue 24: at most 5 % more per evaluation).

Measured in the same run: one FP32 evaluation without intervals (encode the unique sentences, Spearman /
Pearson of the pair cosines) against (a) what each further evaluated model adds (its resampled Spearman,
its interval and the paired interval of its difference to FP32) and (b) the once-per-split setup (the
seeded index matrix and the gold scores' resampled ranks), with both summed as the worst case of a
single evaluation in a fresh process.
Run: .venv/bin/python benchmarks/bench_bootstrap.py
"""

from __future__ import annotations

import time

import torch

from _common import best_of, stsb_dir
from bertnpu import SentenceEncoder, load_model, load_stsb
from bertnpu.tune import bootstrap
from bertnpu.tune.evaluate import cosine_scores, pair_cosines, unique_sentences


def main() -> None:
    model = load_model()
    pairs = load_stsb("test", stsb_dir())
    encoder = SentenceEncoder(model, progress=False)
    sentences, rows1, rows2 = unique_sentences(pairs)
    encoder(sentences[:50])  # warm-up

    def plain_evaluation():
        return cosine_scores(pair_cosines(encoder(sentences), rows1, rows2), pairs.scores)

    evaluation = best_of(plain_evaluation, 2)
    cos = pair_cosines(encoder(sentences), rows1, rows2)
    other = cos + 0.01 * torch.randn(len(cos), generator=torch.Generator().manual_seed(0)).numpy()  # a second "model"

    def setup():
        bootstrap._CACHE.clear()
        return bootstrap.bootstrap_for(pairs.scores)

    setup_s = best_of(setup, 3)
    boot = setup()
    fp32_samples = boot.samples(cos)

    def per_model():
        boot._recent.clear()  # a new model's resamples, not a memoized one (FP32's stay: they are computed once per split)
        boot._recent[cos.tobytes()] = fp32_samples
        samples = boot.samples(other)
        return boot.interval(samples), boot.interval(samples - fp32_samples)

    per_model_s = best_of(per_model, 5)
    boot._recent.clear()
    start = time.perf_counter()
    bootstrap.interval_fields(other, pairs.scores, 0.0, cos, 0.0)  # the call the stages make (FP32's resamples included)
    fields_s = time.perf_counter() - start

    print(f"threads                                   {torch.get_num_threads()}")
    print(f"FP32 evaluation (no intervals)            {evaluation:.3f} s ({len(pairs)} pairs, {len(sentences)} sentences)")
    print(f"bootstrap setup, once per split           {setup_s:.3f} s ({boot.resamples} resamples x {boot.n} pairs)")
    print(f"bootstrap per further model               {per_model_s:.3f} s (its resamples, its interval, the paired difference's)")
    print(f"interval_fields (model + FP32 resamples)  {fields_s:.3f} s")
    print(f"ratio per further model / evaluation      {per_model_s / evaluation:.3f}  (target <= 0.05)")
    print(f"ratio (setup + interval_fields) / evaluation  {(setup_s + fields_s) / evaluation:.3f}  (a lone evaluation in a fresh process)")


if __name__ == "__main__":
    main()
