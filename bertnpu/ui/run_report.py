"""The ``report.html`` of ``bertnpu run``, read from the run's ``summary.json`` entries.

The answer first (the headline card, then the comparison table on test), then one section per
stage in pipeline order; long tables fold, and the raw recipe / inputs JSON goes to
``report_data.json`` beside the page (linked from it) instead of filling the page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional

from .comparison import COLUMNS as COMPARISON_COLUMNS, comparison_rows
from .public_paths import report_redactor
from .report import details, esc, fill, image, render_report, table
from .run_headline import compiled_entry, headline

SWEEP_COLUMNS = ("method", "output", "mode", "percentile", "topk_ratio", "spearman", "pearson", "mean_sqnr_db", "proxy_cosine", "shares_with")
Section = tuple[str, str, dict[str, bytes]]
DATA_FILE = "report_data.json"  # the raw JSON the page links to, written beside it


def figure_files(entry: dict) -> list[str]:
    """The PNGs a stage wrote (paths relative to the run folder), in order."""
    return [f for f in entry.get("files", []) if str(f).endswith(".png")]


def _headline(s: dict, figs: Callable) -> Section:
    return (*headline(s), {})


def _analysis(s: dict, figs: Callable) -> Section:
    a = s["analysis"]["summary"]
    # every value from the summary is escaped (a model folder may be named <img onerror=...>)
    return ("Model and placement", fill("<p><b>{model}</b>: hidden {hidden}, {layers} layers, {heads} heads, pooling {pooling}. ",
                                        model=a['model'], hidden=a['hidden_size'], layers=a['layers'], heads=a['heads'], pooling=a['pooling'])
            + "Embeddings and mask preparation run on the CPU; the encoder runs on the NPU.</p>"
            + details("Per-block table and placement figure", table(s["analysis"]["blocks"]) + _images(figs(s["analysis"]))), {})


def _calibration(s: dict, figs: Callable) -> Section:
    c = s["calibration"]
    return ("Calibration data", f"<p>{c['samples']} samples ({c['tokens']} tokens); "
            f"{c['eval_outside_fraction'] * 100:.4f}% of {c['evaluation_split']} embedding values fall outside the calibration range.</p>"
            "<p>Outlier channels (abs-max above 4x the median channel's):</p>" + table(c["outlier_channels"]), figs(c))


def _stats(s: dict, figs: Callable) -> Section:
    return ("Activation ranges", "<p>Worst outlier sites (max / p99):</p>" + table(s["stats"]["outlier_sites"]), figs(s["stats"]))


def _images(figures: dict[str, bytes]) -> str:
    return "".join(image(png, alt) for alt, png in figures.items())


def _sweep(s: dict, figs: Callable) -> Section:
    sw = s["sweep"]
    rows = sw["rows"]
    confirmed = sum(r.get("spearman") is not None for r in rows)
    text = f"<p>{len(rows)} cells; {confirmed} scored on the whole validation split, the others ranked by the proxy only (empty Spearman)."
    if sw.get("recommended_recipe"):
        from ..quant.recipe import Recipe

        text += f" Recommended (INT8 only): {esc(Recipe.from_dict(sw['recommended_recipe']).label())}"
        text += f", validation Spearman {sw['validation_spearman']:.4f}." if sw.get("validation_spearman") is not None else "."
    return ("Sweep on validation", text + "</p>" + details(f"Every cell ({len(rows)} rows)", table(rows, SWEEP_COLUMNS)), figs(sw))


def _comparison(s: dict, figs: Callable) -> Section:
    ev = s["evaluation"]
    body = table(comparison_rows(ev), COMPARISON_COLUMNS)  # the same table as notebook 04's
    profile = (compiled_entry(s)[1].get("recipe") or {}).get("profile", "aries")
    return (f"Predicted accuracy on STS-B test (simulated INT8, profile {profile})", body, {})


def _evaluation(s: dict, figs: Callable) -> Section:
    """The compiled recipe's embedding fidelity and worst pairs (a summary from before the fidelity named its entry: recommended)."""
    fid = s["evaluation"].get("fidelity")
    key = (fid or {}).get("entry", "recommended")
    name = {"planned": "planned recipe (the one compiled)", "recommended": "recommended recipe"}.get(key, key)
    if key == "recommended" and compiled_entry(s)[0] == "planned":
        name += ", not the planned one that is compiled (a summary from an older bertnpu)"
    elif key == "recommended":
        name += " (the one compiled: the run skipped the planner)"
    heading = "Where the compiled recipe differs from FP32 on STS-B test"
    if not fid:
        return heading, "<p>Not measured in this run.</p>", {}
    body = (fill("<p>Of the {name}: cosine(FP32, INT8) per sentence, mean ", name=name)
            + f"{fid['cosine_mean']:.4f}, min {fid['cosine_min']:.4f}; nearest-neighbour recall@10 {fid['recall@10']:.3f}.</p>"
            "<p>The pairs whose similarity moved most:</p>" + table(fid["worst_pairs"][:5]))
    if fid.get("worst_sentences"):
        body += details(f"The {len(fid['worst_sentences'])} sentences furthest from FP32", table(fid["worst_sentences"]))
    return heading, body, {}


