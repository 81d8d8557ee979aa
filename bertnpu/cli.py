"""The ``bertnpu`` command: parses arguments, calls the stages of :mod:`bertnpu.stages`, prints their results.

Each command is one handler registered with :func:`command`, next to the option helpers it
uses; an option shared by several commands (``--model``, ``--stsb-dir``, ``--json``, ...)
is declared once, in its helper.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from .errors import BertnpuError
from .version import __version__

Options = Callable[[argparse.ArgumentParser], None]


class _Parser(argparse.ArgumentParser):
    """argparse with one line for a bad argument (the usage block is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`.\n")


def whole_number(minimum: int, zero: Optional[str] = None) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (or 0 when ``zero`` says what 0 means); argparse names the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (value < minimum and not (zero and value == 0)):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {minimum} or more" + (f" (or 0 for {zero})" if zero else ""))
        return value
    return parse


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[Options, ...]
    handler: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, *options: Options):
    """Register a handler as ``bertnpu <name>`` with the option helpers that declare its arguments."""
    def register(fn):
        COMMANDS[name] = Command(name, help, options, fn)
        return fn

    return register


# -- option helpers (each option declared once) ------------------------------------------------
def model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="local folder or Hugging Face id (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repository (off by default)")


def pooling_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pooling", default="auto", help="auto (sentence-transformers config) | mean | cls | max | pooler")


def stsb_options(split: Optional[str] = None) -> Options:
    """``--stsb-dir``, and ``--split`` (default ``split``) when the command reads one split."""
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stsb-dir", default=None, help="folder with sts-{train,dev,test}.csv (or env BERTNPU_STSB_DIR); default: hub mteb/stsbenchmark-sts")
        if split is not None:
            p.add_argument("--split", default=split, help="train | validation | test")
    return add


def json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="last stdout line: one JSON object")


def force_option(what: str) -> Options:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--force", action="store_true", help=f"replace an existing {what}")
    return add


def limit_option(p: argparse.ArgumentParser) -> None:
    # Spearman needs at least 2 pairs to be a number at all
    p.add_argument("--limit", type=whole_number(2, zero="all pairs"), default=0, help="only the first N pairs (of each split)")


def stats_source_options(required: bool = False) -> Options:
    """``--calib`` (a calibration set) and, unless ``required``, ``--stats`` instead of it."""
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--calib", required=required, help="calibration folder or npy_files.txt (from `bertnpu calib`)")
        if not required:
            p.add_argument("--stats", help="stats file from `bertnpu stats` (instead of --calib)")
    return add


def config_option(default_text: str = "the tutorial's config") -> Options:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help=f"recipe or QuantConfig JSON (default: {default_text})")
    return add


def path_text(text: str) -> str:
    """An argparse type: a path that is not blank (an empty ``--out`` would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty; give a path (use . for the current folder)")
    return text


def out_option(help: str, required: bool = True, default: Optional[str] = None) -> Options:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", required=required, default=default, help=help, type=path_text)
    return add


# -- shared argument readers ---------------------------------------------------------------------
def _emit_json(data: dict) -> None:
    print(json.dumps(data, sort_keys=True, default=float))


def _line_then_json(args, line: str, data: dict) -> int:
    """Print the command's one-line summary; with --json, ``data`` as the last stdout line."""
    print(line)
    if args.json:
        _emit_json(data)
    return 0


def _load(args):
    from .model.load import load_model

    return load_model(args.model, pooling=getattr(args, "pooling", "auto"), trust_remote_code=args.trust_remote_code)


def _pairs(args, split: str):
    from .data.stsb import load_stsb

    pairs = load_stsb(split, args.stsb_dir)
    return pairs.subset(args.limit) if getattr(args, "limit", 0) else pairs


def _recipe(path: Optional[str]):
    from .quant.recipe import load_recipe

    return load_recipe(path)


def _calibration(args, model):
    from .data.calibration import load_calibration_set

    return load_calibration_set(args.calib, model)


def _stats_for(args, model):
    """Stats from --stats FILE, or collected from --calib DIR."""
    from .quant.stats import load_stats
    from .stages import StatsInputs, collect_stats

    if getattr(args, "stats", None):
        return load_stats(args.stats, model)
    if not args.calib:
        raise BertnpuError("Pass --calib DIR (a calibration set from `bertnpu calib`) or --stats FILE (from `bertnpu stats`).")
    return collect_stats(StatsInputs(model, _calibration(args, model), progress=not getattr(args, "json", False), describe=False)).stats


def _floats(text: str, option: str = "the list", allow_empty: bool = False) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BertnpuError(f"Could not read {option} {text!r} as comma-separated numbers; write e.g. 0.99,0.999,1.0.") from None
    if not values and not allow_empty:
        raise BertnpuError(f"{option} {text!r} holds no numbers; give at least one, e.g. 0.99,0.999,1.0.")
    return values


def _ints(text: str, option: str = "the list", allow_empty: bool = False) -> list[int]:
    values = _floats(text, option, allow_empty)
    bad = [v for v in values if v != int(v)]
    if bad:
        raise BertnpuError(f"{option} {text!r} holds {bad[0]:g}, not a whole number; write e.g. 0,1.")
    return [int(v) for v in values]


# -- commands ----------------------------------------------------------------------------------
@command("info", "architecture and CPU/NPU placement", model_options, json_option)
def _info(args) -> int:
    from .model.analysis import format_summary, model_summary

    summary = model_summary(_load(args))
    if args.json:
        _emit_json(summary)
    else:
        print(format_summary(summary))
    return 0


@command("export-embeddings", "write the CPU part's weight_dict.pth", model_options, out_option("weight_dict.pth to write"), force_option("file"))
def _export(args) -> int:
    from .stages import ExportInputs, export_embeddings

    result = export_embeddings(ExportInputs(_load(args), Path(args.out), force=args.force))
    print(f"wrote {result.weight_dict} (keys {', '.join(result.keys)})")
    return 0


def _eval_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=whole_number(1), default=64)
    p.add_argument("--mxq", help="also run this compiled model on the NPU (needs qbruntime: pip install 'bertnpu[npu]')")
    p.add_argument("--weights", help="weight_dict.pth for the CPU part with --mxq (default: from the model)")
    p.add_argument("--calib", help="with --mxq: calibration set, to simulate the recipe of <mxq>.recipe.json under each precision profile")
    p.add_argument("--stats", help="with --mxq: stats file instead of --calib")
    p.add_argument("--config", help="with --mxq and no <mxq>.recipe.json: recipe or QuantConfig JSON to simulate (default: the tutorial's)")
    p.add_argument("--report", help="with --mxq: JSON file for the three-way check (default: <mxq>.check.json)")


@command("eval", "STS-B Spearman/Pearson of the FP32 model (with --mxq: FP32 vs simulated vs NPU)", model_options, pooling_option, stsb_options("test"),
         limit_option, json_option, _eval_options, force_option("--report file"))
def _eval(args) -> int:
    from .stages.simulate import fp32_scores

    pairs = _pairs(args, args.split)
    model = _load(args)
    if args.mxq:
        if args.weights:  # a bad weight dict is refused before any work or notice
            from .model.cpu_part import load_weight_dict

            load_weight_dict(args.weights, hidden_size=model.config.hidden_size)
        return _eval_npu(args, model, pairs)
    result = fp32_scores(model, pairs, progress=not args.json, batch_size=args.batch_size)
    result.update(model=model.name, split=args.split, pooling=model.pooling.mode)
    if args.json:
        _emit_json(result)
    else:
        print(f"{model.name} on STS-B {args.split} ({result['pairs']} pairs, {model.pooling.mode} pooling): "
              f"Spearman {result['spearman']:.4f}, Pearson {result['pearson']:.4f} in {result['seconds']:.1f} s")
    return 0


def _eval_npu(args, model, pairs) -> int:
    from .device.compile_record import read_compile_record, record_path_for

    if read_compile_record(args.mxq) is not None:
        return _eval_three_way(args, model, pairs)
    print(f"No {record_path_for(args.mxq)} beside the .mxq, so its recipe is unknown: plain evaluation (FP32 vs NPU); "
          "compile with `bertnpu compile --recipe` for the three-way check.", file=sys.stderr)
    return _eval_npu_plain(args, model, pairs)


def _eval_three_way(args, model, pairs) -> int:
    from .artifacts import atomic_write_json
    from .device.three_way import format_three_way, three_way_check

    if args.config:
        raise BertnpuError(f"{args.mxq} has its recipe in {args.mxq}.recipe.json, which the check simulates; drop --config {args.config}.")
    if not (args.calib or args.stats):
        raise BertnpuError(f"The three-way check simulates the recipe in {args.mxq}.recipe.json: pass --calib DIR (or --stats FILE).")
    report = Path(args.report or f"{args.mxq}.check.json")
    if report.exists() and not args.force:
        raise BertnpuError(f"The report {str(report)!r} already exists; pass --force to replace it, or --report another.json.")
    calib = _calibration(args, model) if args.calib else None
    result = three_way_check(model, args.mxq, pairs, _stats_for(args, model), calib=calib, weights=args.weights, progress=not args.json)
    result.update(model=model.name, split=args.split, spearman=result["npu_spearman"], pearson=result["npu_pearson"], report=str(report))
    atomic_write_json(report, result, force=True)
    if args.json:
        _emit_json(result)
    else:
        print(format_three_way(result))
        print(f"wrote {report}")
    return 0


def _eval_npu_plain(args, model, pairs) -> int:
    from .device.npu_runtime import QbruntimeEncoder
    from .device.qbcompiler_adapter import config_path_for
    from .stages.simulate import fp32_scores, simulated_scores
    from .tune.evaluate import evaluate_sts

    result = {"model": model.name, "split": args.split, "pairs": len(pairs), "mxq": args.mxq}
    result["fp32_spearman"] = fp32_scores(model, pairs, progress=not args.json)["spearman"]
    if args.calib or args.stats:
        cfg_file = args.config or (config_path_for(args.mxq) if config_path_for(args.mxq).is_file() else None)
        recipe = _recipe(cfg_file)
        result["int8_sim_spearman"] = simulated_scores(model, _stats_for(args, model), recipe, pairs, progress=not args.json)[0]["spearman"]
        result["config"] = recipe.calibration.to_dict()
    with QbruntimeEncoder(model, args.mxq, weights=args.weights, progress=not args.json) as npu:
        npu_result = evaluate_sts(npu, pairs)
    result["npu_spearman"], result["npu_pearson"] = npu_result["spearman"], npu_result["pearson"]
    result["spearman"], result["pearson"] = npu_result["spearman"], npu_result["pearson"]
    if args.json:
        _emit_json(result)
    else:
        sim_text = f"{result['int8_sim_spearman']:.4f}" if "int8_sim_spearman" in result else "n/a (pass --calib)"
        print(f"STS-B {args.split} Spearman ({len(pairs)} pairs): FP32 {result['fp32_spearman']:.4f} | simulated INT8 {sim_text} | NPU {result['npu_spearman']:.4f}")
    return 0


def _calib_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--column", default="sentence1", help="sentence1 | sentence2")
    p.add_argument("--count", type=whole_number(1), default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=None, help="truncate samples to N tokens")
    p.add_argument("--strategy", default="random", help="random | length-stratified | score-stratified")


@command("calib", "build calibration data in qbcompiler's format", model_options, stsb_options("validation"),
         out_option("folder to create (one .npy per sample, npy_files.txt, manifest.json)"), _calib_options, force_option("folder"))
def _calib(args) -> int:
    from .data.calibration import CalibrationSpec
    from .data.stsb import load_stsb
    from .stages import CalibrateInputs, calibrate

    spec = CalibrationSpec(count=args.count, seed=args.seed, split=args.split, column=args.column, strategy=args.strategy, max_length=args.max_length)
    result = calibrate(CalibrateInputs(_load(args), Path(args.out), spec, source=load_stsb(spec.split, args.stsb_dir), force=args.force))
    lengths = result.calibration.lengths
    print(f"wrote {result.samples} samples to {args.out} (tokens per sample {lengths.min()}-{lengths.max()}, median {int(sorted(lengths)[len(lengths) // 2])}); "
          f"use {args.out} or {args.out}/npy_files.txt as qbcompiler's calib_data_path")
    return 0


@command("sites", "list the quantization sites of the NPU part", model_options, json_option)
def _sites(args) -> int:
    from .quant.sites import sites_of

    sites = sites_of(_load(args))
    if args.json:
        _emit_json({"sites": [s.__dict__ for s in sites]})
    else:
        for s in sites:
            print(f"{s.name:34s} {s.layout:9s} {s.description}")
    return 0


def _batch_size_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--batch-size", type=whole_number(1), default=32)


@command("stats", "activation statistics of every site over a calibration set", model_options, stats_source_options(required=True),
         out_option("stats file to write (.npz)"), _batch_size_option, force_option("stats file"))
def _stats(args) -> int:
    from .artifacts import check_writable
    from .stages import StatsInputs, collect_stats

    check_writable(args.out, args.force, "stats file")  # before loading anything
    model = _load(args)
    result = collect_stats(StatsInputs(model, _calibration(args, model), out=Path(args.out), batch_size=args.batch_size, force=args.force))
    print(f"wrote statistics of {result.sites} sites over {result.samples} calibration samples to {args.out}")
    return 0


def _keep_fp32_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-fp32", default="", help="comma-separated sites to keep in FP32 (a diagnostic: no device counterpart; use --a16)")
    p.add_argument("--recipe", help="recipe JSON (from `bertnpu plan`); same as --config")
    p.add_argument("--profile", help="precision profile: aries (default), all-int8 or optimistic")
    p.add_argument("--a16", default="", help="comma-separated sites whose activations go to 16 bits (added to the recipe's)")


def _recipe_with_overrides(args):
    """The recipe of --recipe/--config with --profile and --a16 applied."""
    if args.recipe and args.config:
        raise BertnpuError(f"Pass the recipe once: --recipe {args.recipe} or --config {args.config}, not both.")
    recipe = _recipe(args.recipe or args.config)
    extra = tuple(s for s in (args.a16 or "").split(",") if s.strip())
    changes = {}
    if args.profile:
        changes["profile"] = args.profile
    if extra:
        changes["activation_16bits"] = recipe.activation_16bits + extra
    return recipe.with_(**changes) if changes else recipe


@command("simulate", "STS-B Spearman of the simulated INT8 model next to FP32", model_options, stsb_options("validation"), config_option(),
         stats_source_options(), _keep_fp32_option, limit_option, json_option)
def _simulate(args) -> int:
    from .stages import SimulateInputs, simulate

    recipe = _recipe_with_overrides(args)
    pairs = _pairs(args, args.split)
    model = _load(args)
    keep = tuple(s for s in (args.keep_fp32 or "").split(",") if s)
    recipe.check_sites(site.name for site in list_sites_of(model))
    _warn_moot_overrides(recipe)
    calib = _calibration(args, model) if args.calib else None
    r = simulate(SimulateInputs(model, _stats_for(args, model), pairs, recipe, keep_fp32=keep, progress=not args.json, bracket=True, calib=calib))
    if args.json:
        _emit_json(r.to_dict())
    else:
        bracket = " | ".join(f"{name} {value:.4f}" for name, value in r.profiles.items())
        diag = f"; {len(keep)} site(s) kept in FP32, a diagnostic with no device counterpart" if keep else ""
        print(f"{r.model} on STS-B {r.split}: FP32 Spearman {r.fp32_spearman:.4f}, simulated ({recipe.label()}{diag}) {r.spearman:.4f} "
              f"(delta {r.spearman - r.fp32_spearman:+.4f}); profile bracket: {bracket}")
    return 0


def _warn_moot_overrides(recipe) -> None:
    """One stderr line when 16-bit sites include ones whose override was seen to change nothing on the device."""
    from .quant.precision import override_no_effect

    moot = [s for s in recipe.activation_16bits if override_no_effect(s)]
    if moot:
        shown = ", ".join(moot[:3]) + (f" and {len(moot) - 3} more" if len(moot) > 3 else "")
        print(f"note: 16-bit site(s) {shown}: {override_no_effect(moot[0])}; the simulated gain may not appear on the NPU.", file=sys.stderr)


def list_sites_of(model):
    from .quant.sites import list_sites

    return list_sites(model)


# what `bertnpu sweep` writes into --out
SWEEP_OUTPUTS = ("sweep.csv", "sweep.json", "sweep_heatmap.png", "sweep_cache.jsonl", "recommended_config.json", "recommended_recipe.json",
                 "recommendation.json")


def _sweep_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--percentiles", default="0.99,0.999,0.9999,1.0")
    p.add_argument("--topk-ratios", default="0.001,0.01,0.1")
    p.add_argument("--modes", default="1", help="e.g. 0,1,2")
    p.add_argument("--methods", default="", help="e.g. 0,1 (default: the base config's)")
    p.add_argument("--outputs", default="", help="e.g. 0,1 (default: the base config's)")
    p.add_argument("--wide", action="store_true", help="the wide search `bertnpu run` uses (methods 0-3 x outputs 0/1 x modes 0-2) instead of the grid")
    p.add_argument("--strategy", choices=("fast", "exhaustive"), default="fast",
                   help="fast: equal range sets once, proxy ranking, the best 4 on the full split; exhaustive: every distinct range set on the full split")
    p.add_argument("--test", action="store_true", help="report the recommended config once on the test split")


@command("sweep", "grid over percentile x topk_ratio on validation, with a recommendation", model_options, stsb_options(), stats_source_options(),
         out_option("folder for sweep.csv/json, the heatmap, the cache and the recommended config"), config_option("the tutorial's config, as the base"),
         _sweep_options, limit_option, json_option, force_option("file bertnpu did not write (or edited since) in --out"))
def _sweep(args) -> int:
    from .output_folder import OutputFolder
    from .stages import EvaluateInputs, SweepInputs, evaluate, run_sweep

    out = Path(args.out)
    folder = OutputFolder(out, force=args.force)
    folder.preflight(SWEEP_OUTPUTS)  # before the long part; writes nothing
    grid = dict(percentiles=_floats(args.percentiles, "--percentiles"), topk_ratios=_floats(args.topk_ratios, "--topk-ratios"),
                modes=_ints(args.modes, "--modes"), methods=_ints(args.methods, "--methods", allow_empty=True) or None,
                outputs=_ints(args.outputs, "--outputs", allow_empty=True) or None, search="wide" if args.wide else "grid", strategy=args.strategy)
    base = _recipe(args.config)
    validation = _pairs(args, "validation")
    model = _load(args)
    stats = _stats_for(args, model)
    with folder:  # lock, and a record of what the sweep wrote (its cache is claimed, so an interrupted sweep resumes)
        folder.claim(*SWEEP_OUTPUTS)
        result = run_sweep(SweepInputs(model, stats, validation, base, **grid, out=out, progress=not args.json))
        summary = {"configs": result.configs, "recommended": result.recommended, "recommended_recipe": result.recommended_recipe.to_dict(),
                   "validation_spearman": result.validation_spearman}
        if args.test:
            test = evaluate(EvaluateInputs(model, stats, _pairs(args, "test"), recommended=result.recommended_recipe, fidelity=False,
                                           out=out / "recommendation.json", progress=False))
            summary["test"] = test.to_dict()
        folder.settle()
    return _line_then_json(args, f"swept {result.configs} configs on validation; best: {result.recommended_recipe.calibration.label()} "
                                 f"(Spearman {result.validation_spearman:.4f}); wrote {out}/sweep.csv, sweep.json, sweep_heatmap.png, "
                                 "recommended_config.json, recommended_recipe.json", summary)


def _plan_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tolerance", type=float, default=0.005, help="accepted Spearman drop below FP32 on validation (default 0.005)")
    p.add_argument("--profile", default="aries", help="precision profile: aries (default), all-int8 or optimistic")
    p.add_argument("--min-cosine", type=float, default=0.99,
                   help="also require this mean embedding cosine to FP32 on validation (default 0.99; 0: Spearman tolerance alone)")
    p.add_argument("--max-sites", type=whole_number(0), default=8, help="most sites at 16 bits (default 8)")
    p.add_argument("--try-layernorm", action="store_true",
                   help="also try LayerNorm outputs at 16 bits (left out by default: their override was seen to change nothing on ARIES)")
    p.add_argument("--figures", help="folder for plan_pareto.png and plan_sites.png (default: beside --out)")


@command("plan", "cheapest recipe (calibration, transformations, 16-bit sites) within a tolerance of FP32; writes recipe.json",
         model_options, stsb_options(), stats_source_options(required=True), out_option("recipe.json to write"), _plan_options,
         force_option("recipe file"), limit_option, json_option)
def _plan(args) -> int:
    from .artifacts import check_writable
    from .stages.plan import PlanInputs, plan
    from .tune.plan import PlanSpec, format_pareto

    PlanSpec(profile=args.profile, tolerance=args.tolerance, max_sites=args.max_sites, min_cosine=args.min_cosine,
             try_layernorm=args.try_layernorm)  # bad values: one sentence before any work
    out = check_writable(args.out, args.force, "recipe file")
    validation, test = _pairs(args, "validation"), _pairs(args, "test")
    model = _load(args)
    calib = _calibration(args, model)
    stats = _stats_for(args, model)
    figures = Path(args.figures) if args.figures else out.parent
    r = plan(PlanInputs(model, calib, validation, test, stats=stats, profile=args.profile, tolerance=args.tolerance,
                        min_cosine=args.min_cosine, max_sites=args.max_sites, try_layernorm=args.try_layernorm, out=out, figures=figures, force=args.force, progress=not args.json))
    print(format_pareto(r.plan))
    verdict = "within" if r.within_tolerance else "NOT within"
    cos_verdict = "reached" if r.cosine_met else "NOT reached within the site limit"
    print(f"planned [{r.profile}]: {len(r.activation_16bits)} site(s) at 16 bits, validation Spearman {r.validation_spearman:.4f} ({verdict} "
          f"{r.tolerance:g} of FP32 {r.fp32_validation_spearman:.4f}), validation cosine {r.validation_cosine:.4f} (minimum {r.min_cosine:g} "
          f"{cos_verdict}); test Spearman {r.spearman:.4f} (FP32 {r.fp32_spearman:.4f}), "
          f"cosine to FP32 {r.cosine_to_fp32:.4f}; best INT8-only test {r.best_int8_only['spearman']:.4f}; wrote {out}")
    if args.json:
        _emit_json(r.to_dict())
    return 0


@command("analyze", "op inventory with CPU/NPU placement (and the .mblt where qbcompiler is installed)", model_options,
         out_option("folder for ops.csv, ops.json and placement.png (and the .mblt)", required=False), force_option("file"), json_option)
def _analyze(args) -> int:
    from .model.analysis import format_summary
    from .stages import AnalyzeInputs, analyze

    r = analyze(AnalyzeInputs(_load(args), out=Path(args.out) if args.out else None, force=args.force))
    if args.json:
        _emit_json({"summary": r.summary, "blocks": list(r.blocks), "ops": r.ops, "mblt": str(r.mblt) if r.mblt else None})
        return 0
    print(format_summary(dict(r.summary)))
    print()
    print(f"{'block':16s} {'runs on':8s} {'ops':>5s} {'parameters':>12s} {'MFLOP':>9s}   (sentence of {r.sentence_tokens} tokens)")
    for b in r.blocks:
        print(f"{b['block']:16s} {b['placement']:8s} {b['ops']:5d} {b['parameters']:12,d} {b['flops'] / 1e6:9.2f}")
    if args.out:
        print(f"wrote {args.out}/ops.csv ({r.ops} ops), {args.out}/ops.json and {args.out}/placement.png")
    if r.mblt:
        print(f"wrote {r.mblt}: open it in Netron (https://netron.mobilint.com) to see the graph qbcompiler built")
    else:
        print("qbcompiler is not installed, so no .mblt was written; the op inventory above is bertnpu's own (torch.export).")
    return 0


def _compile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="the .mxq to write", type=path_text)
    p.add_argument("--bundle", help="write a self-contained compile bundle to this folder instead (no qbcompiler needed)")
    p.add_argument("--device", choices=["cpu", "gpu"], help="qbcompiler's compile device")
    p.add_argument("--recipe", help="recipe JSON to compile exactly (from `bertnpu plan`; a QuantConfig JSON also works)")
    p.add_argument("--allow-missing-knobs", action="store_true",
                   help="compile with a qbcompiler that lacks a knob the recipe uses (1.0.x: bit_config, equivalent_transformation_config)")


@command("compile", "compile to .mxq with qbcompiler, or export a compile bundle", model_options, stats_source_options(required=True),
         config_option(), _compile_options, force_option(".mxq or bundle"))
def _compile(args) -> int:
    from .device.qbcompiler_adapter import load_qbcompiler
    from .stages import CompileInputs, compile_or_bundle

    if args.recipe and args.config:
        raise BertnpuError(f"Pass the recipe once: --recipe {args.recipe} or --config {args.config}, not both.")
    recipe = _recipe(args.recipe or args.config)
    _warn_moot_overrides(recipe)
    if not args.bundle:
        load_qbcompiler()  # fail fast, before loading anything
        if not args.out:
            raise BertnpuError("Pass --out model.mxq to compile, or --bundle DIR to export a compile bundle.")
    model = _load(args)
    r = compile_or_bundle(CompileInputs(model, _calibration(args, model), recipe, target="bundle" if args.bundle else "mxq",
                                        mxq=Path(args.out) if args.out else None, bundle=Path(args.bundle) if args.bundle else None,
                                        device=args.device, allow_missing_knobs=args.allow_missing_knobs, force=args.force))
    if r.bundle:
        print(f"wrote compile bundle {r.bundle}: see {r.bundle}/README.md for the recipe and the docker commands")
        return 0
    from .device.compile_record import read_compile_record, record_path_for

    record = read_compile_record(r.mxq)
    print(f"wrote {r.mxq} and {record_path_for(r.mxq)} ({record.output.describe()})")
    for site, name in record.operators.items():
        print(f"  16-bit: {site} -> operator {name}")
    if record.knobs_dropped:
        print(f"compiled WITHOUT {', '.join(record.knobs_dropped)} (--allow-missing-knobs): the .mxq is not the recipe that was simulated", file=sys.stderr)
    return 0


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--quick", action="store_true", help="smoke run: small calibration set, sweep, plan and evaluation (about 17 s on 2 cores)")
    p.add_argument("--no-plan", dest="plan", action="store_false",
                   help="skip the 16-bit planner (most of a full run's time): evaluate and compile the sweep's INT8-only recommendation")


@command("run", "the whole pipeline headless, with summary.json and report.html", model_options, stsb_options(),
         out_option("output folder (default: bertnpu-out)", required=False, default="bertnpu-out"), _run_options, force_option("stage result: recompute every stage, and replace files in --out that bertnpu did not write"),
         json_option)
def _run(args) -> int:
    from .pipeline import RunOptions, run_pipeline

    summary = run_pipeline(RunOptions(model=args.model, stsb_dir=args.stsb_dir, out=args.out, quick=args.quick, force=args.force,
                                      trust_remote_code=args.trust_remote_code, plan=args.plan))
    ev = summary["evaluation"]
    planned = f" | planned, compiled {ev['planned']['spearman']:.4f}" if ev.get("planned") else ""
    return _line_then_json(args, f"STS-B test Spearman: FP32 {ev['fp32']['spearman']:.4f} | INT8 tutorial config {ev['tutorial_default']['spearman']:.4f} | "
                                 f"INT8 recommended {ev['recommended']['spearman']:.4f}{planned} ({ev['pairs']} pairs, simulated)", summary)


def _render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-count", type=whole_number(1), default=256, help="calibration samples (default 256, as `bertnpu run`)")
    p.add_argument("--eval-pairs", type=whole_number(2, zero="all pairs"), default=0, help="first N pairs of each split (0: all)")
    p.add_argument("--lang", choices=("en", "ko"), default="en", help="narrative language of the pages")


@command("render", "execute all notebooks and write shareable HTML", model_options, stsb_options(), out_option("folder for the HTML pages"),
         _render_options, force_option("rendered file"))
def _render(args) -> int:
    from .ui.render import render_notebooks

    paths = render_notebooks(args.out, model=args.model, stsb_dir=args.stsb_dir, calib_count=args.calib_count, eval_pairs=args.eval_pairs,
                             force=args.force, lang=args.lang)
    print("wrote " + ", ".join(str(p) for p in paths) + " (self-contained: they open offline, widgets as static snapshots)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bertnpu", description="BERT sentence embeddings to a Mobilint NPU, with quantization made visible.")
    parser.add_argument("--version", action="version", version=f"bertnpu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help)
        for add in cmd.options:
            add(p)
    return parser


def _interrupted(args) -> str:
    """What an interrupt leaves behind, truly: every writer is atomic; run and sweep keep what they finished to resume."""
    if args.command == "run":
        return f"bertnpu: interrupted; the stages finished so far were kept in {args.out} (rerun the same command to resume), and no partial file was written."
    if args.command == "sweep":
        return f"bertnpu: interrupted; the configs scored so far were kept in {args.out}/sweep_cache.jsonl (rerun to resume), and no partial file was written."
    return "bertnpu: interrupted; files finished before the interrupt were kept, and no partial file was written."


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad argument (one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return COMMANDS[args.command].handler(args)
    except BertnpuError as exc:
        print(f"bertnpu: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `bertnpu sites | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(_interrupted(args), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
