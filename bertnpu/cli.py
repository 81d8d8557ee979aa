"""The ``bertnpu`` command: parses arguments and calls the same functions the notebooks call."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Callable, Optional

from .version import __version__
from .errors import BertnpuError

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {}


def command(name: str):
    def register(fn):
        COMMANDS[name] = fn
        return fn

    return register


def _emit_json(data: dict) -> None:
    print(json.dumps(data, sort_keys=True, default=float))


def _load(args):
    from .model.load import load_model

    return load_model(args.model, pooling=getattr(args, "pooling", "auto"), trust_remote_code=args.trust_remote_code)


@command("info")
def _info(args) -> int:
    from .model.analysis import format_summary, model_summary

    summary = model_summary(_load(args))
    if args.json:
        _emit_json(summary)
    else:
        print(format_summary(summary))
    return 0


@command("export-embeddings")
def _export(args) -> int:
    from .model.cpu_part import export_weight_dict

    model = _load(args)
    path = export_weight_dict(model.bert, args.out, force=args.force)
    print(f"wrote {path} (keys word_embeddings, token_type_embeddings, position_embeddings, layernorm_weight, layernorm_bias)")
    return 0


@command("eval")
def _eval(args) -> int:
    from .model.sentence_encoder import SentenceEncoder
    from .tune.evaluate import evaluate_sts
    from .data.stsb import load_stsb

    pairs = load_stsb(args.split, args.stsb_dir)
    if args.limit:
        pairs = pairs.subset(args.limit)
    model = _load(args)
    if args.mxq:
        return _eval_npu(args, model, pairs)
    result = evaluate_sts(SentenceEncoder(model, batch_size=args.batch_size, progress=not args.json), pairs)
    result.update(model=model.name, split=args.split, pooling=model.pooling.mode)
    if args.json:
        _emit_json(result)
    else:
        print(f"{model.name} on STS-B {args.split} ({result['pairs']} pairs, {model.pooling.mode} pooling): "
              f"Spearman {result['spearman']:.4f}, Pearson {result['pearson']:.4f} in {result['seconds']:.1f} s")
    return 0


def _eval_npu(args, model, pairs) -> int:

    from .model.sentence_encoder import SentenceEncoder
    from .tune.evaluate import evaluate_sts
    from .device.npu_runtime import QbruntimeEncoder
    from .quant.config import QuantConfig
    from .device.qbcompiler_adapter import config_path_for
    from .quant.simulate import simulate_int8

    result = {"model": model.name, "split": args.split, "pairs": len(pairs), "mxq": args.mxq}
    result["fp32_spearman"] = evaluate_sts(SentenceEncoder(model, progress=not args.json), pairs)["spearman"]
    if args.calib or args.stats:
        cfg_file = args.config or (config_path_for(args.mxq) if config_path_for(args.mxq).is_file() else None)
        config = QuantConfig.load(cfg_file) if cfg_file else QuantConfig()
        sim = simulate_int8(model, _stats_for(args, model), config)
        result["int8_sim_spearman"] = evaluate_sts(sim.encoder_for(progress=not args.json), pairs)["spearman"]
        result["config"] = config.to_dict()
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


@command("calib")
def _calib(args) -> int:
    from .data.calibration import CalibrationSpec, build_calibration_set

    spec = CalibrationSpec(count=args.count, seed=args.seed, split=args.split, column=args.column,
                           strategy=args.strategy, max_length=args.max_length)
    model = _load(args)
    cs = build_calibration_set(model, args.out, spec, stsb_dir=args.stsb_dir, force=args.force)
    lengths = cs.lengths
    print(f"wrote {len(cs)} samples to {args.out} (tokens per sample {lengths.min()}-{lengths.max()}, median {int(sorted(lengths)[len(lengths) // 2])}); "
          f"use {args.out} or {args.out}/npy_files.txt as qbcompiler's calib_data_path")
    return 0


@command("sites")
def _sites(args) -> int:
    from .quant.sites import sites_of

    sites = sites_of(_load(args))
    if args.json:
        _emit_json({"sites": [s.__dict__ for s in sites]})
    else:
        for s in sites:
            print(f"{s.name:34s} {s.layout:9s} {s.description}")
    return 0


@command("stats")
def _stats(args) -> int:
    from .data.calibration import load_calibration_set
    from .quant.stats import collect_activation_stats
    from .artifacts import check_writable

    check_writable(args.out, args.force, "stats file")
    model = _load(args)
    calib = load_calibration_set(args.calib, model)
    stats = collect_activation_stats(model, calib, batch_size=args.batch_size)
    stats.save(args.out, force=args.force)
    print(f"wrote statistics of {len(stats.sites)} sites over {len(calib)} calibration samples to {args.out}")
    return 0


def _stats_for(args, model):
    """Stats from --stats FILE, or collected from --calib DIR."""
    from .data.calibration import load_calibration_set
    from .quant.stats import collect_activation_stats, load_stats

    if args.stats:
        return load_stats(args.stats, model)
    if not args.calib:
        raise BertnpuError("Pass --calib DIR (a calibration set from `bertnpu calib`) or --stats FILE (from `bertnpu stats`).")
    return collect_activation_stats(model, load_calibration_set(args.calib, model))


@command("simulate")
def _simulate(args) -> int:
    from .model.sentence_encoder import SentenceEncoder
    from .tune.evaluate import evaluate_sts
    from .quant.config import QuantConfig
    from .quant.simulate import simulate_int8
    from .data.stsb import load_stsb

    config = QuantConfig.load(args.config) if args.config else QuantConfig()
    pairs = load_stsb(args.split, args.stsb_dir)
    if args.limit:
        pairs = pairs.subset(args.limit)
    model = _load(args)
    stats = _stats_for(args, model)
    keep = [s for s in (args.keep_fp32 or "").split(",") if s]
    fp32 = evaluate_sts(SentenceEncoder(model, progress=not args.json), pairs)
    int8 = evaluate_sts(simulate_int8(model, stats, config, keep_fp32=keep).encoder_for(progress=not args.json), pairs)
    result = {"spearman": int8["spearman"], "pearson": int8["pearson"], "fp32_spearman": fp32["spearman"], "fp32_pearson": fp32["pearson"],
              "config": config.to_dict(), "keep_fp32": keep, "split": args.split, "pairs": len(pairs), "model": model.name}
    if args.json:
        _emit_json(result)
    else:
        print(f"{model.name} on STS-B {args.split}: FP32 Spearman {fp32['spearman']:.4f}, simulated INT8 ({config.label()}) {int8['spearman']:.4f} "
              f"(delta {int8['spearman'] - fp32['spearman']:+.4f})")
    return 0


@command("sweep")
def _sweep(args) -> int:
    from .quant.config import QuantConfig
    from .ui.range_plots import plot_sweep_heatmap
    from .data.stsb import load_stsb
    from .tune.sweep import best_config, config_grid, recommend, sweep, write_sweep_table
    from .artifacts import atomic_write, atomic_write_json
    from pathlib import Path

    out = Path(args.out)
    base = QuantConfig.load(args.config) if args.config else QuantConfig()
    configs = config_grid(base, _floats(args.percentiles), _floats(args.topk_ratios), [int(x) for x in _floats(args.modes)],
                          [int(x) for x in _floats(args.methods)] if args.methods else None)
    pairs = load_stsb("validation", args.stsb_dir)
    if args.limit:
        pairs = pairs.subset(args.limit)
    model = _load(args)
    stats = _stats_for(args, model)
    rows = sweep(model, stats, pairs, configs, cache=out / "sweep_cache.jsonl")
    write_sweep_table(rows, out, force=True)  # the table always reflects the cache
    chosen = best_config(rows)
    chosen.save(out / "recommended_config.json", force=True)
    fig = plot_sweep_heatmap(rows, chosen.to_dict())
    atomic_write(out / "sweep_heatmap.png", lambda p: fig.savefig(p, format="png", dpi=110), force=True)
    summary = {"configs": len(rows), "recommended": chosen.to_dict(), "validation_spearman": max(r["spearman"] for r in rows)}
    if args.test:
        test = load_stsb("test", args.stsb_dir)
        summary["test"] = recommend(model, stats, rows, test.subset(args.limit) if args.limit else test)
        atomic_write_json(out / "recommendation.json", summary["test"], force=True)
    print(f"swept {len(rows)} configs on validation; best: {chosen.label()} (Spearman {summary['validation_spearman']:.4f}); wrote {out}/sweep.csv, sweep.json, sweep_heatmap.png, recommended_config.json")
    if args.json:
        _emit_json(summary)
    return 0


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BertnpuError(f"Could not read {text!r} as comma-separated numbers; write e.g. 0.99,0.999,1.0.") from None


@command("analyze")
def _analyze(args) -> int:
    import csv
    import io
    from pathlib import Path

    from .model.analysis import block_summary, format_summary, model_summary, op_inventory
    from .artifacts import atomic_write, atomic_write_text
    from .ui.plots import plot_block_placement
    from .device.qbcompiler_adapter import compile_mblt, qbcompiler_available

    model = _load(args)
    rows = op_inventory(model)
    blocks = block_summary(model, rows)
    if args.out:
        out = Path(args.out)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, ["index", "op", "module", "block", "placement", "shape", "flops"])
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out / "ops.csv", buf.getvalue(), force=args.force)
        fig = plot_block_placement(blocks)
        atomic_write(out / "placement.png", lambda p: fig.savefig(p, format="png", dpi=110), force=args.force)
    mblt = None
    if qbcompiler_available():
        mblt = str(compile_mblt(model, Path(args.out or ".") / f"{Path(model.name).name}.mblt", force=args.force))
    if args.json:
        _emit_json({"summary": model_summary(model), "blocks": blocks, "ops": len(rows), "mblt": mblt})
        return 0
    print(format_summary(model_summary(model)))
    print()
    print(f"{'block':16s} {'runs on':8s} {'ops':>5s} {'parameters':>12s} {'MFLOP':>9s}   (sentence of {rows[0]['shape'][1]} tokens)")
    for b in blocks:
        print(f"{b['block']:16s} {b['placement']:8s} {b['ops']:5d} {b['parameters']:12,d} {b['flops'] / 1e6:9.2f}")
    if args.out:
        print(f"wrote {args.out}/ops.csv ({len(rows)} ops) and {args.out}/placement.png")
    if mblt:
        print(f"wrote {mblt}: open it in Netron (https://netron.mobilint.com) to see the graph qbcompiler built")
    else:
        print("qbcompiler is not installed, so no .mblt was written; the op inventory above is bertnpu's own (torch.export).")
    return 0


@command("compile")
def _compile(args) -> int:
    from .data.calibration import load_calibration_set
    from .device.bundle import write_compile_bundle
    from .device.qbcompiler_adapter import compile_mxq, load_qbcompiler
    from .quant.config import QuantConfig

    config = QuantConfig.load(args.config) if args.config else QuantConfig()
    if not args.bundle:
        load_qbcompiler()  # fail fast, before loading anything
        if not args.out:
            raise BertnpuError("Pass --out model.mxq to compile, or --bundle DIR to export a compile bundle.")
    model = _load(args)
    calib = load_calibration_set(args.calib, model)
    if args.bundle:
        out = write_compile_bundle(model, calib, config, args.bundle, force=args.force)
        print(f"wrote compile bundle {out}: see {out}/README.md for the docker commands")
        return 0
    out = compile_mxq(model, args.calib, config, args.out, force=args.force, device=args.device)
    print(f"wrote {out} and {out}.config.json")
    return 0


@command("run")
def _run(args) -> int:
    from .pipeline import RunOptions, run_pipeline

    summary = run_pipeline(RunOptions(model=args.model, stsb_dir=args.stsb_dir, out=args.out, quick=args.quick, force=args.force,
                                      trust_remote_code=args.trust_remote_code))
    ev = summary["evaluation"]
    print(f"STS-B test Spearman: FP32 {ev['fp32']['spearman']:.4f} | INT8 tutorial config {ev['tutorial_default']['spearman']:.4f} | "
          f"INT8 recommended {ev['recommended']['spearman']:.4f} ({ev['pairs']} pairs, simulated)")
    if args.json:
        _emit_json(summary)
    return 0


@command("render")
def _render(args) -> int:
    from .ui.render import render_notebooks

    paths = render_notebooks(args.out, model=args.model, stsb_dir=args.stsb_dir, calib_count=args.calib_count, eval_pairs=args.eval_pairs, force=args.force)
    print("wrote " + ", ".join(str(p) for p in paths) + " (open them in a browser; figures are embedded as PNG)")
    return 0


def _model_options(p: argparse.ArgumentParser, pooling: bool = False) -> None:
    p.add_argument("--model", default=None, help="local folder or Hugging Face id (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repository (off by default)")
    if pooling:
        p.add_argument("--pooling", default="auto", help="auto (sentence-transformers config) | mean | cls | max | pooler")


def _stsb_options(p: argparse.ArgumentParser, split: str) -> None:
    p.add_argument("--stsb-dir", default=None, help="folder with sts-{train,dev,test}.csv (or env BERTNPU_STSB_DIR); default: hub mteb/stsbenchmark-sts")
    p.add_argument("--split", default=split, help="train | validation | test")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bertnpu", description="BERT sentence embeddings to a Mobilint NPU, with quantization made visible.")
    parser.add_argument("--version", action="version", version=f"bertnpu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("info", help="architecture and CPU/NPU placement")
    _model_options(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("export-embeddings", help="write the CPU part's weight_dict.pth")
    _model_options(p)
    p.add_argument("--out", required=True)
    p.add_argument("--force", action="store_true", help="replace an existing file")

    p = sub.add_parser("eval", help="STS-B Spearman/Pearson of the FP32 model")
    _model_options(p, pooling=True)
    _stsb_options(p, "test")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--limit", type=int, default=0, help="only the first N pairs (quick checks)")
    p.add_argument("--json", action="store_true", help="last stdout line: one JSON object")
    p.add_argument("--mxq", help="also run this compiled model on the NPU (needs qbruntime: pip install 'bertnpu[npu]')")
    p.add_argument("--weights", help="weight_dict.pth for the CPU part with --mxq (default: from the model)")
    p.add_argument("--calib", help="with --mxq: calibration set, to add the simulated INT8 score")
    p.add_argument("--stats", help="with --mxq: stats file instead of --calib")
    p.add_argument("--config", help="with --mxq: QuantConfig JSON (default: <mxq>.config.json, else the tutorial's)")

    p = sub.add_parser("calib", help="build calibration data in qbcompiler's format")
    _model_options(p)
    _stsb_options(p, "validation")
    p.add_argument("--out", required=True, help="folder to create (one .npy per sample, npy_files.txt, manifest.json)")
    p.add_argument("--column", default="sentence1", help="sentence1 | sentence2")
    p.add_argument("--count", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-length", type=int, default=None, help="truncate samples to N tokens")
    p.add_argument("--strategy", default="random", help="random | length-stratified | score-stratified")
    p.add_argument("--force", action="store_true", help="replace an existing folder")

    p = sub.add_parser("sites", help="list the quantization sites of the NPU part")
    _model_options(p)
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("stats", help="activation statistics of every site over a calibration set")
    _model_options(p)
    p.add_argument("--calib", required=True, help="calibration folder or npy_files.txt")
    p.add_argument("--out", required=True, help="stats file to write (.npz)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--force", action="store_true")

    p = sub.add_parser("simulate", help="STS-B Spearman of the simulated INT8 model next to FP32")
    _model_options(p)
    _stsb_options(p, "validation")
    p.add_argument("--config", help="QuantConfig JSON (default: the tutorial's config)")
    p.add_argument("--calib", help="calibration folder or npy_files.txt")
    p.add_argument("--stats", help="stats file from `bertnpu stats` (instead of --calib)")
    p.add_argument("--keep-fp32", default="", help="comma-separated sites to keep in FP32")
    p.add_argument("--limit", type=int, default=0, help="only the first N pairs")
    p.add_argument("--json", action="store_true", help="last stdout line: one JSON object")

    p = sub.add_parser("sweep", help="grid over percentile x topk_ratio on validation, with a recommendation")
    _model_options(p)
    p.add_argument("--stsb-dir", default=None, help="folder with sts-{train,dev,test}.csv (or env BERTNPU_STSB_DIR)")
    p.add_argument("--calib", help="calibration folder or npy_files.txt")
    p.add_argument("--stats", help="stats file from `bertnpu stats` (instead of --calib)")
    p.add_argument("--out", required=True, help="folder for sweep.csv/json, the heatmap, the cache and the recommended config")
    p.add_argument("--config", help="base QuantConfig JSON (default: the tutorial's config)")
    p.add_argument("--percentiles", default="0.99,0.999,0.9999,1.0")
    p.add_argument("--topk-ratios", default="0.001,0.01,0.1")
    p.add_argument("--modes", default="1", help="e.g. 0,1,2")
    p.add_argument("--methods", default="", help="e.g. 0,1 (default: the base config's)")
    p.add_argument("--test", action="store_true", help="report the recommended config once on the test split")
    p.add_argument("--limit", type=int, default=0, help="only the first N pairs of each split")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("analyze", help="op inventory with CPU/NPU placement (and the .mblt where qbcompiler is installed)")
    _model_options(p)
    p.add_argument("--out", help="folder for ops.csv and placement.png (and the .mblt)")
    p.add_argument("--force", action="store_true")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("compile", help="compile to .mxq with qbcompiler, or export a compile bundle")
    _model_options(p)
    p.add_argument("--calib", required=True, help="calibration folder from `bertnpu calib`")
    p.add_argument("--config", help="QuantConfig JSON (default: the tutorial's config)")
    p.add_argument("--out", help="the .mxq to write")
    p.add_argument("--bundle", help="write a self-contained compile bundle to this folder instead (no qbcompiler needed)")
    p.add_argument("--device", choices=["cpu", "gpu"], help="qbcompiler's compile device")
    p.add_argument("--force", action="store_true", help="replace an existing .mxq or bundle")

    p = sub.add_parser("run", help="the whole pipeline headless, with summary.json and report.html")
    _model_options(p)
    p.add_argument("--stsb-dir", default=None, help="folder with sts-{train,dev,test}.csv (or env BERTNPU_STSB_DIR)")
    p.add_argument("--out", default="bertnpu-out", help="output folder (default: bertnpu-out)")
    p.add_argument("--quick", action="store_true", help="small calibration set, sweep and evaluation (about a minute)")
    p.add_argument("--force", action="store_true", help="recompute every stage")
    p.add_argument("--json", action="store_true")

    p = sub.add_parser("render", help="execute all notebooks and write shareable HTML")
    _model_options(p)
    p.add_argument("--stsb-dir", default=None, help="folder with sts-{train,dev,test}.csv (or env BERTNPU_STSB_DIR)")
    p.add_argument("--out", required=True)
    p.add_argument("--calib-count", type=int, default=128)
    p.add_argument("--eval-pairs", type=int, default=0, help="first N pairs of each split (0: all)")
    p.add_argument("--force", action="store_true", help="replace rendered files")
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BertnpuError as exc:
        print(f"bertnpu: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `bertnpu sites | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("bertnpu: interrupted; no partial output was kept.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
