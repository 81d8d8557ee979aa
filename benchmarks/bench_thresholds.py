"""Recompute every site's clip threshold of the default model for a new (percentile, topk_ratio).

Target (issue 4): under 50 ms, so notebook sliders can be live. Reference in the same run:
deriving the same thresholds with numpy sorts over the raw activation values.
Run: .venv/bin/python benchmarks/bench_thresholds.py
"""

from __future__ import annotations

import time

import numpy as np
import torch

from _common import default_model_and_stats, stsb_dir
from bertnpu import load_stsb
from bertnpu.data.calibration import CalibrationSpec, embed_sentences, select_samples
from bertnpu.model.npu_part import NpuEncoder
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.thresholds import clip_thresholds


def main() -> None:
    model, stats = default_model_and_stats()
    sentences, _ = select_samples(load_stsb("validation", stsb_dir()), CalibrationSpec(count=256), None)
    arrays = embed_sentences(model, sentences)  # the same samples, for the raw-value reference
    grid = [(p, r) for p in (0.99, 0.999, 0.9999) for r in (0.001, 0.01, 0.1)]
    start = time.perf_counter()
    for p, r in grid:
        clip_thresholds(stats, QuantConfig(method=0, percentile=p, topk_ratio=r))
    ours = (time.perf_counter() - start) / len(grid)

    raw: dict[str, list[np.ndarray]] = {}
    enc = NpuEncoder(model.bert)
    with torch.no_grad():
        for a in arrays:
            enc(torch.from_numpy(a), torch.ones(1, a.shape[1], dtype=torch.long), tap=lambda s, x, m: raw.setdefault(s, []).append(x.abs().reshape(-1).numpy()) or x)
    flat = {k: np.concatenate(v) for k, v in raw.items()}
    start = time.perf_counter()
    p, r = 0.999, 0.01
    for values in flat.values():
        m = int(r * (1 - p) * values.size)
        np.partition(values, values.size - 1 - m)[values.size - 1 - m]
    brute = time.perf_counter() - start
    print(f"sites                                   {len(stats.sites)}")
    print(f"clip_thresholds, all sites, one config  {ours * 1000:.1f} ms  (target < 50 ms)")
    print(f"numpy partition over raw values         {brute * 1000:.1f} ms")
    print(f"ratio                                   {ours / brute:.3f}")


if __name__ == "__main__":
    main()
