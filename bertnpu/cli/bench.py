"""``bertnpu bench --mxq``: NPU sentences/s and latency p50/p95 per core mode, next to the FP32 CPU encoder timed in the same run."""

from __future__ import annotations

import argparse

from .common import (command, emit_json, json_option, limit_option, load_model_arg, model_options, pairs_arg, pooling_option,
                     stsb_options)


def _bench_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--mxq", required=True, help="the compiled model to time (needs qbruntime and a Mobilint NPU)")
    p.add_argument("--weights", help="weight_dict.pth for the CPU part (default: from the model)")
    p.add_argument("--modes", default="auto,single,multi,global4,global8", help="core modes to time, comma-separated")
    p.add_argument("--verbose", action="store_true", help="keep the runtime's native log lines")


@command("bench", "time a .mxq on the NPU (each core mode) and the FP32 CPU encoder on STS-B sentences", model_options, pooling_option,
         stsb_options("test"), limit_option, json_option, _bench_options)
def _bench(args) -> int:
    from ..device.bench import bench_mxq, format_bench
    from ..device.preflight import CORE_MODES, preflight
    from ..errors import BertnpuError

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in CORE_MODES]
    if unknown or not modes:
        raise BertnpuError(f"--modes {args.modes!r} holds {', '.join(unknown) or 'no mode'}; use some of {', '.join(CORE_MODES)}.")
    preflight(args.mxq, verbose=args.verbose)  # a missing/broken .mxq or no NPU: one sentence before the model loads
    pairs = pairs_arg(args, args.split)
    sentences = list(dict.fromkeys(list(pairs.sentence1) + list(pairs.sentence2)))
    result = bench_mxq(load_model_arg(args), args.mxq, sentences, weights=args.weights, modes=modes, progress=not args.json,
                       verbose=args.verbose)
    if args.json:
        emit_json(result)
    else:
        print(format_bench(result))
    return 0
