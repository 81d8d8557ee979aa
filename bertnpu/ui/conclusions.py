"""One-sentence conclusions computed from an analysis's numbers, for the notebooks and reports.

Each function reads the numbers a cell shows and says what they mean, so a reader never has
to interpret a raw table alone. The "good" levels are bertnpu's rules of thumb, stated in
:data:`GOOD`; none is a Mobilint specification (not published).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Mapping, Sequence

import numpy as np

#: bertnpu's rules of thumb for "close to FP32" (not published by Mobilint).
GOOD = {
    "spearman_drop": 0.005,  # the planner's default tolerance below FP32
    "cosine": 0.99,          # mean cosine(FP32, INT8) of sentence embeddings
    "recall@10": 0.90,       # share of each sentence's 10 nearest neighbours kept
    "sqnr_db": 30.0,         # per-site signal-to-quantization-noise ratio; ideal 8-bit uniform is ~40-50 dB
}

METRIC_HELP = {
    "spearman": "STS-B Spearman: rank correlation of the embeddings' cosine similarity with human similarity scores (higher is better; "
                "compare with FP32, a drop under 0.005 is within noise of the split).",
    "cosine": "cosine(FP32, INT8): how close each sentence's INT8 embedding stays to its FP32 embedding (1 = identical; >= 0.99 is close).",
    "recall@10": "recall@10: for each sentence, the share of its 10 nearest FP32 neighbours that are still among its 10 nearest INT8 "
                 "neighbours (1 = search results unchanged; >= 0.9 is good).",
    "sqnr_db": "SQNR (dB): 10 log10(signal power / quantization-error power) at one site; +6 dB per bit; > 30 dB is harmless, "
               "< 20 dB loses information.",
}


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def interval_text(diff: float, ci: Sequence[float]) -> str:
    """A difference with its paired 95 % interval, as the conclusions print it: ``-0.020 [-0.028, -0.013]``."""
    return f"{diff:+.3f} [{ci[0]:+.3f}, {ci[1]:+.3f}]"


def noise_verdict(diff: float, ci: Sequence[float], reference: str = "FP32") -> str:
    """What a difference to ``reference`` means once its paired 95 % bootstrap interval ``ci`` is known.

    The interval contains 0: "within FP32's noise" (the split cannot tell the two apart, whatever the
    fourth decimal says); else "worse than FP32" or "better than FP32", with the numbers.

    Example:
        >>> noise_verdict(-0.020, [-0.028, -0.013])
        'worse than FP32: -0.020 [-0.028, -0.013]'
    """
    lo, hi = ci
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{diff:+.4f} from {reference} (too few pairs for an interval)"
    if lo <= 0.0 <= hi:
        return f"within {reference}'s noise: {interval_text(diff, ci)}"
    return f"{'worse' if hi < 0 else 'better'} than {reference}: {interval_text(diff, ci)}"


def simulate_conclusion(fp32: float, int8: float, cosine_mean: float, recall10: float, diff_ci=None) -> str:
    """What a Simulate result means: is the ranking (Spearman) kept, and are the embeddings themselves kept?

    ``diff_ci``: the paired 95 % interval of ``int8 - fp32``; with it the ranking verdict is the noise's
    (:func:`noise_verdict`), not the rule of thumb ``GOOD["spearman_drop"]``."""
    drop = fp32 - int8
    share = f" ({drop / fp32 * 100:.1f}% of FP32)" if fp32 > 0.1 else ""  # a share of a near-zero score means nothing
    kept = drop <= GOOD["spearman_drop"] if diff_ci is None else diff_ci[1] >= 0.0  # the interval reaches FP32: no loss shown
    if diff_ci is not None:
        rank = (f"keeps the STS-B ranking ({noise_verdict(-drop, diff_ci)})" if kept
                else f"loses Spearman ({noise_verdict(-drop, diff_ci)}{share})")
    else:
        rank = "keeps the STS-B ranking" if kept else f"loses {drop:.4f} Spearman{share}"
    emb_close = cosine_mean >= GOOD["cosine"] and recall10 >= GOOD["recall@10"]
    if emb_close:
        emb = "and its embeddings stay close to FP32, so stored FP32 vectors and search results remain valid"
    elif kept:
        emb = (f"but its embeddings move (cosine {cosine_mean:.3f}, recall@10 {recall10:.2f}): similarity scores rank pairs as before, "
               "yet INT8 vectors must not be mixed with stored FP32 vectors")
    else:
        emb = f"and its embeddings move (cosine {cosine_mean:.3f} < {GOOD['cosine']}, recall@10 {recall10:.2f} < {GOOD['recall@10']})"
    return f"This config {rank} {emb}."


def _layer_and_role(site: str) -> tuple[int, str]:
    m = re.match(r"layer\.(\d+)\.(.+)$", site)
    return (int(m.group(1)), m.group(2)) if m else (-1, site)


def _layers_text(layers: Sequence[int]) -> str:
    layers = sorted(set(layers))
    if not layers:
        return ""
    if len(layers) > 1 and layers == list(range(layers[0], layers[-1] + 1)):
        return f"layers {layers[0]}-{layers[-1]}"
    return ("layer " if len(layers) == 1 else "layers ") + ", ".join(map(str, layers))


def sqnr_conclusion(sqnr_db: Mapping[str, float], worst: int = 5) -> str:
    """Name the sites with the lowest SQNR and the role/layers they share."""
    finite = {k: v for k, v in sqnr_db.items() if np.isfinite(v)}
    if not finite:
        return "Every site is kept in FP32: no quantization noise."
    low = sorted(finite, key=finite.get)[:worst]
    below = [k for k in finite if finite[k] < GOOD["sqnr_db"]]
    role, n = Counter(_layer_and_role(s)[1] for s in low).most_common(1)[0]
    layers = [_layer_and_role(s)[0] for s in low if _layer_and_role(s)[1] == role]
    where = f"{role} of {_layers_text(layers)}" if n > 1 and min(layers) >= 0 else low[0]
    return (f"{len(below)} of {len(finite)} quantized sites are below {GOOD['sqnr_db']:.0f} dB; the noisiest is {low[0]} "
            f"({finite[low[0]]:.1f} dB), and the {worst} lowest are dominated by {where}.")


def sensitivity_conclusion(rows: Sequence[Mapping]) -> str:
    """From :func:`~bertnpu.tune.error_analysis.site_sensitivity` rows: which sites cost the accuracy.

    ``recovered`` is the Spearman gained by keeping one site in FP32 (everything else INT8);
    ``only_delta`` the change when that site alone is quantized.
    """
    if not rows:
        return "No site was analysed."
    full_loss = rows[0]["fp32"] - rows[0]["int8"]
    top = max(rows, key=lambda r: r["recovered"])
    worst_only = min(rows, key=lambda r: r["only_delta"])
    if full_loss <= GOOD["spearman_drop"] and top["recovered"] <= GOOD["spearman_drop"]:
        lost = f"loses only {full_loss:.4f} Spearman" if full_loss >= 0 else f"scores {-full_loss:.4f} above FP32 (noise)"
        return f"The full INT8 model {lost} and no single site recovers more than {top['recovered']:.4f}: none of these sites needs 16 bits."
    share = top["recovered"] / full_loss if full_loss > 0 else 0.0
    if top["recovered"] <= GOOD["spearman_drop"] / 5:  # under 0.001: noise next to the loss, nothing to single out
        return (f"The INT8 model loses {full_loss:.4f} Spearman, but no analysed site recovers more than {top['recovered']:.4f} when kept in FP32: "
                "the loss is spread over other sites (the plan below searches all of them).")
    alone = (f"; quantized alone, {worst_only['site']} costs the most ({worst_only['only_delta']:+.4f})"
             if worst_only["only_delta"] <= -GOOD["spearman_drop"] / 5 else "; quantized alone, none of them costs more than 0.001")
    return f"Keeping {top['site']} in FP32 recovers {top['recovered']:.4f} of the {full_loss:.4f} Spearman lost ({_pct(share)}){alone}."


def outlier_conclusion(rows: Sequence[Mapping]) -> str:
    """From :func:`~bertnpu.ui.range_tables.outlier_table` rows: where extreme values sit."""
    if not rows:
        return "No sites."
    roles = Counter(_layer_and_role(r["site"])[1] for r in rows)
    role, n = roles.most_common(1)[0]
    layers = [_layer_and_role(r["site"])[0] for r in rows if _layer_and_role(r["site"])[1] == role]
    top = rows[0]
    return (f"The most extreme site is {top['site']}: its max |x| is {top['max_over_p99']:,.0f}x its 99th percentile, "
            f"concentrated in channel {top['worst_channel']} ({top['channel_ratio']:,.0f}x the median channel); "
            f"{n} of the {len(rows)} worst sites are {role}" + (f" ({_layers_text(layers)})." if min(layers) >= 0 else "."))


def stability_conclusion(stability: Mapping[str, float], limit: float = 0.05) -> str:
    """From :func:`~bertnpu.quant.thresholds.threshold_stability`: is the calibration set large enough?"""
    values = {k: v for k, v in stability.items() if np.isfinite(v)}
    if not values:
        return "No thresholds to compare."
    unstable = sorted((k for k in values if values[k] > limit), key=lambda k: -values[k])
    worst = max(values, key=values.get)
    if not unstable:
        return f"Every threshold moves less than {limit * 100:.0f}% over resamples (worst {worst}: {values[worst] * 100:.1f}%): enough samples."
    return (f"{len(unstable)} of {len(values)} thresholds move more than {limit * 100:.0f}% over resamples (worst {worst}: "
            f"{values[worst] * 100:.1f}%): add calibration samples, or accept that these sites' ranges depend on which sentences were drawn.")


def channel_conclusion(absmax: np.ndarray, factor: float = 4.0, show: int = 3) -> str:
    """Per-channel abs-max of the calibration embeddings: name the largest channels and whether they are outliers."""
    absmax = np.asarray(absmax, dtype=np.float64)
    median = max(float(np.median(absmax)), 1e-12)
    order = np.argsort(-absmax)[:show]
    largest = ", ".join(f"{int(i)} ({absmax[i] / median:.1f}x)" for i in order)
    n_out = int((absmax / median > factor).sum())
    verdict = (f"{n_out} channel(s) exceed {factor:g}x the median abs-max: one per-tensor scale must stretch to cover them"
               if n_out else f"no channel exceeds {factor:g}x the median abs-max, so one per-tensor scale fits all channels")
    return f"Largest channels (abs-max / median channel): {largest}; {verdict}."


def sweep_conclusion(rows: Sequence[Mapping], chosen: Mapping) -> str:
    """How much the sweep's choice matters: the spread of validation Spearman over the cells scored on the
    full split, and how many other cells the fast sweep ranked by its proxy only."""
    values = [r["spearman"] for r in rows if r.get("spearman") is not None and np.isfinite(r["spearman"])]
    if not values:
        return "The sweep has no results."
    best, worst = max(values), min(values)
    spread = best - worst
    mode = chosen.get("mode", 1)
    setting = (f"percentile {chosen['percentile']:g}, topk_ratio {chosen['topk_ratio']:g}" if mode == 1
               else {0: "Max", 2: "Histogram"}.get(mode, f"mode {mode}"))
    label = f"method {chosen['method']}" + (f", output {chosen['output']}" if "output" in chosen else "") + f", {setting}"
    if len(values) == 1:
        matter = "the only config scored on the full split"
    elif spread <= GOOD["spearman_drop"]:
        matter = "the scored cells differ by less than the split's noise: any of them would do"
    else:
        matter = f"the choice matters: the scored cells span {spread:.4f}"
    proxy_only = len(rows) - len(values)
    ranked = f"; the other {proxy_only} cells were ranked by the proxy only" if proxy_only else ""
    tied = [r for r in rows if r.get("tied_with_best")]
    pick = next((r for r in rows if r.get("recommended")), None)
    if tied and pick is not None:
        if len(values) > 1:
            matter = (f"{len(tied)} of the {len(values)} scored cells are tied with the best (paired 95 % interval of the difference "
                      "contains 0)" if len(tied) > 1 else "no other scored cell is tied with it (each paired 95 % interval of the difference excludes 0)")
        same = pick.get("spearman") == best
        label = label if same else f"{label} ({pick['spearman']:.4f})"
        first = f"Best on validation {best:.4f}; recommended: {label}" + (
            "" if same else f", the simplest of the tied cells ({pick.get('knobs_from_default', 0)} knob(s) from the tutorial's config)")
        return f"{first}; {matter} ({len(values)} configs scored, worst {worst:.4f}{ranked})."
    return f"Best on validation: {label} ({best:.4f}); {matter} ({len(values)} configs scored, worst {worst:.4f}{ranked})."


def comparison_conclusion(rows: Sequence[Mapping]) -> str:
    """From the FP32 / tutorial / recommended (/ planned) table: what the recommendation buys.

    Each row has ``name``, ``spearman``, ``cosine`` and ``recall@10``; the first row is FP32.
    """
    fp32 = rows[0]
    others = list(rows[1:])
    if not others:
        return "Only the FP32 model was evaluated."
    best = max(others, key=lambda r: r["spearman"])
    shown = lambda r: round(r["spearman"], 4)  # noqa: E731 (differences of the shown figures, so the sentence adds up)
    if best.get("diff_to_fp32_ci") is not None:
        parts = [f"On the test split, {best['name']} is the closest to FP32: {best['spearman']:.4f} vs {fp32['spearman']:.4f}, "
                 + noise_verdict(best["diff_to_fp32"], best["diff_to_fp32_ci"])]
        tied = [r["name"] for r in others if r is not best and r.get("diff_to_fp32_ci") is not None and r["diff_to_fp32_ci"][1] >= 0.0]
        if tied:
            parts.append(f"{' and '.join(tied)} also within FP32's noise")
    else:
        parts = [f"On the test split, {best['name']} is the closest to FP32: {best['spearman']:.4f} vs {fp32['spearman']:.4f} "
                 f"(drop {shown(fp32) - shown(best):.4f})"]
    tutorial = next((r for r in others if r["name"].startswith("tutorial")), None)
    if tutorial is not None and tutorial is not best:
        parts.append(f"{shown(best) - shown(tutorial):+.4f} over the tutorial config")
    close = best["cosine"] >= GOOD["cosine"] and best["recall@10"] >= GOOD["recall@10"]
    parts.append("its embeddings stay interchangeable with FP32" if close else
                 f"its embeddings still move (cosine {best['cosine']:.3f}, recall@10 {best['recall@10']:.2f}): re-embed stored vectors with the NPU model")
    return "; ".join(parts) + "."


def placement_conclusion(blocks: Sequence[Mapping]) -> str:
    """From :func:`~bertnpu.model.analysis.block_summary`: how the work splits between CPU and NPU."""
    total_flops = sum(b["flops"] for b in blocks) or 1
    total_params = sum(b["parameters"] for b in blocks) or 1
    npu = [b for b in blocks if b["placement"] == "NPU"]
    cpu = [b for b in blocks if b["placement"] != "NPU"]
    npu_flops = sum(b["flops"] for b in npu)
    cpu_params = sum(b["parameters"] for b in cpu)
    return (f"The NPU runs {len(npu)} of {len(blocks)} blocks and {npu_flops / total_flops * 100:.1f}% of the FLOPs; the CPU keeps "
            f"{', '.join(b['block'] for b in cpu)}, which hold {cpu_params / total_params * 100:.1f}% of the parameters "
            f"(the embedding tables) but almost no compute.")


def split_conclusion(max_abs_diff: float, tolerance: float = 1e-4) -> str:
    """From :func:`~bertnpu.model.analysis.verify_split`: is CPU part + NPU part the original model?"""
    if max_abs_diff <= tolerance:
        return f"The split is exact: the largest difference, {max_abs_diff:.1e}, is float rounding (below {tolerance:g})."
    return f"The split differs from the original model by up to {max_abs_diff:.3g} (above {tolerance:g}): check the CPU part."


def ranges_conclusion(stats, ranges: Mapping) -> str:
    """From every site's max |x| and applied threshold: how many sites clip, how many get a wider shared range."""
    clipped, widened, widest = [], [], None
    for s in stats.sites:
        absmax, t = stats[s.name].absmax, ranges[s.name].threshold
        if t < absmax * (1 - 1e-6):
            clipped.append(s.name)
        elif t > absmax * 1.5:
            widened.append(s.name)
            if widest is None or t / absmax > widest[1]:
                widest = (s.name, t / absmax)
    text = f"{len(clipped)} of {len(stats.sites)} sites clip their largest values"
    if widened:
        text += (f"; {len(widened)} get a range over 1.5x their own max from sharing across layers (most: {widest[0]}, "
                 f"{widest[1]:,.1f}x), which costs them resolution")
    return text + "."
