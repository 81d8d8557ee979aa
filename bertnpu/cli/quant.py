"""Quantization commands: ``stats``, ``simulate``, ``sweep``, ``plan``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (BertnpuError, batch_size_arg, batch_size_option, calibration_arg, command, emit_json, floats_arg, force_option, ints_arg, json_option,
                     limit_option, line_then_json, list_sites_of, load_model_arg, model_options, out_option, pairs_arg, recipe_arg,
                     recipe_option, stats_arg, stats_source_options, stsb_options, warn_moot_overrides, whole_number)


@command("stats", "activation statistics of every site over a calibration set", model_options, stats_source_options(required=True),
         out_option("stats file to write (.npz)"), batch_size_option, force_option("stats file"))
def _stats(args) -> int:
    from ..artifacts import check_writable
    from ..stages import StatsInputs, collect_stats

    check_writable(args.out, args.force, "stats file")  # before loading anything
    model = load_model_arg(args)
    result = collect_stats(StatsInputs(model, calibration_arg(args, model), out=Path(args.out), force=args.force, **batch_size_arg(args)))
    print(f"wrote statistics of {result.sites} sites over {result.samples} calibration samples to {args.out}")
    return 0


def _keep_fp32_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--keep-fp32", default="", help="comma-separated sites to keep in FP32 (a diagnostic: no device counterpart; use --a16)")
    p.add_argument("--profile", help="precision profile: aries (default), all-int8 or optimistic")
    p.add_argument("--a16", default="", help="comma-separated sites whose activations go to 16 bits (added to the recipe's)")


def _recipe_with_overrides(args):
    """The recipe of --recipe with --profile and --a16 applied."""
    recipe = recipe_arg(args.recipe)
    extra = tuple(s for s in (args.a16 or "").split(",") if s.strip())
    if args.profile:
        recipe = recipe.with_(profile=args.profile)
    return recipe.with_16bits(extra) if extra else recipe  # --a16 adds to the recipe's sites (Recipe.with_16bits)


@command("simulate", "STS-B Spearman of the simulated INT8 model next to FP32", model_options, stsb_options("validation"),
         recipe_option("recipe JSON (from `bertnpu plan`) or QuantConfig JSON"),
         stats_source_options(), _keep_fp32_option, limit_option, json_option)
def _simulate(args) -> int:
    from ..stages import SimulateInputs, simulate

    recipe = _recipe_with_overrides(args)
    pairs = pairs_arg(args, args.split)
    model = load_model_arg(args)
    keep = tuple(s for s in (args.keep_fp32 or "").split(",") if s)
    recipe.check_sites(site.name for site in list_sites_of(model))
    warn_moot_overrides(recipe)
    calib = calibration_arg(args, model) if args.calib else None
    stats = stats_arg(args, model)
    if args.recipe:  # a file's topk_ratio too small for this calibration set: one note (the defaults stay quiet)
        from ..quant.config import warn_pointless_topk

        warn_pointless_topk(recipe.calibration, max(o.count for o in stats.observers.values()), f"file {Path(args.recipe).name!r}")
    r = simulate(SimulateInputs(model, stats, pairs, recipe, keep_fp32=keep, progress=not args.json, bracket=True, calib=calib))
    if args.json:
        emit_json(r.to_dict())
    else:
        from ..ui.conclusions import noise_verdict

        bracket = " | ".join(f"{name} {d['spearman']:.4f} [{d['spearman_ci'][0]:.4f}, {d['spearman_ci'][1]:.4f}] cosine {d['cosine_mean']:.4f}"
                             for name, d in r.profile_details.items())
        diag = f"; {len(keep)} site(s) kept in FP32, a diagnostic with no device counterpart" if keep else ""
        print(f"{r.model} on STS-B {r.split} ({r.pairs} pairs): FP32 Spearman {r.fp32_spearman:.4f} [{r.fp32_spearman_ci[0]:.4f}, "
              f"{r.fp32_spearman_ci[1]:.4f}], simulated ({recipe.label()}{diag}) {r.spearman:.4f} [{r.spearman_ci[0]:.4f}, {r.spearman_ci[1]:.4f}] "
              f"({noise_verdict(r.diff_to_fp32, r.diff_to_fp32_ci)}; 95 % paired bootstrap); embedding cosine to FP32 {r.cosine_mean:.4f}")
        print(f"profile bracket (Spearman [95 % CI], mean embedding cosine to FP32): {bracket}")
    return 0


SWEEP_OUTPUTS = ("sweep.csv", "sweep.json", "sweep_heatmap.png", "sweep_cache.jsonl", "recommended_config.json", "recommended_recipe.json",
                 "recommendation.json")


def _sweep_options(p: argparse.ArgumentParser) -> None:
    # grid search only (unset: the grid's defaults, tune.sweep.PERCENTILES / TOPK_RATIOS, mode 1); --wide refuses them, and
    # --percentiles / --topk-ratios are refused by --modes without 1 (tune.sweep.ignored_knobs)
    p.add_argument("--percentiles", default=None, help="grid search: e.g. 0.99,0.999,0.9999,1.0 (the default)")
    p.add_argument("--topk-ratios", default=None, help="grid search: e.g. 0.001,0.01,0.1 (the default)")
    p.add_argument("--modes", default=None, help="grid search: e.g. 0,1,2 (default 1)")
    p.add_argument("--methods", default="", help="e.g. 0,1 (default: the base config's)")
    p.add_argument("--outputs", default="", help="e.g. 0,1 (default: the base config's)")
    p.add_argument("--wide", action="store_true", help="the wide search `bertnpu run` uses (methods 0-3 x outputs 0/1 x modes 0-2) instead of the grid")
    p.add_argument("--strategy", choices=("fast", "exhaustive"), default="fast",
                   help="fast: equal range sets once, proxy ranking, the best 4 on the full split; exhaustive: every distinct range set on the full split")
    p.add_argument("--test", action="store_true", help="report the recommended config once on the test split")


@command("sweep", "grid over percentile x topk_ratio on validation, with a recommendation", model_options, stsb_options(), stats_source_options(),
         out_option("folder for sweep.csv/json, the heatmap, the cache and the recommended config"), recipe_option("recipe or QuantConfig JSON to sweep around", "the tutorial's config"),
         _sweep_options, limit_option, json_option, force_option("file bertnpu did not write (or edited since) in --out"))
def _sweep(args) -> int:
    from ..project.folder import OutputFolder
    from ..stages import EvaluateInputs, SweepInputs, evaluate, run_sweep
    from ..tune.sweep import check_sweep_knobs, warn_replaced_base
    from ..ui.stage_figures import present

    out = Path(args.out)
    folder = OutputFolder(out, force=args.force)
    folder.preflight(SWEEP_OUTPUTS)  # before the long part; writes nothing
    search = "wide" if args.wide else "grid"
    grid = dict(percentiles=floats_arg(args.percentiles, "--percentiles") if args.percentiles is not None else None,
                topk_ratios=floats_arg(args.topk_ratios, "--topk-ratios") if args.topk_ratios is not None else None,
                modes=ints_arg(args.modes, "--modes") if args.modes is not None else None, methods=ints_arg(args.methods, "--methods", allow_empty=True) or None,
                outputs=ints_arg(args.outputs, "--outputs", allow_empty=True) or None)
    # values in range, and no option the search ignores, before the model is loaded
    check_sweep_knobs(search, args.strategy, grid, given=[k for k, v in grid.items() if v is not None])
    base = recipe_arg(args.recipe)
    warn_replaced_base(base.calibration, search, grid["methods"], grid["outputs"], "--recipe")
    validation = pairs_arg(args, "validation")
    model = load_model_arg(args)
    stats = stats_arg(args, model)
    with folder:  # lock, and a record of what the sweep wrote (its cache is claimed, so an interrupted sweep resumes)
        folder.claim(*SWEEP_OUTPUTS)
        result = run_sweep(SweepInputs(model, stats, validation, base, **grid, search=search, strategy=args.strategy, out=out,
                                       progress=not args.json))
        result = present(result, out, force=True)  # sweep_heatmap.png beside sweep.csv (redrawn as the table is)
        summary = {"configs": result.configs, "recommended": result.recommended, "recommended_recipe": result.recommended_recipe.to_dict(),
                   "validation_spearman": result.validation_spearman, "validation_spearman_ci": result.validation_spearman_ci,
                   "tied_with_best": result.tied_with_best, "best_validation_spearman": result.best_validation_spearman, "rule": result.rule}
        if args.test:
            test = evaluate(EvaluateInputs(model, stats, pairs_arg(args, "test"), recommended=result.recommended_recipe, fidelity=False,
                                           out=out / "recommendation.json", progress=False))
            summary["test"] = test.to_dict()
        folder.settle()
    ci = result.validation_spearman_ci
    ci_text = f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""
    ties = (f"; {result.tied_with_best} cell(s) statistically tied with the best ({result.best_validation_spearman:.4f}): the one with the "
            "fewest knobs changed from the tutorial's config is recommended" if result.tied_with_best > 1 else "")
    test_text = ""
    if args.test:
        rec = summary["test"]["recommended"]
        from ..ui.conclusions import noise_verdict

        test_text = (f"; test Spearman {rec['spearman']:.4f} [{rec['spearman_ci'][0]:.4f}, {rec['spearman_ci'][1]:.4f}], "
                     f"{noise_verdict(rec['diff_to_fp32'], rec['diff_to_fp32_ci'])}")
    return line_then_json(args, f"swept {result.configs} configs on validation; recommended: {result.recommended_recipe.calibration.label()} "
                                 f"(Spearman {result.validation_spearman:.4f}{ci_text}, 95 % paired bootstrap{ties}){test_text}; wrote {out}/sweep.csv, "
                                 "sweep.json, sweep_heatmap.png, recommended_config.json, recommended_recipe.json", summary)


def _plan_options(p: argparse.ArgumentParser) -> None:
    from ..tune.plan.spec import PlanSpec  # the planner's defaults, written once there

    p.add_argument("--tolerance", type=float, default=PlanSpec.tolerance,
                   help=f"accepted Spearman drop below FP32 on validation (default {PlanSpec.tolerance:g})")
    p.add_argument("--profile", default=PlanSpec.profile, help=f"precision profile: aries, all-int8 or optimistic (default {PlanSpec.profile})")
    p.add_argument("--min-cosine", type=float, default=PlanSpec.min_cosine,
                   help=f"also require this mean embedding cosine to FP32 on validation (default {PlanSpec.min_cosine:g}; 0: Spearman tolerance alone)")
    p.add_argument("--max-sites", type=whole_number(0), default=PlanSpec.max_sites, help=f"most sites at 16 bits (default {PlanSpec.max_sites})")
    p.add_argument("--try-layernorm", action="store_true",
                   help="also try LayerNorm outputs at 16 bits (left out by default: their override was seen to change nothing on ARIES)")
    p.add_argument("--figures", help="folder for plan_pareto.png and plan_sites.png (default: beside --out)")


@command("plan", "cheapest recipe (calibration, transformations, 16-bit sites) within a tolerance of FP32; writes recipe.json",
         model_options, stsb_options(), stats_source_options(required=True), out_option("recipe.json to write"), _plan_options,
         force_option("recipe file"), limit_option, json_option)
def _plan(args) -> int:
    from ..artifacts import check_writable
    from ..stages.plan import PlanInputs, plan
    from ..tune.plan import PlanSpec, format_pareto
    from ..ui.stage_figures import present

    PlanSpec(profile=args.profile, tolerance=args.tolerance, max_sites=args.max_sites, min_cosine=args.min_cosine,
             try_layernorm=args.try_layernorm)  # bad values: one sentence before any work
    out = check_writable(args.out, args.force, "recipe file")
    validation, test = pairs_arg(args, "validation"), pairs_arg(args, "test")
    model = load_model_arg(args)
    calib = calibration_arg(args, model)
    stats = stats_arg(args, model)
    figures = Path(args.figures) if args.figures else out.parent
    r = plan(PlanInputs(model, calib, validation, test, stats=stats, profile=args.profile, tolerance=args.tolerance,
                        min_cosine=args.min_cosine, max_sites=args.max_sites, try_layernorm=args.try_layernorm, out=out, force=args.force, progress=not args.json))
    r = present(r, figures, force=args.force)
    print(format_pareto(r.plan))
    verdict = "within" if r.within_tolerance else "NOT within"
    cos_verdict = "reached" if r.cosine_met else "NOT reached within the site limit"
    from ..ui.conclusions import noise_verdict

    int8 = r.best_int8_only
    print(f"planned [{r.profile}]: {len(r.activation_16bits)} site(s) at 16 bits, stopped by {r.stop_rule}; validation Spearman "
          f"{r.validation_spearman:.4f} ({verdict} {r.tolerance:g} of FP32 {r.fp32_validation_spearman:.4f}), validation cosine "
          f"{r.validation_cosine:.4f} (minimum {r.min_cosine:g} {cos_verdict}); test Spearman {r.spearman:.4f} [{r.spearman_ci[0]:.4f}, "
          f"{r.spearman_ci[1]:.4f}] (FP32 {r.fp32_spearman:.4f}; {noise_verdict(r.diff_to_fp32, r.diff_to_fp32_ci)}), "
          f"cosine to FP32 {r.cosine_to_fp32:.4f}; best INT8-only test {int8['spearman']:.4f} "
          f"({noise_verdict(int8['diff_to_fp32'], int8['diff_to_fp32_ci'])}); wrote {out}")
    if args.json:
        emit_json(r.to_dict())
    return 0
