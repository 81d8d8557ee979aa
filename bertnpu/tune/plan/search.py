"""The search itself: INT8-only candidates ranked by the proxy, then 16-bit sites added greedily."""

from __future__ import annotations

import os
import time
from typing import Callable, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from ...data.stsb import StsPairs
from ...model.load import LoadedModel
from ...model.sentence_encoder import SentenceEncoder
from ...quant.precision import override_no_effect, site_role
from ...quant.recipe import EquivalentTransformations, Recipe
from ...quant.simulate import Simulation, simulate
from ...quant.sites import site_start
from ...quant.transforms import SIMULATED, transformed_sites
from ...memory import release_free_memory
from ...version import __version__
from ..bootstrap import bootstrap_for
from ..evaluate import cosine_rows, pair_cosines, recipe_key, sts_scores, unique_sentences
from .cache import PlanCache
from .cost import activation_elements, traffic_share
from .layer_cache import LayerCachedEncoder
from .pareto import PlanResult
from .spec import PlanSpec
from .stopping import pick_row, stop_rule


def _transforms_of(names: Sequence[str]) -> EquivalentTransformations:
    return EquivalentTransformations(**{n: True for n in names})


class _Planner:
    def __init__(self, model, calib, stats, validation, spec: PlanSpec, cache, progress):
        from ...quant.stats import calibration_hash, collect_activation_stats, model_hash

        self.model, self.calib, self.spec, self.progress = model, calib, spec, progress
        self.stats_by_transforms: dict[tuple, object] = {}
        self.base_stats = stats if stats is not None else collect_activation_stats(model, calib, progress=progress)
        self.stats_by_transforms[()] = self.base_stats
        self.validation = validation
        val_sentences, self.rows1, self.rows2 = unique_sentences(validation)
        self.proxy_sentences = val_sentences[: spec.proxy_sentences]
        self.proxy = LayerCachedEncoder(model, self.proxy_sentences)
        self.full = LayerCachedEncoder(model, val_sentences, progress=progress, desc="plan: validation split")
        self.fp32_proxy = SentenceEncoder(model, progress=False)(self.proxy_sentences)
        self.fp32_val_emb = SentenceEncoder(model, progress=progress, desc="plan: FP32 validation")(val_sentences)  # a minute on BERT-base
        self.fp32_validation = sts_scores(self.fp32_val_emb, self.rows1, self.rows2, validation.scores)["spearman"]
        # the paired bootstrap of the validation split: one index matrix and FP32's resampled Spearman, reused by every row
        self.boot = bootstrap_for(validation.scores)
        self.fp32_val_samples = self.boot.samples(pair_cosines(self.fp32_val_emb, self.rows1, self.rows2))
        self.elements = activation_elements(model, self.proxy_sentences)
        ident = {"model": self.base_stats.meta.get("model_sha256") or model_hash(model),
                 "calibration": self.base_stats.meta.get("calibration_sha256") or calibration_hash(calib),
                 "validation": validation.content_hash(), "proxy": spec.proxy_sentences,  # sentences AND scores
                 "tool": __version__}
        self.cache = PlanCache(cache, ident)
        self.sims: dict[tuple, Simulation] = {}

    def stats_for(self, names: tuple):
        if names not in self.stats_by_transforms:
            from ...quant.transforms import collect_transformed_stats

            if "all" not in self.stats_by_transforms:
                self.stats_by_transforms["all"] = collect_transformed_stats(self.model, self.calib, self.base_stats, SIMULATED, progress=self.progress)
            full = self.stats_by_transforms["all"]
            changed = set(transformed_sites([s.name for s in self.base_stats.sites], names, self.model.config.num_hidden_layers))
            observers = {s.name: (full[s.name] if s.name in changed else self.base_stats[s.name]) for s in self.base_stats.sites}
            from ...quant.stats import ActivationStats

            self.stats_by_transforms[names] = ActivationStats(list(self.base_stats.sites), observers,
                                                              {**self.base_stats.meta, "equivalent_transformation": list(names)})
        return self.stats_by_transforms[names]

    def simulation(self, recipe: Recipe) -> Simulation:
        names = tuple(recipe.equivalent_transformation.enabled())
        key = (names, recipe.calibration, recipe.profile)
        if key not in self.sims:
            encoder = next((s.encoder for (n, c, p), s in self.sims.items() if n == names and c.bits == recipe.calibration.bits), None)
            if encoder is None:
                # each weight-quantized (transformed) encoder is a full copy of the NPU part: keep one at a time
                # (the search visits each transformation once; a rebuilt copy is the same bit for bit)
                self.sims = {k: s for k, s in self.sims.items() if k[0] == names and k[1].bits == recipe.calibration.bits}
                for cached in (self.proxy, self.full):
                    if cached.encoder is not None and all(s.encoder is not cached.encoder for s in self.sims.values()):
                        cached.set_base(None, None)
                release_free_memory()
            self.sims[key] = simulate(self.model, self.stats_for(names), recipe.with_(activation_16bits=()), encoder=encoder,
                                      keep_reference=False)  # the planner measures embeddings, never per-site errors
        sim = self.sims[key]
        return sim if not recipe.activation_16bits else _with_sites(sim, recipe)

    def proxy_cosine(self, recipe: Recipe, start: int = -1, base: Optional[Recipe] = None) -> float:
        hit = self.cache.get("proxy", recipe)
        if hit is not None:
            return hit["cosine"]
        sim = self.simulation(recipe)
        if base is None:
            self.proxy.set_base(sim.encoder, sim.tap)
            emb = self.proxy.advance(sim.tap)
        else:
            emb = self.proxy.embed(sim.tap, start)
        return self.cache.put("proxy", recipe, {"cosine": float(cosine_rows(emb, self.fp32_proxy).mean())})["cosine"]

    def validation_spearman(self, recipe: Recipe, start: int = -1) -> float:
        return self.validation_scores(recipe, start)["spearman"]

    def validation_scores(self, recipe: Recipe, start: int = -1) -> dict:
        """``{spearman, cosine}`` of the recipe on the whole validation split (cosine: mean to FP32 embeddings)."""
        hit = self.cache.get("validation", recipe)
        sim = self.simulation(recipe)
        if hit is not None and "pair_cosines" in hit:  # a result from before the intervals: measure it again
            self.full.set_base(sim.encoder, sim.tap)  # recomputed lazily if a later step needs it
            return hit
        if start >= 0 and self.full.encoder is not sim.encoder:
            start = -1
        if start < 0:
            self.full.set_base(sim.encoder, sim.tap)
        emb = self.full.advance(sim.tap, start)
        cos = pair_cosines(emb, self.rows1, self.rows2)
        value = sts_scores(emb, self.rows1, self.rows2, self.validation.scores)["spearman"]
        return self.cache.put("validation", recipe, {"spearman": value, "cosine": float(cosine_rows(emb, self.fp32_val_emb).mean()),
                                                     "pair_cosines": cos.tolist()})

    def interval_row(self, scores: dict, previous: Optional[np.ndarray] = None) -> tuple[dict, np.ndarray]:
        """A Pareto row's intervals (``validation_spearman_ci``, ``diff_to_fp32``, ``diff_to_fp32_ci``, ``gain_ci`` against the
        ``previous`` row's resampled Spearman) and this row's resampled Spearman, for the next row."""
        samples = self.boot.samples(np.asarray(scores["pair_cosines"]))
        row = {"validation_spearman_ci": self.boot.interval(samples), "diff_to_fp32": scores["spearman"] - self.fp32_validation,
               "diff_to_fp32_ci": self.boot.interval(samples - self.fp32_val_samples),
               "gain_ci": None if previous is None else self.boot.interval(samples - previous)}
        return row, samples


