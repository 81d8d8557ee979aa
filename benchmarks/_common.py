"""Shared helpers for the benchmark scripts: timing, the STS-B folder, and the GEMM floor."""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def stsb_dir() -> str:
    return os.environ.get("BERTNPU_STSB_DIR") or str(REPO.parent / "shared" / "data" / "stsbenchmark")


def best_of(fn, repeats: int = 3) -> float:
    """Minimum wall time of ``repeats`` calls (the least disturbed run)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_flops_per_second(n: int = 2048, repeats: int = 5) -> float:
    """Large float32 matmul throughput of this machine: the reference for a GEMM floor."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    seconds = best_of(lambda: a @ b, repeats)
    return 2 * n**3 / seconds


def encoder_flops(lengths, hidden: int, intermediate: int, layers: int) -> float:
    """Multiply-add FLOPs of a BERT encoder over unpadded sequences of the given lengths."""
    tokens = float(sum(lengths))
    linear = 2 * tokens * (4 * hidden * hidden + 2 * hidden * intermediate)
    attention = sum(2 * 2 * n * n * hidden for n in lengths)
    return layers * (linear + attention)


def default_model_and_stats(count: int = 256):
    """The default model and its activation stats over ``count`` random STS-B validation sentences.

    The stats are kept in the temp folder (keyed by the model hash and ``count``), so a benchmark's
    setup does not repeat them; they are the benchmarks' input, not what they time.
    """
    import tempfile

    from bertnpu import load_model, load_stsb
    from bertnpu.data.calibration import CalibrationSet, CalibrationSpec, embed_sentences, select_samples
    from bertnpu.quant.stats import collect_activation_stats, load_stats, model_hash

    model = load_model()
    cached = Path(tempfile.gettempdir()) / f"bertnpu-bench-stats-{model_hash(model)[:12]}-{count}.npz"
    if cached.is_file():
        return model, load_stats(cached, model)
    sentences, _ = select_samples(load_stsb("validation", stsb_dir()), CalibrationSpec(count=count), None)
    stats = collect_activation_stats(model, CalibrationSet([], embed_sentences(model, sentences)), progress=False)
    stats.save(cached, force=True)
    return model, stats
