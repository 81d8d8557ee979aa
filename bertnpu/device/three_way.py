"""Three-way check of a compiled ``.mxq``: FP32, the simulation under each precision profile, and the NPU.

Reads ``<mxq>.recipe.json`` (written by ``compile_mxq`` or the bundle script), simulates that
exact recipe under every precision profile, runs the ``.mxq`` on the NPU, and reports the STS-B
Spearman of each plus the mean cosine of the NPU's sentence vectors to each profile's simulated
ones. The profile whose simulation the device matches best says which reading of Mobilint's
unpublished defaults fits this device.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Optional

import numpy as np

from ..data.stsb import StsPairs
from ..errors import BertnpuError
from ..model.load import LoadedModel
from ..model.sentence_encoder import SentenceEncoder
from ..quant.precision import PROFILE_NAMES
from ..tune.evaluate import cosine_rows, pair_cosines, scores_with_intervals, sts_scores, unique_sentences
from .compile_record import read_compile_record, record_path_for
from .npu_runtime import QbruntimeEncoder
from .preflight import MxqFacts, preflight


def _spearman(emb: np.ndarray, rows1: np.ndarray, rows2: np.ndarray, pairs: StsPairs) -> float:
    return sts_scores(emb, rows1, rows2, pairs.scores)["spearman"]


def simulated_embeddings(model: LoadedModel, stats, recipe, sentences: list[str], profiles: Iterable[str], *, calib=None,
                         progress: bool = True) -> dict[str, np.ndarray]:
    """Sentence vectors of ``recipe`` simulated under each profile (stats re-observed on the transformed encoder when needed)."""
    from ..quant.simulate import simulate
    from ..quant.transforms import collect_transformed_stats, transformation_names

    names = transformation_names(recipe.equivalent_transformation)
    if names and list(stats.meta.get("equivalent_transformation", [])) != names:
        if calib is None:
            raise BertnpuError(f"The recipe uses transformation(s) {', '.join(names)}: pass the calibration set (--calib) so bertnpu can "
                               "collect the activation stats on the transformed encoder.")
        stats = collect_transformed_stats(model, calib, stats, names, progress=progress)
    out = {}
    for profile in profiles:
        sim = simulate(model, stats, recipe, profile=profile)
        out[profile] = np.asarray(sim.encoder_for(progress=progress)(sentences))
    return out


def three_way_check(model: LoadedModel, mxq: str | os.PathLike, pairs: StsPairs, stats, *, calib=None,
                    weights: Optional[str | os.PathLike] = None, profiles: Iterable[str] = PROFILE_NAMES,
                    progress: bool = True, facts: Optional[MxqFacts] = None) -> dict[str, Any]:
    """FP32 vs simulated (each profile) vs NPU on ``pairs``, for the recipe in ``<mxq>.recipe.json``.

    Returns a flat dict: ``fp32_spearman``, ``npu_spearman``, ``simulated`` (profile -> Spearman),
    ``npu_cosine`` (profile -> mean cosine of NPU to simulated sentence vectors),
    ``best_profile``, ``pairs``, and the recipe, its file and the knobs the compile lacked.

    Example:
        >>> r = three_way_check(model, "model.mxq", load_stsb("test"), stats)  # doctest: +SKIP
        >>> r["best_profile"], r["npu_cosine"][r["best_profile"]]  # doctest: +SKIP
        ('aries', 0.998...)
    """
    record = read_compile_record(mxq)
    if record is None:
        raise BertnpuError(f"{str(record_path_for(mxq))!r} does not exist, so the recipe of {str(mxq)!r} is unknown; "
                           "compile with `bertnpu compile --recipe` (or the bundle script) to get one.")
    # before any encoding: a broken .mxq, wrong shapes or no NPU fail now, not after the FP32 and simulated passes
    facts = facts or preflight(mxq, hidden_size=model.config.hidden_size, model_name=model.name)
    profiles = list(profiles)
    recipe = record.recipe
    recipe.check_sites([s.name for s in stats.sites])
    sentences, rows1, rows2 = unique_sentences(pairs)
    fp32 = np.asarray(SentenceEncoder(model, progress=progress)(sentences))
    simulated = simulated_embeddings(model, stats, recipe, sentences, profiles, calib=calib, progress=progress)
    with QbruntimeEncoder(model, mxq, weights=weights, progress=progress, facts=facts) as npu:
        device = np.asarray(npu(sentences))
    npu_cosine = {p: float(cosine_rows(device, emb).mean()) for p, emb in simulated.items()}
    # every Spearman with its 95 % interval; NPU and simulations paired with FP32 on the same resampled pairs (issue 24)
    fp32_cos = pair_cosines(fp32, rows1, rows2)
    fp32_scores = scores_with_intervals(fp32_cos, pairs.scores)
    reference = {"spearman": fp32_scores["spearman"], "pair_cosines": fp32_cos}
    npu_scores = scores_with_intervals(pair_cosines(device, rows1, rows2), pairs.scores, reference)
    sim_scores = {p: scores_with_intervals(pair_cosines(emb, rows1, rows2), pairs.scores, reference) for p, emb in simulated.items()}
    return {
        "mxq": str(mxq), "recipe_file": str(record_path_for(mxq)), "recipe": recipe.to_dict(), "knobs_dropped": list(record.knobs_dropped),
        "operators": dict(record.operators), "output": record.output.returns, "pairs": len(pairs), "sentences": len(sentences),
        "fp32_spearman": fp32_scores["spearman"], "fp32_spearman_ci": fp32_scores["spearman_ci"],
        "npu_spearman": npu_scores["spearman"], "npu_pearson": npu_scores["pearson"], "spearman_ci": npu_scores["spearman_ci"],
        "diff_to_fp32": npu_scores["diff_to_fp32"], "diff_to_fp32_ci": npu_scores["diff_to_fp32_ci"],
        "simulated": {p: s["spearman"] for p, s in sim_scores.items()},
        "simulated_ci": {p: s["spearman_ci"] for p, s in sim_scores.items()},
        "npu_cosine": npu_cosine, "npu_cosine_fp32": float(cosine_rows(device, fp32).mean()),
        "best_profile": max(npu_cosine, key=npu_cosine.get), "predicted": dict(recipe.prediction),
    }


def plain_npu_check(model: LoadedModel, mxq: str | os.PathLike, pairs: StsPairs, *, weights: Optional[str | os.PathLike] = None,
                    progress: bool = True) -> dict[str, Any]:
    """FP32 vs NPU only (a ``.mxq`` without its recipe file): Spearman of each and the NPU's mean cosine to FP32."""
    facts = preflight(mxq, hidden_size=model.config.hidden_size, model_name=model.name)
    sentences, rows1, rows2 = unique_sentences(pairs)
    fp32 = np.asarray(SentenceEncoder(model, progress=progress)(sentences))
    with QbruntimeEncoder(model, mxq, weights=weights, progress=progress, facts=facts) as npu:
        device = np.asarray(npu(sentences))
    npu_scores = sts_scores(device, rows1, rows2, pairs.scores)
    return {"mxq": str(mxq), "pairs": len(pairs), "sentences": len(sentences), "fp32_spearman": _spearman(fp32, rows1, rows2, pairs),
            "npu_spearman": npu_scores["spearman"], "npu_pearson": npu_scores["pearson"],
            "npu_cosine_fp32": float(cosine_rows(device, fp32).mean())}


