"""``bertnpu run --quick`` on the default model: the command's wall time and its stages, against the quick run
before issue 14 (same code, the earlier quick settings) measured in the same run.

Target (issue 14): ``--quick`` <= 20 s on 2 cores (75 s before, with the planner). Also measured:
the same command with every Linear in float (``BERTNPU_INTEGER_GEMM=0``, the simulator before the integer GEMM);
the previous quick settings (250 test pairs, sweep proxy 128 and plan proxy 48 sentences) with this code.
The earlier settings: 64 calibration samples, an 8-cell sweep on 256 proxy sentences, 300
validation / 500 test pairs, the plan with PlanSpec's defaults, 2 sites and the profile bracket.
Run: .venv/bin/python benchmarks/bench_quick_run.py [--no-reference]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from _common import REPO, stsb_dir
from bertnpu.run_config import RunConfig
from bertnpu.ui.run import run_pipeline


def EarlierQuick(**changes) -> RunConfig:  # noqa: N802
    """RunConfig.quick() as it was before issue 14."""
    return RunConfig.quick(calib_count=64, topk_ratios=(0.01, 0.1), proxy_sentences=256, validation_pairs=300, test_pairs=500, plan_max_sites=2,
                           plan_proxy_sentences=None, plan_configs=None, plan_transforms=None, plan_candidate_roles=None, plan_bracket=True, **changes)


def PreviousQuick(**changes) -> RunConfig:  # noqa: N802
    """RunConfig.quick() as it was before the last round of speed-ups: 250 test pairs, the sweep's
    proxy on 128 sentences, the plan's on 48 and every site tried (the stage code of this checkout: only the settings differ)."""
    return RunConfig.quick(proxy_sentences=128, test_pairs=250, plan_proxy_sentences=48, plan_candidate_roles=None, **changes)


def stage_seconds(summary: dict) -> str:
    return ", ".join(f"{k} {summary[k]['seconds']:.1f}" for k in ("analysis", "embeddings", "calibration", "stats", "sweep", "plan", "evaluation", "compile"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--no-reference", action="store_true", help="skip the earlier quick run (about a minute or more)")
    args = parser.parse_args()
    print(f"threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.2f} (1-min)")
    env = {**os.environ, "BERTNPU_STSB_DIR": stsb_dir()}
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "bertnpu"), "run", "--quick", "--out", f"{tmp}/cli", "--json"], check=True, env=env,
                       cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cli = time.perf_counter() - start
        summary = json.loads(Path(f"{tmp}/cli/summary.json").read_text())
        print(f"bertnpu run --quick (the command, imports included)   {cli:6.1f} s  (target <= 20 s)")
        print(f"  stages: {stage_seconds(summary)}")
        start = time.perf_counter()  # the reference: the same command with every Linear in float (before the integer GEMM)
        subprocess.run([str(Path(sys.executable).parent / "bertnpu"), "run", "--quick", "--out", f"{tmp}/float", "--json"], check=True,
                       env={**env, "BERTNPU_INTEGER_GEMM": "0"}, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        flt = time.perf_counter() - start
        floats = json.loads(Path(f"{tmp}/float/summary.json").read_text())
        same = floats["sweep"]["recommended"] == summary["sweep"]["recommended"] and \
            floats["plan"]["recipe"]["activation_16bits"] == summary["plan"]["recipe"]["activation_16bits"]
        print(f"the same command with float Linears                  {flt:6.1f} s   ratio {cli / flt:.2f}; same recommendation and planned sites: {same}")
        print(f"  stages: {stage_seconds(floats)}")
        new = run_pipeline(RunConfig.quick(stsb_dir=stsb_dir(), out=f"{tmp}/new"), log=lambda line: None)
        print(f"quick run in this process                           {new['seconds']:6.1f} s")
        prev = run_pipeline(PreviousQuick(stsb_dir=stsb_dir(), out=f"{tmp}/prev"), log=lambda line: None)
        same = prev["sweep"]["recommended"] == new["sweep"]["recommended"] and prev["plan"]["recipe"]["activation_16bits"] == new["plan"]["recipe"]["activation_16bits"]
        print(f"quick run with the previous settings (same code)    {prev['seconds']:6.1f} s   ratio new / previous {new['seconds'] / prev['seconds']:.2f}; "
              f"same recommendation and planned 16-bit sites: {same}")
        print(f"  stages: {stage_seconds(prev)}")
        if not args.no_reference:
            old = run_pipeline(EarlierQuick(stsb_dir=stsb_dir(), out=f"{tmp}/old"), log=lambda line: None)
            print(f"quick run with the earlier settings (reference)     {old['seconds']:6.1f} s   ratio new / earlier {new['seconds'] / old['seconds']:.2f}")
            print(f"  stages: {stage_seconds(old)}")
    print(f"load {os.getloadavg()[0]:.2f} (1-min)")


if __name__ == "__main__":
    main()
