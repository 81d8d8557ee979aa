"""The ``report.html`` of ``bertnpu run``: one section per stage, read from the run's ``summary.json`` entries."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from .comparison import COLUMNS as COMPARISON_COLUMNS, comparison_rows
from .public_paths import report_redactor
from .report import esc, fill, pre_json, render_report, table

SWEEP_COLUMNS = ("method", "output", "mode", "percentile", "topk_ratio", "spearman", "pearson", "mean_sqnr_db", "proxy_cosine", "shares_with")
Section = tuple[str, str, dict[str, bytes]]


def figure_files(entry: dict) -> list[str]:
    """The PNGs a stage wrote (paths relative to the run folder), in order."""
    return [f for f in entry.get("files", []) if str(f).endswith(".png")]


def _analysis(s: dict, figs: Callable) -> Section:
    a = s["analysis"]["summary"]
    # every value from the summary is escaped (a model folder may be named <img onerror=...>)
    return ("Model and placement", fill("<p><b>{model}</b>: hidden {hidden}, {layers} layers, {heads} heads, pooling {pooling}. ",
                                        model=a['model'], hidden=a['hidden_size'], layers=a['layers'], heads=a['heads'], pooling=a['pooling'])
            + "Embeddings and mask preparation run on the CPU; the encoder runs on the NPU.</p>" + table(s["analysis"]["blocks"]), figs(s["analysis"]))


def _calibration(s: dict, figs: Callable) -> Section:
    c = s["calibration"]
    return ("Calibration data", f"<p>{c['samples']} samples ({c['tokens']} tokens); "
            f"{c['eval_outside_fraction'] * 100:.4f}% of {c['evaluation_split']} embedding values fall outside the calibration range.</p>"
            "<p>Outlier channels (abs-max above 4x the median channel's):</p>" + table(c["outlier_channels"]), figs(c))


def _stats(s: dict, figs: Callable) -> Section:
    return ("Activation ranges", "<p>Worst outlier sites (max / p99):</p>" + table(s["stats"]["outlier_sites"]), figs(s["stats"]))


def _sweep(s: dict, figs: Callable) -> Section:
    return ("Sweep on validation", table(s["sweep"]["rows"], SWEEP_COLUMNS), figs(s["sweep"]))


def _evaluation(s: dict, figs: Callable) -> Section:
    ev = s["evaluation"]
    body = table(comparison_rows(ev), COMPARISON_COLUMNS)  # the same table as notebook 04's
    fid = ev.get("fidelity")
    if fid:
        body += (f"<p>Recommended config: cosine(FP32, INT8) mean {fid['cosine_mean']:.4f}, min {fid['cosine_min']:.4f}; "
                 f"nearest-neighbour recall@10 {fid['recall@10']:.3f}.</p>" + table(fid["worst_pairs"][:5]))
    profile = (ev["recommended"].get("recipe") or {}).get("profile", "aries")
    return (f"Predicted accuracy on STS-B test (simulated INT8, profile {profile})", body, {})


def _plan(s: dict, figs: Callable) -> Section:
    pl = s["plan"]
    if pl.get("skipped"):
        return ("Plan: the cheapest recipe within tolerance", f"<p>{esc(pl['skipped'])}.</p>", {})
    br = pl.get("brackets") or {}
    profiles = ("aries", "all-int8", "optimistic")

    def row(label: str, spearman: float, key: Optional[str]) -> dict:
        b = br.get(key, {}) if key else {}
        return {"model": label, f"spearman [{pl['profile']}]": spearman, **{f"{p}": b.get(p, "") for p in profiles}}

    best = pl["best_int8_only"]
    rows = [row("FP32", pl["fp32_spearman"], None),
            row("INT8, tutorial config", br.get("tutorial", {}).get(pl["profile"], ""), "tutorial"),
            row(f"INT8 only, best planned ({best['recipe']})", best["spearman"], "best_int8_only"),
            row(f"planned recipe ({len(pl['activation_16bits'])} site(s) at 16 bits)", pl["spearman"], "planned")]
    pareto = [{"16-bit sites": r["n_sites"], "added": r["added"] or "-", "validation Spearman": r["validation_spearman"],
               "validation cosine": r.get("validation_cosine", ""),
               "traffic at 16 bits": f"{r['traffic_16bit']:.1%}"} for r in pl["pareto"]]
    verdict = "within" if pl["within_tolerance"] else "NOT within"
    body = (f"<p>Simulated on STS-B test; the first Spearman column is under profile <b>{esc(pl['profile'])}</b>, the last three "
            f"are the profile bracket (how much the unpublished precisions matter). The planned recipe is {verdict} "
            f"{pl['tolerance']:g} of FP32 on validation"
            + (f" and {'reaches' if pl.get('cosine_met') else 'does NOT reach'} the minimum mean cosine {pl.get('min_cosine', 0):g} there"
               if pl.get("min_cosine") else "")
            + f"; cosine to FP32 embeddings on test {pl['cosine_to_fp32']:.4f}. The bracket columns simulate each recipe again on "
            "statistics re-collected for it (transformed sites included), so the column of the same profile can differ in the 4th decimal."
            + (f" Not tried at 16 bits: the {len(pl['not_tried'])} LayerNorm outputs (an ARIES user saw a 16-bit override of "
               "LayerNormalization leave the compiled model byte-identical, so it is no lever)." if pl.get("not_tried") else "")
            + "</p>"
            + table(rows) + "<p>Pareto table (validation):</p>" + table(pareto) + pre_json(pl["recipe"]))
    return ("Plan: the cheapest recipe within tolerance", body, figs(pl))


def _compile(s: dict, figs: Callable) -> Section:
    comp = s["compile"]
    done = fill("<p>Compiled <code>{mxq}</code>.</p>", mxq=comp["mxq"]) if comp.get("mxq") else f"<p>{esc(comp.get('note') or '')}</p>"
    if comp.get("recipe"):
        from ..quant.recipe import Recipe

        done += f"<p>Recipe {'compiled' if comp.get('mxq') else 'in the bundle'}: {esc(Recipe.from_dict(comp['recipe']).label())}.</p>"
    return ("Compile", done, {})


def _inputs(s: dict, figs: Callable) -> Section:
    return ("Inputs and versions", pre_json({"inputs": s["inputs"], "versions": s["versions"], "reused_stages": s["reused_stages"]}), {})


# A new stage adds its section function here, in pipeline order.
SECTIONS: tuple[Callable[[dict, Callable], Section], ...] = (_analysis, _calibration, _stats, _sweep, _plan, _evaluation, _compile, _inputs)


def run_report(summary: dict[str, Any], out: Path) -> str:
    """The report's HTML; figures are read from ``out`` and embedded."""
    out = Path(out)

    def figs(entry: dict) -> dict[str, bytes]:
        return {p: (out / p).read_bytes() for p in figure_files(entry)}

    page = render_report(f"bertnpu report: {summary['analysis']['summary']['model']}", [section(summary, figs) for section in SECTIONS])
    return report_redactor(summary, out).text(page, in_html=True)  # a published report shows no private path (issue 26)
