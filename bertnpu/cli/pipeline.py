"""``bertnpu run``: the whole pipeline headless."""

from __future__ import annotations

import argparse

from .common import command, force_option, json_option, line_then_json, model_options, out_option, stsb_options, target_device_option


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smoke run: small calibration set, sweep, plan and evaluation (about 17 s on 2 cores)")
    p.add_argument("--no-plan", dest="plan", action="store_false",
                   help="skip the 16-bit planner (most of a full run's time): evaluate and compile the sweep's INT8-only recommendation")


@command("run", "the whole pipeline headless, with summary.json and report.html", model_options, stsb_options(),
         out_option("output folder (default: bertnpu-out)", required=False, default="bertnpu-out"), _run_options, target_device_option, force_option("stage result: recompute every stage, and replace files in --out that bertnpu did not write"),
         json_option)
def _run(args) -> int:
    from ..run_config import RunConfig
    from ..ui.run import run_pipeline

    preset = RunConfig.quick if args.quick else RunConfig.full
    summary = run_pipeline(preset(model=args.model, stsb_dir=args.stsb_dir, out=args.out, force=args.force,
                                  trust_remote_code=args.trust_remote_code, plan=args.plan,
                                  target_device=args.target_device))
    ev = summary["evaluation"]

    def shown(entry: dict) -> str:  # a Spearman with its paired difference to FP32 and that difference's 95 % interval
        ci = entry.get("diff_to_fp32_ci")
        return f"{entry['spearman']:.4f}" + (f" ({entry['diff_to_fp32']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}])" if ci else "")

    planned = f" | planned, compiled {shown(ev['planned'])}" if ev.get("planned") else ""
    return line_then_json(args, f"STS-B test Spearman: FP32 {ev['fp32']['spearman']:.4f} | INT8 tutorial config {shown(ev['tutorial_default'])} | "
                                 f"INT8 recommended {shown(ev['recommended'])}{planned} ({ev['pairs']} pairs, simulated; "
                                 "differences to FP32 with paired 95 % bootstrap intervals)", summary)
