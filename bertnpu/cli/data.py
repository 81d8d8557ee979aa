"""Commands that build inputs: ``calib`` (calibration data in qbcompiler's format)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import BertnpuError, command, force_option, load_model_arg, model_options, out_option, stsb_options, whole_number


def _sampling(args) -> dict:
    """``{"strategy": ...}`` for CalibrationSpec from ``--sampling`` (or the deprecated ``--strategy``, with one warning line); ``{}``: its default."""
    import sys

    if args.old_strategy is not None:
        if args.sampling is not None and args.sampling != args.old_strategy:
            raise BertnpuError(f"calib got --sampling {args.sampling} and --strategy {args.old_strategy}; give --sampling alone.")
        print("bertnpu: warning: calib --strategy is deprecated (sweep's --strategy is its search strategy); use --sampling.", file=sys.stderr)
    sampling = args.sampling if args.sampling is not None else args.old_strategy
    return {"strategy": sampling} if sampling is not None else {}


def _calib_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--column", default="sentence1", help="sentence1 | sentence2")
    p.add_argument("--count", type=whole_number(1), default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=None, help="truncate samples to N tokens")
    p.add_argument("--sampling", default=None, help="how samples are drawn: random (default) | length-stratified | score-stratified")
    # the earlier spelling: `--strategy` also names the sweep's search strategy, an unrelated knob
    p.add_argument("--strategy", dest="old_strategy", default=None, help=argparse.SUPPRESS)


@command("calib", "build calibration data in qbcompiler's format", model_options, stsb_options("validation"),
         out_option("folder to create (one .npy per sample, npy_files.txt, manifest.json)"), _calib_options, force_option("folder"))
def _calib(args) -> int:
    from ..data.calibration import CalibrationSpec
    from ..data.stsb import load_stsb
    from ..stages import CalibrateInputs, calibrate

    spec = CalibrationSpec(count=args.count, seed=args.seed, split=args.split, column=args.column, max_length=args.max_length, **_sampling(args))
    result = calibrate(CalibrateInputs(load_model_arg(args), Path(args.out), spec, source=load_stsb(spec.split, args.stsb_dir), force=args.force))
    lengths = result.calibration.lengths
    print(f"wrote {result.samples} samples to {args.out} (tokens per sample {lengths.min()}-{lengths.max()}, median {int(sorted(lengths)[len(lengths) // 2])}); "
          f"use {args.out} or {args.out}/npy_files.txt as qbcompiler's calib_data_path")
    return 0
