"""Where a stage's memory goes: the resident memory over time, and the code running at each new high.

Runs the statistics and then the full run's planner (``bertnpu run``'s plan stage, the most
memory-hungry one; ``--stage stats``: the statistics alone) on one model size in this process, with a thread that samples the resident set
size (RSS) every 50 ms. Each time the RSS passes its previous high by ``--step`` MB (100) it records the
innermost bertnpu frames of the main thread, so the printout says which step of the stage holds the
memory (issue 23, "where the memory goes, found by measurement"). Sizes as ``bench_scale.py``;
``--layers N`` builds base and large with N layers (per-layer costs scale with the layer count).

Run: .venv/bin/python benchmarks/bench_memory_where.py [--size base] [--layers 4] [--stage plan]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

from _common import stsb_dir
from bench_scale import SIZES, build_random_bert


def _where(thread_id: int) -> str:
    """The innermost bertnpu frames of a thread, outermost first: ``module:function:line`` joined by ' > '."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "?"
    import bertnpu

    package = str(Path(bertnpu.__file__).parent) + "/"
    frames = [f for f in traceback.extract_stack(frame) if f.filename.startswith(package)]
    return " > ".join(f"{Path(f.filename).stem}:{f.name}:{f.lineno}" for f in frames[-6:]) or "(outside bertnpu)"


class RssWatch:
    """Samples RSS every ``period`` s; records (seconds, GB, where) whenever it passes its high by ``step`` bytes."""

    def __init__(self, step: float, period: float = 0.05):
        from bertnpu.memory import rss_bytes

        self.rss, self.step, self.period = rss_bytes, step, period
        self.main = threading.main_thread().ident
        self.highs: list[tuple[float, float, str]] = []
        self.stop = threading.Event()
        self.start = time.perf_counter()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        high = 0
        while not self.stop.wait(self.period):
            now = self.rss() or 0
            if now > high + self.step:
                high = now
                self.highs.append((time.perf_counter() - self.start, now / 1e9, _where(self.main)))

    def __enter__(self) -> "RssWatch":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="base", choices=sorted(SIZES))
    ap.add_argument("--layers", type=int, default=0, help="layers of the random size (0: its own)")
    ap.add_argument("--stage", default="plan", choices=("stats", "plan"))
    ap.add_argument("--step", type=float, default=100, help="MB above the previous high that records a new one")
    args = ap.parse_args()

    from bertnpu import load_model, load_stsb
    from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
    from bertnpu.memory import memory_line, release_free_memory
    from bertnpu.run_config import RunConfig
    from bertnpu import stages as st

    config = RunConfig.full()
    tmp = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    spec = SIZES[args.size]
    folder = None
    if spec is not None:
        hidden, layers, heads, inter = spec
        folder = str(build_random_bert(tmp / "model", hidden, args.layers or layers, heads, inter))
    model = load_model(folder)
    validation, test = load_stsb("validation", stsb_dir()), load_stsb("test", stsb_dir())
    calib = build_calibration_set(model, tmp / "calib", CalibrationSpec(count=config.calib_count), pairs=validation, progress=False)
    release_free_memory()
    print(f"{args.size} ({model.config.num_hidden_layers} layers), before the stats{' and plan' if args.stage == 'plan' else ''} stage: "
          f"{memory_line()}", flush=True)
    with RssWatch(args.step * 1e6) as watch:
        stats = st.collect_stats(st.StatsInputs(model, calib, progress=False)).stats
        if args.stage == "plan":
            st.plan(st.PlanInputs(model, calib, validation, test, stats=stats, max_sites=config.plan_max_sites, bracket=config.plan_bracket,
                                  out=tmp / "recipe.json", progress=True, **config.plan_options))
    shutil.rmtree(tmp, ignore_errors=True)  # the random model and calibration set
    print(f"after: {memory_line()}")
    print("| s | RSS GB | running (innermost bertnpu frames) |\n|---:|---:|---|")
    for t, gb, where in watch.highs:
        print(f"| {t:.1f} | {gb:.2f} | {where} |")


if __name__ == "__main__":
    main()
