"""``bertnpu run``: the whole pipeline headless."""

from __future__ import annotations

import argparse

from .common import command, force_option, json_option, line_then_json, model_options, out_option, stsb_options


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smoke run: small calibration set, sweep, plan and evaluation (about 17 s on 2 cores)")
    p.add_argument("--no-plan", dest="plan", action="store_false",
                   help="skip the 16-bit planner (most of a full run's time): evaluate and compile the sweep's INT8-only recommendation")


@command("run", "the whole pipeline headless, with summary.json and report.html", model_options, stsb_options(),
         out_option("output folder (default: bertnpu-out)", required=False, default="bertnpu-out"), _run_options, force_option("stage result: recompute every stage, and replace files in --out that bertnpu did not write"),
         json_option)
def _run(args) -> int:
    from ..run_config import RunConfig
    from ..ui.run import run_pipeline

    preset = RunConfig.quick if args.quick else RunConfig.full
    summary = run_pipeline(preset(model=args.model, stsb_dir=args.stsb_dir, out=args.out, force=args.force,
                                  trust_remote_code=args.trust_remote_code, plan=args.plan))
    ev = summary["evaluation"]
    planned = f" | planned, compiled {ev['planned']['spearman']:.4f}" if ev.get("planned") else ""
    return line_then_json(args, f"STS-B test Spearman: FP32 {ev['fp32']['spearman']:.4f} | INT8 tutorial config {ev['tutorial_default']['spearman']:.4f} | "
                                 f"INT8 recommended {ev['recommended']['spearman']:.4f}{planned} ({ev['pairs']} pairs, simulated)", summary)
