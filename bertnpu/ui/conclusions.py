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

from ..tune.plan.spec import PlanSpec
from .messages import message

#: bertnpu's rules of thumb for "close to FP32" (not published by Mobilint).
GOOD = {
    # the planner's acceptance rule, read from its defaults so the two never part: a Spearman drop below FP32 up to
    # PlanSpec.tolerance counts as no loss, and a mean embedding cosine to FP32 of at least PlanSpec.min_cosine as close
    "spearman_drop": PlanSpec.tolerance,
    "cosine": PlanSpec.min_cosine,  # mean cosine(FP32, INT8) of sentence embeddings
    "recall@10": 0.90,       # share of each sentence's 10 nearest neighbours kept
    "sqnr_db": 30.0,         # per-site signal-to-quantization-noise ratio; ideal 8-bit uniform is ~40-50 dB
}

METRIC_HELP = {
    "spearman": "STS-B Spearman: rank correlation of the embeddings' cosine similarity with human similarity scores (higher is better; "
                f"compare with FP32, a drop under {GOOD['spearman_drop']:g} is within noise of the split).",
    "cosine": f"cosine(FP32, INT8): how close each sentence's INT8 embedding stays to its FP32 embedding (1 = identical; >= {GOOD['cosine']:g} is close).",
    "recall@10": "recall@10: for each sentence, the share of its 10 nearest FP32 neighbours that are still among its 10 nearest INT8 "
                 f"neighbours (1 = search results unchanged; >= {GOOD['recall@10']:g} is good).",
    "sqnr_db": f"SQNR (dB): 10 log10(signal power / quantization-error power) at one site; +6 dB per bit; > {GOOD['sqnr_db']:g} dB is harmless, "
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
        return message("noise.too_few", diff=diff, ref=reference)
    key = "noise.within" if lo <= 0.0 <= hi else ("noise.worse" if hi < 0 else "noise.better")
    return message(key, ref=reference, interval=interval_text(diff, ci))


def sweep_within_noise(rows: Sequence[Mapping]) -> bool:
    """Whether the sweep cells scored on the full split differ by no more than the split's noise.

    With the sweep's tie marks (:func:`bertnpu.tune.sweep.tie_marks`) that is the paired 95 % bootstrap interval: every
    scored cell is ``tied_with_best``. Rows without them (a table from before the intervals) fall back to the rule of
    thumb: a spread of at most ``GOOD["spearman_drop"]``. Fewer than two scored cells: False (nothing to compare).

    Example:
        >>> sweep_within_noise([{"spearman": 0.812}, {"spearman": 0.809}])
        True
        >>> sweep_within_noise([{"spearman": 0.812, "tied_with_best": True}, {"spearman": 0.809, "tied_with_best": False}])
        False
    """
    scored = [r for r in rows if r.get("spearman") is not None and np.isfinite(r["spearman"])]
    if len(scored) < 2:
        return False
    if any(r.get("tied_with_best") is not None for r in scored):
        return all(r.get("tied_with_best") for r in scored)
    values = [r["spearman"] for r in scored]
    return max(values) - min(values) <= GOOD["spearman_drop"]


def simulate_conclusion(fp32: float, int8: float, cosine_mean: float, recall10: float, diff_ci=None) -> str:
    """What a Simulate result means: is the ranking (Spearman) kept, and are the embeddings themselves kept?

    ``diff_ci``: the paired 95 % interval of ``int8 - fp32``; with it the ranking verdict is the noise's
    (:func:`noise_verdict`), not the rule of thumb ``GOOD["spearman_drop"]``."""
    drop = fp32 - int8
    share = message("sim.share", pct=drop / fp32 * 100) if fp32 > 0.1 else ""  # a share of a near-zero score means nothing
    kept = drop <= GOOD["spearman_drop"] if diff_ci is None else diff_ci[1] >= 0.0  # the interval reaches FP32: no loss shown
    if diff_ci is not None:
        verdict = noise_verdict(-drop, diff_ci)
        rank = message("sim.rank_kept_ci", verdict=verdict) if kept else message("sim.rank_lost_ci", verdict=verdict, share=share)
    else:
        rank = message("sim.rank_kept") if kept else message("sim.rank_lost", drop=drop, share=share)
    emb_close = cosine_mean >= GOOD["cosine"] and recall10 >= GOOD["recall@10"]
    if emb_close:
        emb = message("sim.emb_close")
    elif kept:
        emb = message("sim.emb_move_rank_kept", cosine=cosine_mean, recall=recall10)
    else:
        emb = message("sim.emb_move", cosine=cosine_mean, good_cosine=GOOD["cosine"], recall=recall10, good_recall=GOOD["recall@10"])
    return message("sim.sentence", rank=rank, emb=emb)


def _layer_and_role(site: str) -> tuple[int, str]:
    m = re.match(r"layer\.(\d+)\.(.+)$", site)
    return (int(m.group(1)), m.group(2)) if m else (-1, site)


def _layers_text(layers: Sequence[int]) -> str:
    layers = sorted(set(layers))
    if not layers:
        return ""
    if len(layers) > 1 and layers == list(range(layers[0], layers[-1] + 1)):
        return message("layers.range", first=layers[0], last=layers[-1])
    return message("layers.one" if len(layers) == 1 else "layers.list", layers=", ".join(map(str, layers)))


def sqnr_conclusion(sqnr_db: Mapping[str, float], worst: int = 5) -> str:
    """Name the sites with the lowest SQNR and the role/layers they share."""
    finite = {k: v for k, v in sqnr_db.items() if np.isfinite(v)}
    if not finite:
        return message("sqnr.all_fp32")
    low = sorted(finite, key=finite.get)[:worst]
    below = [k for k in finite if finite[k] < GOOD["sqnr_db"]]
    role, n = Counter(_layer_and_role(s)[1] for s in low).most_common(1)[0]
    layers = [_layer_and_role(s)[0] for s in low if _layer_and_role(s)[1] == role]
    where = message("layers.role_of", role=role, layers=_layers_text(layers)) if n > 1 and min(layers) >= 0 else low[0]
    return message("sqnr.summary", below=len(below), total=len(finite), limit=GOOD["sqnr_db"], site=low[0], db=finite[low[0]], worst=worst,
                   where=where)


def sensitivity_conclusion(rows: Sequence[Mapping]) -> str:
    """From :func:`~bertnpu.tune.error_analysis.site_sensitivity` rows: which sites cost the accuracy.

    ``recovered`` is the Spearman gained by keeping one site in FP32 (everything else INT8);
    ``only_delta`` the change when that site alone is quantized.
    """
    if not rows:
        return message("sens.none")
    full_loss = rows[0]["fp32"] - rows[0]["int8"]
    top = max(rows, key=lambda r: r["recovered"])
    worst_only = min(rows, key=lambda r: r["only_delta"])
    if full_loss <= GOOD["spearman_drop"] and top["recovered"] <= GOOD["spearman_drop"]:
        lost = message("sens.lost_only", loss=full_loss) if full_loss >= 0 else message("sens.above", gain=-full_loss)
        return message("sens.no_need", lost=lost, recovered=top["recovered"])
    share = top["recovered"] / full_loss if full_loss > 0 else 0.0
    if top["recovered"] <= GOOD["spearman_drop"] / 5:  # under 0.001: noise next to the loss, nothing to single out
        return message("sens.spread", loss=full_loss, recovered=top["recovered"])
    alone = (message("sens.alone_worst", site=worst_only["site"], delta=worst_only["only_delta"])
             if worst_only["only_delta"] <= -GOOD["spearman_drop"] / 5 else message("sens.alone_none"))
    return message("sens.keep", site=top["site"], recovered=top["recovered"], loss=full_loss, share=_pct(share), alone=alone)


def outlier_conclusion(rows: Sequence[Mapping]) -> str:
    """From :func:`~bertnpu.ui.range_tables.outlier_table` rows: where extreme values sit."""
    if not rows:
        return message("outl.none")
    roles = Counter(_layer_and_role(r["site"])[1] for r in rows)
    role, n = roles.most_common(1)[0]
    layers = [_layer_and_role(r["site"])[0] for r in rows if _layer_and_role(r["site"])[1] == role]
    top = rows[0]
    return message("outl.sentence", site=top["site"], ratio=top["max_over_p99"], channel=top["worst_channel"], channel_ratio=top["channel_ratio"],
                   n=n, rows=len(rows), role=role, layers=message("outl.layers", layers=_layers_text(layers)) if min(layers) >= 0 else "")


def stability_conclusion(stability: Mapping[str, float], limit: float = 0.05) -> str:
    """From :func:`~bertnpu.quant.thresholds.threshold_stability`: is the calibration set large enough?"""
    values = {k: v for k, v in stability.items() if np.isfinite(v)}
    if not values:
        return message("stab.none")
    unstable = sorted((k for k in values if values[k] > limit), key=lambda k: -values[k])
    worst = max(values, key=values.get)
    if not unstable:
        return message("stab.stable", limit=limit * 100, site=worst, worst=values[worst] * 100)
    return message("stab.unstable", n=len(unstable), total=len(values), limit=limit * 100, site=worst, worst=values[worst] * 100)


def channel_conclusion(absmax: np.ndarray, factor: float = 4.0, show: int = 3) -> str:
    """Per-channel abs-max of the calibration embeddings: name the largest channels and whether they are outliers."""
    absmax = np.asarray(absmax, dtype=np.float64)
    median = max(float(np.median(absmax)), 1e-12)
    order = np.argsort(-absmax)[:show]
    largest = ", ".join(message("chan.item", channel=int(i), ratio=absmax[i] / median) for i in order)
    n_out = int((absmax / median > factor).sum())
    verdict = message("chan.outliers", n=n_out, factor=factor) if n_out else message("chan.none", factor=factor)
    return message("chan.sentence", largest=largest, verdict=verdict)


def sweep_conclusion(rows: Sequence[Mapping], chosen: Mapping) -> str:
    """How much the sweep's choice matters: the spread of validation Spearman over the cells scored on the
    full split, and how many other cells the fast sweep ranked by its proxy only."""
    values = [r["spearman"] for r in rows if r.get("spearman") is not None and np.isfinite(r["spearman"])]
    if not values:
        return message("sweep.none")
    best, worst = max(values), min(values)
    spread = best - worst
    mode = chosen.get("mode", 1)
    setting = (f"percentile {chosen['percentile']:g}, topk_ratio {chosen['topk_ratio']:g}" if mode == 1
               else {0: "Max", 2: "Histogram"}.get(mode, f"mode {mode}"))
    label = f"method {chosen['method']}" + (f", output {chosen['output']}" if "output" in chosen else "") + f", {setting}"
    if len(values) == 1:
        matter = message("sweep.only")
    elif sweep_within_noise(rows):
        matter = message("sweep.noise")
    else:
        matter = message("sweep.matters", spread=spread)
    proxy_only = len(rows) - len(values)
    ranked = message("sweep.proxy", n=proxy_only) if proxy_only else ""
    tied = [r for r in rows if r.get("tied_with_best")]
    pick = next((r for r in rows if r.get("recommended")), None)
    if tied and pick is not None:
        if len(values) > 1:
            matter = message("sweep.tied_many", tied=len(tied), n=len(values)) if len(tied) > 1 else message("sweep.tied_none")
        same = pick.get("spearman") == best
        label = label if same else f"{label} ({pick['spearman']:.4f})"
        first = message("sweep.recommended", best=best, label=label) + (
            "" if same else message("sweep.simplest", knobs=pick.get("knobs_from_default", 0)))
        return message("sweep.tail", first=first, matter=matter, n=len(values), worst=worst, ranked=ranked)
    return message("sweep.sentence", label=label, best=best, matter=matter, n=len(values), worst=worst, ranked=ranked)


def comparison_conclusion(rows: Sequence[Mapping]) -> str:
    """From the FP32 / tutorial / recommended (/ planned) table: what the recommendation buys.

    Each row has ``name``, ``spearman``, ``cosine`` and ``recall@10``; the first row is FP32.
    """
    fp32 = rows[0]
    others = list(rows[1:])
    if not others:
        return message("cmp.only_fp32")
    best = max(others, key=lambda r: r["spearman"])
    shown = lambda r: round(r["spearman"], 4)  # noqa: E731 (differences of the shown figures, so the sentence adds up)
    if best.get("diff_to_fp32_ci") is not None:
        parts = [message("cmp.best_ci", name=best["name"], best=best["spearman"], fp32=fp32["spearman"],
                         verdict=noise_verdict(best["diff_to_fp32"], best["diff_to_fp32_ci"]))]
        tied = [r["name"] for r in others if r is not best and r.get("diff_to_fp32_ci") is not None and r["diff_to_fp32_ci"][1] >= 0.0]
        if tied:
            parts.append(message("cmp.also_within", names=", ".join(tied)))
    else:
        parts = [message("cmp.best", name=best["name"], best=best["spearman"], fp32=fp32["spearman"], drop=shown(fp32) - shown(best))]
    tutorial = next((r for r in others if r["name"].startswith("tutorial")), None)
    if tutorial is not None and tutorial is not best:
        parts.append(message("cmp.over_tutorial", gain=shown(best) - shown(tutorial)))
    close = best["cosine"] >= GOOD["cosine"] and best["recall@10"] >= GOOD["recall@10"]
    parts.append(message("cmp.interchangeable") if close else message("cmp.still_move", cosine=best["cosine"], recall=best["recall@10"]))
    return "; ".join(parts) + "."


def placement_conclusion(blocks: Sequence[Mapping]) -> str:
    """From :func:`~bertnpu.model.analysis.block_summary`: how the work splits between CPU and NPU."""
    total_flops = sum(b["flops"] for b in blocks) or 1
    total_params = sum(b["parameters"] for b in blocks) or 1
    npu = [b for b in blocks if b["placement"] == "NPU"]
    cpu = [b for b in blocks if b["placement"] != "NPU"]
    npu_flops = sum(b["flops"] for b in npu)
    cpu_params = sum(b["parameters"] for b in cpu)
    return message("place.sentence", npu=len(npu), total=len(blocks), flops=npu_flops / total_flops * 100, cpu=", ".join(b["block"] for b in cpu),
                   params=cpu_params / total_params * 100)


def split_conclusion(max_abs_diff: float, tolerance: float = 1e-4) -> str:
    """From :func:`~bertnpu.model.analysis.verify_split`: is CPU part + NPU part the original model?"""
    if max_abs_diff <= tolerance:
        return message("split.exact", diff=max_abs_diff, tol=tolerance)
    return message("split.differs", diff=max_abs_diff, tol=tolerance)


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
    text = message("ranges.clip", clipped=len(clipped), total=len(stats.sites))
    if widened:
        text += message("ranges.widened", n=len(widened), site=widest[0], ratio=widest[1])
    return text + "."
