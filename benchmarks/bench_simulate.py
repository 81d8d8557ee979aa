"""Simulated evaluation vs FP32 on STS-B test, against today's (unfused) fake quantization in the same run.

Targets (issue 14): simulated test evaluation <= 1.15x the FP32 one (1.31x before); the Simulate
button (build the simulation, encode the split, fidelity, per-site SQNR) under 3 s on the
validation pairs the notebook uses. "unfused" is the fake quantization before issue 14
(``clamp(round(x / s)) * s`` as four out-of-place ops), patched in for the reference figure.
Run: .venv/bin/python benchmarks/bench_simulate.py [--pairs N]   (N: validation pairs for the button)
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import contextmanager

import torch

from _common import best_of, default_model_and_stats, stsb_dir
from bertnpu import SentenceEncoder, evaluate_sts, load_stsb
import bertnpu.quant.simulate as simulate_mod
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.fake_quant import qmax_symmetric
from bertnpu.tune.error_analysis import SQNR_SENTENCES, fidelity_from_embeddings, site_sqnr
from bertnpu.tune.evaluate import sts_scores, unique_sentences


def unfused_symmetric(x, threshold, bits=8, unsigned=False):
    qmax = (2**bits - 1) if unsigned else qmax_symmetric(bits)
    scale = torch.as_tensor(threshold, dtype=x.dtype).clamp(min=1e-12) / qmax
    return torch.clamp(torch.round(x / scale), 0 if unsigned else -qmax, qmax) * scale


def unfused_affine(x, lo, hi, bits=8):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    levels = 2**bits - 1
    scale = max(hi - lo, 1e-12) / levels
    zero_point = round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero_point, 0, levels) - zero_point) * scale


@contextmanager
def unfused():
    saved = simulate_mod.fake_quant_symmetric, simulate_mod.fake_quant_affine
    simulate_mod.fake_quant_symmetric, simulate_mod.fake_quant_affine = unfused_symmetric, unfused_affine
    try:
        yield
    finally:
        simulate_mod.fake_quant_symmetric, simulate_mod.fake_quant_affine = saved


def simulate_button(model, stats, pairs, fp32_cache) -> dict:
    """What SimulatePanel.simulate does after the first press (FP32 embeddings cached)."""
    emb, sentences, rows1, rows2 = fp32_cache
    sim = simulate_mod.simulate(model, stats, QuantConfig())
    int8 = sim.encoder_for()(sentences)
    scores = sts_scores(int8, rows1, rows2, pairs.scores)
    fidelity_from_embeddings(emb, int8, sentences, rows1, rows2, pairs)
    site_sqnr(model, sim, sentences[:SQNR_SENTENCES])
    return scores


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=0, help="validation pairs for the Simulate button (0: all, as notebook 04)")
    args = parser.parse_args()
    print(f"load: {os.getloadavg()[0]:.2f} (1-min), threads {torch.get_num_threads()}")
    model, stats = default_model_and_stats()
    test = load_stsb("test", stsb_dir())
    fp32_enc = SentenceEncoder(model, progress=False)
    sim_enc = simulate_mod.simulate(model, stats, QuantConfig()).encoder_for()
    evaluate_sts(sim_enc, test.subset(50))  # warm-up
    fused_result = evaluate_sts(sim_enc, test)
    with unfused():
        unfused_result = evaluate_sts(sim_enc, test)
    assert fused_result["spearman"] == unfused_result["spearman"], "the fused fake quantization must give the same result"
    times = {"fp32": [], "sim": [], "unfused": []}
    for _ in range(2):  # interleaved, so a burst of load hits all three alike
        times["fp32"].append(best_of(lambda: evaluate_sts(fp32_enc, test), 1))
        times["sim"].append(best_of(lambda: evaluate_sts(sim_enc, test), 1))
        with unfused():
            times["unfused"].append(best_of(lambda: evaluate_sts(sim_enc, test), 1))
    fp32, sim, old = (min(times[k]) for k in ("fp32", "sim", "unfused"))
    print(f"FP32 evaluation, STS-B test ({len(test)} pairs)   {fp32:.2f} s")
    print(f"simulated, fused fake-quant                 {sim:.2f} s   ratio to FP32 {sim / fp32:.2f}  (target <= 1.15)")
    print(f"simulated, unfused fake-quant (before)      {old:.2f} s   ratio to FP32 {old / fp32:.2f}")
    print(f"fused / unfused                             {sim / old:.2f}   (same Spearman {fused_result['spearman']:.6f})")

    validation = load_stsb("validation", stsb_dir())
    pairs = validation.subset(args.pairs) if args.pairs else validation
    sentences, rows1, rows2 = unique_sentences(pairs)
    cache = (fp32_enc(sentences), sentences, rows1, rows2)
    start = time.perf_counter()
    simulate_button(model, stats, pairs, cache)
    button = time.perf_counter() - start
    with unfused():
        start = time.perf_counter()
        simulate_button(model, stats, pairs, cache)
        button_old = time.perf_counter() - start
    print(f"Simulate button, {len(pairs)} validation pairs ({len(sentences)} sentences)  {button:.2f} s  (target < 3 s); "
          f"unfused {button_old:.2f} s, ratio {button / button_old:.2f}")
    print(f"load: {os.getloadavg()[0]:.2f} (1-min)")


if __name__ == "__main__":
    main()
