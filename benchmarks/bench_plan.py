"""`bertnpu plan` on the default model: the planned recipe's numbers and the planner's wall time.

Targets (issue 12, aries profile): test Spearman >= 0.815 with <= 8 sites at 16 bits, mean
cosine to FP32 >= 0.99; best INT8-only reported (aim >= 0.80); plan < 5 minutes on 2 cores.
The time is printed with its ratio to a reference measured in the same run (one FP32
evaluation of the STS-B test split), so a busy machine can be told apart from a slow planner.
Run: .venv/bin/python benchmarks/bench_plan.py [--cache FILE] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from _common import stsb_dir


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cache", default=None, help="JSON-lines cache (omit for a cold plan)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the recipe here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from bertnpu import SentenceEncoder, evaluate_sts, load_model, load_stsb
    from bertnpu.data.calibration import CalibrationSet, CalibrationSpec, embed_sentences, select_samples
    from bertnpu.quant.stats import collect_activation_stats
    from bertnpu.tune.plan import PlanSpec, format_pareto, plan_recipe

    model = load_model()
    validation, test = load_stsb("validation", stsb_dir()), load_stsb("test", stsb_dir())
    start = time.perf_counter()
    evaluate_sts(SentenceEncoder(model, progress=False), test)  # the reference: one FP32 test evaluation
    ref_s = time.perf_counter() - start
    sentences, _ = select_samples(validation, CalibrationSpec(count=256), None)
    calib = CalibrationSet([], embed_sentences(model, sentences))
    start = time.perf_counter()
    stats = collect_activation_stats(model, calib, progress=False)
    stats_s = time.perf_counter() - start
    result = plan_recipe(model, calib, validation, test, PlanSpec(), stats=stats, cache=args.cache, progress=False, log=print)
    print(format_pareto(result))
    if args.out:
        result.recipe.save(args.out, force=True)
    s = result.summary()
    print(f"FP32 test Spearman                 {result.fp32_test:.4f}")
    print(f"planned recipe, test Spearman      {result.test_spearman:.4f} with {len(result.recipe.activation_16bits)} site(s) at 16 bits (target >= 0.815, <= 8)")
    print(f"planned recipe, cosine to FP32     {result.test_cosine_mean:.4f} (target >= 0.99)")
    print(f"best INT8-only, test Spearman      {result.best_int8_test:.4f} ({result.best_int8.label()}; aim >= 0.80)")
    print(f"reference: FP32 test evaluation    {ref_s:.1f} s")
    print(f"activation stats (256 sentences)   {stats_s:.1f} s  ({stats_s / ref_s:.1f}x reference)")
    print(f"plan (after stats)                 {result.seconds:.1f} s  ({result.seconds / ref_s:.1f}x reference; target < 300 s incl. stats on 2 cores)")
    print(f"plan incl. stats                   {result.seconds + stats_s:.1f} s")
    print(json.dumps(s))


if __name__ == "__main__":
    main()
