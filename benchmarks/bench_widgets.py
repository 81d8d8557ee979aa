"""Slider redraw of the threshold explorer with the default model: threshold, clipped fraction and histogram figure.

Built through the notebooks' project store (256 calibration samples), as a user meets it.

Target (issue 7): under 0.3 s per slider move. Reference in the same run: recomputing the
thresholds alone (the rest is matplotlib drawing the PNG).
Run: .venv/bin/python benchmarks/bench_widgets.py
"""

from __future__ import annotations

import time

import tempfile

from _common import stsb_dir
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.thresholds import clip_thresholds
from bertnpu.ui.widgets import ThresholdExplorer
from bertnpu.ui.project import open_project


def main() -> None:
    stats = open_project(tempfile.mkdtemp(), stsb_dir=stsb_dir(), calib_count=256).stats
    explorer = ThresholdExplorer(stats, QuantConfig())
    moves = [0.99, 0.995, 0.999, 0.9995, 0.9999, 1.0] * 3
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
    median = sorted(times)[len(times) // 2]
    print(f"slider move -> redraw over {len(times)} moves: median {median * 1000:.0f} ms, worst {worst * 1000:.0f} ms  (target < 300 ms)")
    print(f"thresholds alone                 {thresholds_only * 1000:.1f} ms; ratio median redraw / thresholds {median / thresholds_only:.1f}")


if __name__ == "__main__":
    main()
