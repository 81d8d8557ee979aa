"""Activation statistics at BERT-base scale: random 12-layer, hidden-768 model, 512 samples of up to 128 tokens.

Target (issue 4): peak RSS under 3 GB; time per sample reported, with the plain FP32
forward over the same batches measured in the same run as the reference.
Run: .venv/bin/python benchmarks/bench_stats_scale.py [--samples 512]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from transformers import BertConfig, BertModel

from bertnpu.data.calibration import CalibrationSet
from bertnpu.model.npu_part import NpuEncoder
from bertnpu.model.load import LoadedModel, Pooling
from bertnpu.quant.stats import _calibration_batches, collect_activation_stats


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=512)
    args = parser.parse_args()
    torch.manual_seed(0)
    bert = BertModel(BertConfig(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072)).eval()
    model = LoadedModel("random-bert-base", None, bert, None, Pooling("mean"), 128)
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((1, int(n), 768)).astype(np.float32) for n in rng.integers(8, 129, args.samples)]
    calib = CalibrationSet([], arrays, source="random")
    start = time.perf_counter()
    stats = collect_activation_stats(model, calib, progress=True)
    seconds = time.perf_counter() - start
    enc = NpuEncoder(bert)
    start = time.perf_counter()
    with torch.inference_mode():
        for hidden, mask, _ in _calibration_batches(calib, 32):
            enc(hidden, mask)
    forward = time.perf_counter() - start
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"samples {len(calib)}, tokens {int(calib.lengths.sum())}, sites {len(stats.sites)}")
    print(f"stats state             {stats.state_size() * 8 / 1e6:.0f} MB")
    print(f"peak RSS                {peak_gb:.2f} GB  (target < 3 GB)")
    print(f"collection              {seconds:.1f} s, {seconds / len(calib) * 1000:.0f} ms per sample")
    print(f"plain FP32 forward      {forward:.1f} s; ratio collection / forward {seconds / forward:.2f}")


if __name__ == "__main__":
    main()
