"""Simulated INT8 evaluation vs FP32 on STS-B test, and a 12-config sweep on validation.

Target (issue 5): simulated INT8 evaluation at most 1.5x the FP32 evaluation time.
Run: .venv/bin/python benchmarks/bench_simulate.py
"""

from __future__ import annotations

import time

from _common import best_of, default_model_and_stats, stsb_dir
from bertnpu import SentenceEncoder, evaluate_sts, load_stsb
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.simulate import simulate_int8
from bertnpu.tune.sweep import config_grid, sweep


def main() -> None:
    model, stats = default_model_and_stats()
    validation, test = load_stsb("validation", stsb_dir()), load_stsb("test", stsb_dir())
    fp32_enc = SentenceEncoder(model, progress=False)
    sim_enc = simulate_int8(model, stats, QuantConfig()).encoder_for()
    fp32 = best_of(lambda: evaluate_sts(fp32_enc, test), 2)
    sim = best_of(lambda: evaluate_sts(sim_enc, test), 2)
    configs = config_grid(QuantConfig(), [0.99, 0.999, 0.9999, 1.0], [0.001, 0.01, 0.1])
    start = time.perf_counter()
    sweep(model, stats, validation, configs, progress=False)
    swept = time.perf_counter() - start
    print(f"FP32 evaluation, test split        {fp32:.2f} s")
    print(f"simulated INT8 evaluation, test    {sim:.2f} s")
    print(f"ratio INT8 / FP32                  {sim / fp32:.2f}  (target <= 1.5)")
    print(f"sweep of {len(configs)} configs on validation  {swept:.1f} s ({swept / len(configs):.1f} s per config, incl. SQNR on 64 sentences)")


if __name__ == "__main__":
    main()
