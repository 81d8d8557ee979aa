"""Device-side commands: ``eval`` (FP32, or FP32 vs simulated vs NPU with ``--mxq``) and ``compile``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .common import (BertnpuError, batch_size_arg, batch_size_option, calibration_arg, command, emit_json, force_option, json_option, limit_option,
                     load_model_arg, model_options, pairs_arg, path_text, pooling_option, recipe_arg, recipe_option, stats_arg, stats_source_options,
                     stsb_options, target_device_option, warn_moot_overrides, whole_number)


def _eval_options(p: argparse.ArgumentParser) -> None:
    batch_size_option(p)
    p.add_argument("--mxq", help="also run this compiled model on the NPU (needs qbruntime: pip install 'bertnpu[npu]')")
    p.add_argument("--weights", help="weight_dict.pth for the CPU part with --mxq (default: from the model)")
    p.add_argument("--calib", help="with --mxq: calibration set, to simulate the recipe of <mxq>.recipe.json under each precision profile")
    p.add_argument("--stats", help="with --mxq: stats file instead of --calib")
    p.add_argument("--report", help="with --mxq: JSON file for the three-way check (default: <mxq>.check.json)")
    p.add_argument("--verbose", action="store_true", help="with --mxq: keep the runtime's native log lines")


@command("eval", "STS-B Spearman/Pearson of the FP32 model (with --mxq: FP32 vs simulated vs NPU)", model_options, pooling_option, stsb_options("test"),
         limit_option, json_option, _eval_options, recipe_option("with --mxq and no <mxq>.recipe.json: recipe or QuantConfig JSON to simulate"),
         force_option("--report file"))
def _eval(args) -> int:
    from ..device.preflight import check_model, preflight

    facts = None
    if args.mxq and not args.weights:  # before anything is loaded or encoded: a missing/broken .mxq or no NPU fails in a second
        facts = preflight(args.mxq, verbose=args.verbose)
    pairs = pairs_arg(args, args.split)
    model = load_model_arg(args)
    if args.mxq:
        if args.weights:  # a bad weight dict (checked against the model's hidden size) is refused before the NPU is opened
            from ..model.cpu_part import load_weight_dict

            load_weight_dict(args.weights, hidden_size=model.config.hidden_size)
            facts = preflight(args.mxq, verbose=args.verbose)
        args.facts = check_model(facts, model.config.hidden_size, model.name)
        return _eval_npu(args, model, pairs)
    from ..stages.simulate import fp32_scores

    result = fp32_scores(model, pairs, progress=not args.json, **batch_size_arg(args))
    result.update(model=model.name, split=args.split, pooling=model.pooling.mode)
    if args.json:
        emit_json(result)
    else:
        print(f"{model.name} on STS-B {args.split} ({result['pairs']} pairs, {model.pooling.mode} pooling): "
              f"Spearman {result['spearman']:.4f} [{result['spearman_ci'][0]:.4f}, {result['spearman_ci'][1]:.4f}] (95 % paired bootstrap), "
              f"Pearson {result['pearson']:.4f} in {result['seconds']:.1f} s")
    return 0


def _eval_npu(args, model, pairs) -> int:
    from ..device.compile_record import read_compile_record, record_path_for

    if read_compile_record(args.mxq) is not None:
        return _eval_three_way(args, model, pairs)
    simulated = ("" if not (args.calib or args.stats) else f", simulating {args.recipe}" if args.recipe else
                 ", simulating the tutorial's config; pass --recipe FILE to simulate the one it was compiled with")
    print(f"No {record_path_for(args.mxq)} beside the .mxq, so its recipe is unknown: plain evaluation (FP32 vs NPU{simulated}); "
          "compile with `bertnpu compile --recipe` for the three-way check.", file=sys.stderr)
    return _eval_npu_plain(args, model, pairs)


def _eval_three_way(args, model, pairs) -> int:
    from ..artifacts import atomic_write_json
    from ..device.three_way import format_three_way, three_way_check

    if args.recipe:
        raise BertnpuError(f"{args.mxq} has its recipe in {args.mxq}.recipe.json, which the check simulates; drop --recipe {args.recipe}.")
    if not (args.calib or args.stats):
        raise BertnpuError(f"The three-way check simulates the recipe in {args.mxq}.recipe.json: pass --calib DIR (or --stats FILE).")
    report = Path(args.report or f"{args.mxq}.check.json")
    if report.exists() and not args.force:
        raise BertnpuError(f"The report {str(report)!r} already exists; pass --force to replace it, or --report another.json.")
    calib = calibration_arg(args, model) if args.calib else None
    result = three_way_check(model, args.mxq, pairs, stats_arg(args, model), calib=calib, weights=args.weights, progress=not args.json,
                             facts=args.facts)
    result.update(model=model.name, split=args.split, spearman=result["npu_spearman"], pearson=result["npu_pearson"], report=str(report))
    atomic_write_json(report, result, force=True)
    if args.json:
        emit_json(result)
    else:
        print(format_three_way(result))
        print(f"wrote {report}")
    return 0


def _eval_npu_plain(args, model, pairs) -> int:
    from ..device.npu_runtime import QbruntimeEncoder
    from ..stages.simulate import fp32_scores, simulated_scores
    from ..tune.evaluate import evaluate_sts

    result = {"model": model.name, "split": args.split, "pairs": len(pairs), "mxq": args.mxq}
    fp32 = fp32_scores(model, pairs, progress=not args.json, keep_cosines=True)  # the NPU's difference is paired with it
    result["fp32_spearman"], result["fp32_spearman_ci"] = fp32["spearman"], fp32["spearman_ci"]
    if args.calib or args.stats:
        recipe = recipe_arg(args.recipe)  # the .mxq's own recipe would be in its compile record, which it lacks here
        result["int8_sim_spearman"] = simulated_scores(model, stats_arg(args, model), recipe, pairs, progress=not args.json)[0]["spearman"]
        result["config"] = recipe.calibration.to_dict()
    with QbruntimeEncoder(model, args.mxq, weights=args.weights, progress=not args.json, facts=args.facts, verbose=args.verbose) as npu:
        npu_result = evaluate_sts(npu, pairs, reference=fp32)
    result["npu_spearman"], result["npu_pearson"] = npu_result["spearman"], npu_result["pearson"]
    result.update({k: npu_result[k] for k in ("spearman_ci", "diff_to_fp32", "diff_to_fp32_ci")})
    result["spearman"], result["pearson"] = npu_result["spearman"], npu_result["pearson"]
    if args.json:
        emit_json(result)
    else:
        sim_text = f"{result['int8_sim_spearman']:.4f}" if "int8_sim_spearman" in result else "n/a (pass --calib)"
        ci = result["diff_to_fp32_ci"]
        print(f"STS-B {args.split} Spearman ({len(pairs)} pairs): FP32 {result['fp32_spearman']:.4f} | simulated INT8 {sim_text} | NPU {result['npu_spearman']:.4f} "
              f"({result['diff_to_fp32']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}] to FP32, paired 95 % bootstrap)")
    return 0


def _compile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="the .mxq to write", type=path_text)
    p.add_argument("--bundle", help="write a self-contained compile bundle to this folder instead (no qbcompiler needed)")
    p.add_argument("--device", choices=["cpu", "gpu"], help="qbcompiler's compile device")
    p.add_argument("--allow-missing-knobs", action="store_true",
                   help="compile with a qbcompiler that lacks a knob the recipe uses (1.0.x: bit_config, equivalent_transformation_config)")


@command("compile", "compile to .mxq with qbcompiler, or export a compile bundle", model_options, stats_source_options(required=True),
         recipe_option("recipe JSON to compile exactly (from `bertnpu plan`; a QuantConfig JSON also works)"), _compile_options,
         target_device_option, force_option(".mxq or bundle"))
def _compile(args) -> int:
    from ..device.qbcompiler_adapter import load_qbcompiler
    from ..stages import CompileInputs, compile_or_bundle

    recipe = recipe_arg(args.recipe)
    if args.target_device is not None:  # into the recipe, so the .mxq's record and a bundle's recipe.json carry it
        from ..device.qb_calls import resolve_target_device

        recipe = recipe.with_(target_device=resolve_target_device(0, None, args.target_device))
    warn_moot_overrides(recipe)
    if not args.bundle:
        load_qbcompiler()  # fail fast, before loading anything
        if not args.out:
            raise BertnpuError("Pass --out model.mxq to compile, or --bundle DIR to export a compile bundle.")
    model = load_model_arg(args)
    r = compile_or_bundle(CompileInputs(model, calibration_arg(args, model), recipe, target="bundle" if args.bundle else "mxq",
                                        mxq=Path(args.out) if args.out else None, bundle=Path(args.bundle) if args.bundle else None,
                                        device=args.device, allow_missing_knobs=args.allow_missing_knobs, force=args.force))
    if r.bundle:
        print(f"wrote compile bundle {r.bundle}: see {r.bundle}/README.md for the recipe and the docker commands")
        return 0
    from ..device.compile_record import read_compile_record, record_path_for

    record = read_compile_record(r.mxq)
    print(f"wrote {r.mxq} and {record_path_for(r.mxq)} ({record.output.describe()})")
    for site, name in record.operators.items():
        print(f"  16-bit: {site} -> operator {name}")
    for name in record.operators_16bit[len(record.sites_16bit):]:
        print(f"  16-bit: operator {name} (from the recipe's activation_16bits_operators)")
    if record.knobs_dropped:
        print(f"compiled WITHOUT {', '.join(record.knobs_dropped)} (--allow-missing-knobs): the .mxq is not the recipe that was simulated", file=sys.stderr)
    return 0
