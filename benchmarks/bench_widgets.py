"""Slider redraw of the threshold explorer with the default model: threshold, clipped fraction and histogram figure.

Target (issue 7): under 0.3 s per slider move. Reference in the same run: recomputing the
thresholds alone (the rest is matplotlib drawing the PNG).
Run: .venv/bin/python benchmarks/bench_widgets.py
"""

from __future__ import annotations

import time

from _common import stsb_dir
from bertnpu import load_model, load_stsb
from bertnpu.calibration import CalibrationSet, CalibrationSpec, embed_sentences, select_samples
from bertnpu.quant_config import QuantConfig
from bertnpu.stats import collect_activation_stats
from bertnpu.thresholds import clip_thresholds
from bertnpu.widgets import ThresholdExplorer


def main() -> None:
    model = load_model()
    sentences, _ = select_samples(load_stsb("validation", stsb_dir()), CalibrationSpec(count=256), None)
    stats = collect_activation_stats(model, CalibrationSet([], embed_sentences(model, sentences)), progress=False)
    explorer = ThresholdExplorer(stats, QuantConfig())
    moves = [0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0]
    times = []
    for p in moves:
        start = time.perf_counter()
        explorer.percentile.value = p  # the observer redraws synchronously
        times.append(time.perf_counter() - start)
    start = time.perf_counter()
    for p in moves:
        clip_thresholds(stats, QuantConfig(percentile=p))
    thresholds_only = (time.perf_counter() - start) / len(moves)
    worst = max(times)
    print(f"slider move -> redraw, mean {sum(times) / len(times) * 1000:.0f} ms, worst {worst * 1000:.0f} ms  (target < 300 ms)")
    print(f"thresholds alone                 {thresholds_only * 1000:.1f} ms; ratio redraw / thresholds {worst / thresholds_only:.1f}")


if __name__ == "__main__":
    main()