def _with_sites(sim: Simulation, recipe: Recipe) -> Simulation:
    bits = dict(sim.site_bits)
    bits.update({s: 16 for s in recipe.activation_16bits})
    tap = sim.tap.with_bits({s: 16 for s in recipe.activation_16bits}) if sim.tap is not None else None
    return Simulation(sim.model, sim.config, sim.encoder, tap, sim.ranges, recipe, bits, (), sim.reference)


def plan_recipe(
    model: LoadedModel, calib, validation: StsPairs, test: StsPairs, spec: PlanSpec = PlanSpec(), *, stats=None,
    cache: Optional[str | os.PathLike] = None, progress: bool = True, log: Callable[[str], None] = lambda s: None,
) -> PlanResult:
    """Search the cheapest recipe within ``spec.tolerance`` of FP32 on validation; confirm it on test.

    Args:
        calib: the calibration set (:class:`~bertnpu.data.calibration.CalibrationSet`).
        stats: its activation stats on the plain encoder (collected when None).
        cache: a JSON-lines file; an interrupted plan with the same inputs resumes from it.

    Example:
        >>> result = plan_recipe(model, calib, load_stsb("validation"), load_stsb("test"))  # doctest: +SKIP
        >>> result.recipe.save("recipe.json")  # doctest: +SKIP
    """
    start_time = time.perf_counter()
    p = _Planner(model, calib, stats, validation, spec, cache, progress)
    site_names = [s.name for s in p.base_stats.sites]
    layers = model.config.num_hidden_layers
    log(f"FP32 validation Spearman {p.fp32_validation:.4f}; searching under profile {spec.profile!r}")

    # 1. INT8 only: calibration configs, then transformations on the best few
    int8_rows = []
    bar = tqdm(total=len(spec.configs) + spec.top_configs * len(spec.transforms), desc="plan: INT8 recipes", disable=not progress, leave=False)
    for cfg in spec.configs:
        r = Recipe(calibration=cfg, profile=spec.profile)
        int8_rows.append({"recipe": r, "proxy_cosine": p.proxy_cosine(r)})
        bar.update()
    best_configs = [row["recipe"].calibration for row in sorted(int8_rows, key=lambda row: -row["proxy_cosine"])[: spec.top_configs]]
    for cfg in best_configs:
        for combo in spec.transforms:
            r = Recipe(calibration=cfg, equivalent_transformation=_transforms_of(combo), profile=spec.profile)
            int8_rows.append({"recipe": r, "proxy_cosine": p.proxy_cosine(r)})
            bar.update()
    bar.total = bar.n  # fewer configs than top_configs: a notebook bar short of its total would stay up as an error
    bar.close()
    int8_rows.sort(key=lambda row: -row["proxy_cosine"])
    best_int8 = int8_rows[0]["recipe"]
    log(f"best INT8-only recipe by proxy: {best_int8.label()} (cosine {int8_rows[0]['proxy_cosine']:.4f})")

    # 2. greedy 16-bit sites
    current = best_int8
    target = p.fp32_validation - spec.tolerance
    scores0 = p.validation_scores(current)
    best_int8_val = scores0["spearman"]
    sim0 = p.simulation(current)
    noise, samples = p.interval_row(scores0)
    # a row's sites stay the recipe's tuple (lists only in the JSON written from it)
    pareto = [{"n_sites": 0, "sites": (), "added": None, "validation_spearman": best_int8_val, "validation_cosine": scores0["cosine"],
               "proxy_cosine": int8_rows[0]["proxy_cosine"], "traffic_16bit": traffic_share(sim0.site_bits, p.elements), **noise}]

    candidates = [s for s in site_names if sim0.site_bits[s] <= 8 and (not s.startswith("pooler.") or model.pooling.mode == "pooler")]
    if spec.candidate_roles:
        candidates = [s for s in candidates if site_role(s) in spec.candidate_roles]
    skipped = [] if spec.try_layernorm else [s for s in candidates if override_no_effect(s)]
    candidates = [s for s in candidates if s not in skipped]
    if skipped:
        log(f"not tried at 16 bits: {len(skipped)} LayerNorm output(s), because {override_no_effect(skipped[0])} (try_layernorm to include them)")
    last_gain: dict[str, float] = {}
    bar = tqdm(total=spec.max_sites, desc="plan: 16-bit sites", disable=not progress, leave=False)
    while (spec.full_table or stop_rule(pareto, spec.min_cosine) is None) and len(current.activation_16bits) < spec.max_sites and candidates:
        sim = p.simulation(current)
        p.proxy.set_base(sim.encoder, sim.tap)
        pool_ = candidates if not last_gain else sorted(candidates, key=lambda s: -last_gain.get(s, -1.0))[: spec.lazy_width]
        for site in tqdm(pool_, desc=f"step {len(current.activation_16bits) + 1}", disable=not progress, leave=False):
            trial = current.with_(activation_16bits=current.activation_16bits + (site,))
            last_gain[site] = p.proxy_cosine(trial, site_start(site, layers), base=current)
        chosen = max(pool_, key=lambda s: last_gain[s])
        candidates.remove(chosen)
        current = current.with_(activation_16bits=current.activation_16bits + (chosen,))
        scores = p.validation_scores(current, site_start(chosen, layers))
        val = scores["spearman"]
        noise, samples = p.interval_row(scores, samples)
        pareto.append({"n_sites": len(current.activation_16bits), "sites": current.activation_16bits, "added": chosen,
                       "validation_spearman": val, "validation_cosine": scores["cosine"], "proxy_cosine": last_gain[chosen],
                       "traffic_16bit": traffic_share(p.simulation(current).site_bits, p.elements), **noise})
        log(f"+ {chosen}: validation Spearman {val:.4f} (FP32 {p.fp32_validation:.4f}; difference {noise['diff_to_fp32']:+.4f} "
            f"[{noise['diff_to_fp32_ci'][0]:+.4f}, {noise['diff_to_fp32_ci'][1]:+.4f}]), cosine {scores['cosine']:.4f}")
        bar.update()
    bar.total = bar.n  # stopping before max_sites is the normal end: a notebook bar short of its total stays up as an error
    bar.close()

    pick, within, both = pick_row(pareto, target, spec.min_cosine)
    chosen_recipe = best_int8.with_(activation_16bits=pick["sites"])
    rule = next((r for k in range(len(pareto)) if (r := stop_rule(pareto[: k + 1], spec.min_cosine)) is not None), None)
    if rule is None:
        rule = "max_sites" if len(pareto) - 1 >= spec.max_sites else "no_candidates"

    # 3. confirm on test: FP32, best INT8-only, chosen
    fp32_test_emb = SentenceEncoder(model, progress=progress, desc="plan: FP32 test")
    test_sentences, t1, t2 = unique_sentences(test)
    fp32_emb = fp32_test_emb(test_sentences)
    fp32_test = sts_scores(fp32_emb, t1, t2, test.scores)["spearman"]
    fp32_test_cos = pair_cosines(fp32_emb, t1, t2)
    test_embeddings = {"fp32": fp32_emb}

    def confirm(recipe: Recipe) -> tuple[float, float, list]:
        hit = p.cache.get("test:" + test.content_hash()[:16], recipe)
        if hit is None or "pair_cosines" not in hit:  # a result from before the intervals: measure it again
            emb = test_embeddings[recipe_key(recipe)] = p.simulation(recipe).encoder_for(progress=progress)(test_sentences)
            hit = p.cache.put("test:" + test.content_hash()[:16], recipe,
                              {"spearman": sts_scores(emb, t1, t2, test.scores)["spearman"], "cosine": float(cosine_rows(emb, fp32_emb).mean()),
                               "pair_cosines": pair_cosines(emb, t1, t2).tolist()})
        return hit["spearman"], hit["cosine"], hit["pair_cosines"]

    from ..bootstrap import interval_fields

    int8_test, _, int8_cos = confirm(best_int8)
    test_s, test_cos, chosen_cos = confirm(chosen_recipe) if chosen_recipe != best_int8 else confirm(best_int8)
    test_noise = interval_fields(chosen_cos, test.scores, test_s, fp32_test_cos, fp32_test)
    int8_noise = interval_fields(int8_cos, test.scores, int8_test, fp32_test_cos, fp32_test)
    fp32_test_ci = interval_fields(fp32_test_cos, test.scores, fp32_test)["spearman_ci"]
    chosen_recipe = chosen_recipe.with_(prediction={
        "profile": spec.profile, "validation_spearman": pick["validation_spearman"], "test_spearman": test_s, "test_cosine_to_fp32": test_cos,
        "fp32_validation_spearman": p.fp32_validation, "fp32_test_spearman": fp32_test, "tolerance": spec.tolerance,
        "traffic_16bit": pick["traffic_16bit"], "within_tolerance": within, "validation_cosine_to_fp32": pick["validation_cosine"],
        "min_cosine": spec.min_cosine, "cosine_met": both, "stop_rule": rule, "test_spearman_ci": test_noise["spearman_ci"],
        "test_diff_to_fp32_ci": test_noise["diff_to_fp32_ci"]})
    info = {s.name: s.layer for s in p.base_stats.sites}
    return PlanResult(
        recipe=chosen_recipe, fp32_validation=p.fp32_validation, fp32_test=fp32_test, validation_spearman=pick["validation_spearman"],
        test_spearman=test_s, test_cosine_mean=test_cos, best_int8=best_int8, best_int8_validation=best_int8_val, best_int8_test=int8_test,
        int8_candidates=[{"recipe": row["recipe"].label(), "proxy_cosine": row["proxy_cosine"]} for row in int8_rows],
        pareto=pareto, within_tolerance=within, profile=spec.profile, tolerance=spec.tolerance,
        seconds=time.perf_counter() - start_time, site_layers=info, validation_cosine=pick["validation_cosine"],
        min_cosine=spec.min_cosine, cosine_met=both, not_tried=skipped, test_embeddings=test_embeddings, test_sentences=test_sentences,
        stop_rule=rule, test_intervals=test_noise, best_int8_intervals=int8_noise, fp32_test_ci=fp32_test_ci)
