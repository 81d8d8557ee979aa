"""The fast sweep (shared range sets, proxy ranking, confirmation) vs the exhaustive sweep, same run.

Targets (issue 14, 2 CPU cores, default model): the default 24-cell sweep <= 60 s with the
exhaustive sweep's recommendation (249 s before); the wide search (methods 0-3, outputs 0/1,
modes 0-2) <= 90 s. Also prints the rank correlation of the proxies with the full Spearman.
"before" is the exhaustive sweep's time per distinct range set times the 24 cells, since before
issue 14 every cell was scored on the full split (each with its per-site SQNR).
``--float-gemm`` also runs each fast sweep with every Linear in float (``KernelPolicy(integer_gemm=False)``,
the simulator before the integer GEMM) and prints the ratio.
Run: .venv/bin/python benchmarks/bench_sweep.py [--skip-wide] [--wide-exhaustive] [--float-gemm]
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import replace

import torch
from scipy.stats import spearmanr

from _common import default_model_and_stats, stsb_dir
from bertnpu import load_stsb
from bertnpu.quant.kernel_policy import current_policy, using_policy
from bertnpu.quant.config import QuantConfig
from bertnpu.tune.sweep import best_config, config_grid, evaluation_count, sweep, wide_grid


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def agreement(fast: list[dict], exhaustive: list[dict]) -> dict:
    leaders = [(f, e) for f, e in zip(fast, exhaustive) if f["shares_with"] is None]
    full = [e["spearman"] for _, e in leaders]
    return {"cosine": spearmanr([f["proxy_cosine"] for f, _ in leaders], full).statistic,
            "spearman": spearmanr([f["proxy_spearman"] for f, _ in leaders], full).statistic,
            "same": best_config(fast) == best_config(exhaustive), "fast": best_config(fast), "exhaustive": best_config(exhaustive),
            "proxy_rank_of_best": next(f["proxy_rank"] for f, e in leaders if e["spearman"] == max(full))}


def report(name: str, cells: int, fast_rows, fast_s: float, exh_rows=None, exh_s: float = 0.0, target: float = 0.0) -> None:
    counts = evaluation_count(fast_rows)
    print(f"{name}: {cells} cells, {counts['distinct']} distinct range sets, {counts['full']} scored on the full split")
    print(f"  fast sweep        {fast_s:7.1f} s  (target <= {target:.0f} s)  -> {best_config(fast_rows).label()}")
    if exh_rows is not None:
        per_set = exh_s / evaluation_count(exh_rows)["distinct"]
        before = per_set * cells
        a = agreement(fast_rows, exh_rows)
        print(f"  exhaustive        {exh_s:7.1f} s  -> {a['exhaustive'].label()}")
        print(f"  before (every cell, estimated {per_set:.1f} s x {cells})  {before:7.1f} s")
        print(f"  fast / exhaustive {fast_s / exh_s:.2f};  fast / before {fast_s / before:.2f}")
        print(f"  same recommendation: {a['same']};  full-Spearman best is proxy rank {a['proxy_rank_of_best']}")
        print(f"  rank correlation with full Spearman over distinct sets: cosine proxy {a['cosine']:.3f}, subset-Spearman proxy {a['spearman']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-wide", action="store_true")
    parser.add_argument("--wide-exhaustive", action="store_true", help="also score the wide search exhaustively (slow)")
    parser.add_argument("--float-gemm", action="store_true", help="also time each fast sweep with every Linear in float")
    args = parser.parse_args()

    def float_reference(name, cells, rows, seconds):
        if not args.float_gemm:
            return
        with using_policy(replace(current_policy(), integer_gemm=False)):
            frows, fs = timed(lambda: sweep(model, stats, validation, cells, progress=False))
        print(f"  {name} with float Linears {fs:7.1f} s  -> {best_config(frows).label()}; integer GEMM / float {seconds / fs:.2f}; "
              f"same recommendation {best_config(frows) == best_config(rows)}")

    print(f"load: {os.getloadavg()[0]:.2f} (1-min), threads {torch.get_num_threads()}")
    model, stats = default_model_and_stats()
    validation = load_stsb("validation", stsb_dir())
    grid = config_grid(QuantConfig(), methods=(0, 1))
    fast, fast_s = timed(lambda: sweep(model, stats, validation, grid, progress=False))
    exhaustive, exh_s = timed(lambda: sweep(model, stats, validation, grid, strategy="exhaustive", progress=False))
    report("default grid", len(grid), fast, fast_s, exhaustive, exh_s, target=60)
    float_reference("fast sweep", grid, fast, fast_s)
    for r, e in zip(fast, exhaustive):
        print(f"    {QuantConfig.from_dict({k: r[k] for k in ('method', 'output', 'mode', 'percentile', 'topk_ratio', 'bits')}).label():52s} "
              f"full {e['spearman']:.4f}  cosine {r['proxy_cosine']:.5f}  rank {r['proxy_rank']}" + (f"  = {r['shares_with']}" if r["shares_with"] else ""))
    if not args.skip_wide:
        wide = wide_grid()
        wfast, wfast_s = timed(lambda: sweep(model, stats, validation, wide, progress=False))
        wexh, wexh_s = (timed(lambda: sweep(model, stats, validation, wide, strategy="exhaustive", progress=False))
                        if args.wide_exhaustive else (None, 0.0))
        report("wide search", len(wide), wfast, wfast_s, wexh, wexh_s, target=90)
        float_reference("wide search", wide, wfast, wfast_s)
    print(f"load: {os.getloadavg()[0]:.2f} (1-min)")


if __name__ == "__main__":
    main()
