"""Commands about the model itself: ``info``, ``analyze``, ``export-embeddings``, ``sites``."""

from __future__ import annotations

from pathlib import Path

from .common import command, emit_json, force_option, json_option, load_model_arg, model_options, out_option, target_device_option


@command("info", "architecture and CPU/NPU placement", model_options, json_option)
def _info(args) -> int:
    from ..model.analysis import format_summary, model_summary

    summary = model_summary(load_model_arg(args))
    if args.json:
        emit_json(summary)
    else:
        print(format_summary(summary))
    return 0


@command("export-embeddings", "write the CPU part's weight_dict.pth", model_options, out_option("weight_dict.pth to write"), force_option("file"))
def _export(args) -> int:
    from ..stages import ExportInputs, export_embeddings

    result = export_embeddings(ExportInputs(load_model_arg(args), Path(args.out), force=args.force))
    print(f"wrote {result.weight_dict} (keys {', '.join(result.keys)})")
    return 0


@command("sites", "list the quantization sites of the NPU part", model_options, json_option)
def _sites(args) -> int:
    from ..quant.sites import sites_of

    sites = sites_of(load_model_arg(args))
    if args.json:
        emit_json({"sites": [s.__dict__ for s in sites]})
    else:
        for s in sites:
            print(f"{s.name:34s} {s.layout:9s} {s.description}")
    return 0


@command("analyze", "op inventory with CPU/NPU placement (and the .mblt where qbcompiler is installed)", model_options,
         out_option("folder for ops.csv, ops.json and placement.png (and the .mblt)", required=False), target_device_option,
         force_option("file"), json_option)
def _analyze(args) -> int:
    from ..model.analysis import format_summary
    from ..stages import AnalyzeInputs, analyze
    from ..ui.stage_figures import present

    r = analyze(AnalyzeInputs(load_model_arg(args), out=Path(args.out) if args.out else None, force=args.force, target_device=args.target_device))
    r = present(r, args.out, force=args.force)  # placement.png beside ops.csv
    if args.json:
        emit_json({"summary": r.summary, "blocks": list(r.blocks), "ops": r.ops, "mblt": str(r.mblt) if r.mblt else None, "mblt_note": r.mblt_note})
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
    elif r.mblt_note:
        print(r.mblt_note)
    else:
        print("qbcompiler is not installed, so no .mblt was written; the op inventory above is bertnpu's own (torch.export).")
    return 0