def format_three_way(result: dict[str, Any]) -> str:
    """The check as a few lines of text for the terminal."""
    ci = lambda c: f" [{c[0]:.4f}, {c[1]:.4f}]" if c else ""  # noqa: E731
    lines = [f"STS-B Spearman on {result['pairs']} pairs: FP32 {result['fp32_spearman']:.4f}{ci(result.get('fp32_spearman_ci'))} | "
             f"NPU {result['npu_spearman']:.4f}{ci(result.get('spearman_ci'))}"
             + (f" ({result['diff_to_fp32']:+.4f} to FP32,{ci(result['diff_to_fp32_ci'])} paired 95 % interval)" if result.get("diff_to_fp32_ci") else "")]
    if "simulated" in result:
        lines.append("simulated recipe, by precision profile (NPU mean cosine to it):")
        for p, s in result["simulated"].items():
            mark = "  <- best match" if p == result["best_profile"] else ""
            lines.append(f"  {p:<11} Spearman {s:.4f}{ci(result.get('simulated_ci', {}).get(p))}   cosine {result['npu_cosine'][p]:.4f}{mark}")
        lines.append(f"the device matches the '{result['best_profile']}' profile best")
        if result.get("knobs_dropped"):
            lines.append(f"note: compiled without {', '.join(result['knobs_dropped'])} (--allow-missing-knobs), so the .mxq is not the simulated recipe")
    lines.append(f"NPU mean cosine to FP32: {result['npu_cosine_fp32']:.4f}")
    return "\n".join(lines)