def _plan(s: dict, figs: Callable) -> Section:
    pl = s["plan"]
    if pl.get("skipped"):
        return ("Plan: the cheapest recipe within tolerance", f"<p>{esc(pl['skipped'])}.</p>", {})
    br = pl.get("brackets") or {}
    profiles = ("aries", "all-int8", "optimistic")

    details_ = pl.get("bracket_details") or {}

    def cell(key: Optional[str], profile: str) -> Any:
        """A bracket cell by what it measures: Spearman with its interval beside the mean embedding cosine to FP32 (monotone in
        precision), so a profile that scores higher within the noise is not read as better."""
        d = details_.get(key, {}).get(profile) if key else None
        if d and d.get("spearman_ci"):
            return f"{d['spearman']:.4f} [{d['spearman_ci'][0]:.3f}, {d['spearman_ci'][1]:.3f}], cosine {d['cosine_mean']:.3f}"
        return (br.get(key, {}) if key else {}).get(profile, "")

    def row(label: str, spearman: float, key: Optional[str]) -> dict:
        return {"model": label, f"spearman [{pl['profile']}]": spearman, **{f"{p}": cell(key, p) for p in profiles}}

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
            f"are the profile bracket (how much the unpublished precisions matter{'' if br else '; not computed in this run, e.g. a --quick run'}). "
            f"The planned recipe is {verdict} "
            f"{pl['tolerance']:g} of FP32 on validation"
            + (f" and {'reaches' if pl.get('cosine_met') else 'does NOT reach'} the minimum mean cosine {pl.get('min_cosine', 0):g} there"
               if pl.get("min_cosine") else "")
            + f"; cosine to FP32 embeddings on test {pl['cosine_to_fp32']:.4f}. The bracket columns simulate each recipe again on "
            "statistics re-collected for it (transformed sites included), so the column of the same profile can differ in the 4th decimal."
            + (" Each bracket cell is Spearman [95 % interval], then the mean embedding cosine to FP32: the cosine falls with precision, "
               "while Spearman cells whose intervals overlap cannot be told apart." if details_ else "")
            + (f" The search stopped by rule <code>{esc(pl['stop_rule'])}</code>: {esc(pl.get('stop_reason', ''))}." if pl.get("stop_rule") else "")
            + (f" Not tried at 16 bits: the {len(pl['not_tried'])} LayerNorm outputs (an ARIES user saw a 16-bit override of "
               "LayerNormalization leave the compiled model byte-identical, so it is no lever)." if pl.get("not_tried") else "")
            + "</p>"
            + table(rows) + details(f"Pareto table on validation ({len(pareto)} rows)", table(pareto))
            + f'<p>The planned recipe as JSON: <code>recipe.json</code> in this folder, and <a href="{DATA_FILE}" download>{DATA_FILE}</a>.</p>')
    return ("Plan: the cheapest recipe within tolerance", body, figs(pl))


def _compile(s: dict, figs: Callable) -> Section:
    comp = s["compile"]
    done = fill("<p>Compiled <code>{mxq}</code>.</p>", mxq=comp["mxq"]) if comp.get("mxq") else f"<p>{esc(comp.get('note') or '')}</p>"
    if comp.get("recipe"):
        from ..quant.recipe import Recipe

        done += f"<p>Recipe {'compiled' if comp.get('mxq') else 'in the bundle'}: {esc(Recipe.from_dict(comp['recipe']).label())}.</p>"
    return ("Compile", done, {})


def _inputs(s: dict, figs: Callable) -> Section:
    inputs = [{"input": k, "value": v} for k, v in sorted(s["inputs"].items())]
    versions = [{"package": k, "version": v if v is not None else "not installed"} for k, v in sorted(s["versions"].items())]
    reused = ", ".join(s.get("reused_stages") or []) or "none"
    body = (f'<p>The raw JSON (inputs, versions, the compiled recipe): <a href="{DATA_FILE}" download>{DATA_FILE}</a> beside this page; '
            f"the whole run: <code>summary.json</code>. Stages reused from an earlier run: {esc(reused)}.</p>"
            + details("Inputs", table(inputs)) + details("Versions", table(versions)))
    return ("Inputs and versions", body, {})


# The headline and the comparison table come first; then a section per stage, in pipeline order (a new stage adds its own).
SECTIONS: tuple[Callable[[dict, Callable], Section], ...] = (
    _headline, _comparison,
    _analysis, _calibration, _stats, _sweep, _plan, _evaluation, _compile, _inputs)


def report_data(summary: dict[str, Any]) -> dict[str, Any]:
    """What ``report_data.json`` holds: the run's inputs, versions, reused stages and the recipe it compiled (or bundled)."""
    key, entry = compiled_entry(summary)
    return {"inputs": summary["inputs"], "versions": summary["versions"], "reused_stages": summary.get("reused_stages", []),
            "compiled": key, "recipe": entry.get("recipe")}


def run_report(summary: dict[str, Any], out: Path) -> str:
    """The report's HTML; figures are read from ``out`` and embedded."""
    out = Path(out)

    def figs(entry: dict) -> dict[str, bytes]:
        return {p: (out / p).read_bytes() for p in figure_files(entry)}

    page = render_report(f"bertnpu report: {summary['analysis']['summary']['model']}", [section(summary, figs) for section in SECTIONS])
    return report_redactor(summary, out).text(page, in_html=True)  # a published report shows no private path (issue 26)


def write_run_report(summary: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Write ``report_data.json`` and ``report.html`` into the run folder ``out`` (each atomically), the data first so the
    page never links to a missing file; returns both paths. Neither shows a private path (issue 26)."""
    import copy

    from ..artifacts import atomic_write_json, atomic_write_text

    out = Path(out)
    data = atomic_write_json(out / DATA_FILE, report_redactor(summary, out).value(copy.deepcopy(report_data(summary))), force=True)
    page = atomic_write_text(out / "report.html", run_report(summary, out), force=True)
    return data, page
