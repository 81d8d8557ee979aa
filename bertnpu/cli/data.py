"""Commands that build inputs: ``calib`` (calibration data in qbcompiler's format)."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import command, force_option, load_model_arg, model_options, out_option, stsb_options, whole_number


def _calib_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--column", default="sentence1", help="sentence1 | sentence2")
    p.add_argument("--count", type=whole_number(1), default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=None, help="truncate samples to N tokens")
    p.add_argument("--strategy", default="random", help="random | length-stratified | score-stratified")


@command("calib", "build calibration data in qbcompiler's format", model_options, stsb_options("validation"),
         out_option("folder to create (one .npy per sample, npy_files.txt, manifest.json)"), _calib_options, force_option("folder"))
def _calib(args) -> int:
    from ..data.calibration import CalibrationSpec
    from ..data.stsb import load_stsb
    from ..stages import CalibrateInputs, calibrate

    spec = CalibrationSpec(count=args.count, seed=args.seed, split=args.split, column=args.column, strategy=args.strategy, max_length=args.max_length)
    result = calibrate(CalibrateInputs(load_model_arg(args), Path(args.out), spec, source=load_stsb(spec.split, args.stsb_dir), force=args.force))
    lengths = result.calibration.lengths
    print(f"wrote {result.samples} samples to {args.out} (tokens per sample {lengths.min()}-{lengths.max()}, median {int(sorted(lengths)[len(lengths) // 2])}); "
          f"use {args.out} or {args.out}/npy_files.txt as qbcompiler's calib_data_path")
    return 0
