"""The planner on the tiny BERT: layer-reusing runs equal full runs, the greedy path, the cache, bad input."""

import json

import numpy as np
import pytest

from bertnpu.errors import BertnpuError
from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.quant.simulate import simulate
from bertnpu.quant.transforms import collect_transformed_stats
from bertnpu.tune.evaluate import cosine_rows, evaluate_sts
from bertnpu.tune.plan import LayerCachedEncoder, PlanSpec, activation_elements, format_pareto, plan_recipe, site_start, traffic_share

CFG = QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.5, bits=4)  # 4 bits so the tiny BERT visibly degrades


def test_layer_reuse_equals_full_runs(tiny_model, tiny_calib, tiny_stats, stsb_test):
    sentences = stsb_test.sentence1[:30]
    stats = collect_transformed_stats(tiny_model, tiny_calib, tiny_stats, ["norm_conv", "qk"], batch_size=7)
    base = simulate(tiny_model, stats, Recipe(calibration=CFG).with_(equivalent_transformation=stats_transforms()))
    cached = LayerCachedEncoder(tiny_model, sentences, batch_size=8)
    cached.set_base(base.encoder, base.tap)
    assert np.abs(cached.embed(base.tap) - base.encoder_for()(sentences)).max() < 1e-6
    for site in ("embeddings.out", "layer.1.attention.layernorm.out", "layer.2.ffn.residual"):
        variant = simulate(tiny_model, stats, Recipe(calibration=CFG, equivalent_transformation=stats_transforms(), activation_16bits=(site,)))
        reused = cached.embed(variant.tap, site_start(site, 3))
        assert np.abs(reused - variant.encoder_for()(sentences)).max() < 1e-6, site


def stats_transforms():
    from bertnpu.quant.recipe import EquivalentTransformations

    return EquivalentTransformations(norm_conv=True, qk=True)


def test_traffic_share_by_hand(tiny_model):
    elements = activation_elements(tiny_model, ["a b c", "hello"])  # 5 and 3 tokens with [CLS]/[SEP]
    assert elements["layer.0.ffn.residual"] == 8 * 36
    assert elements["layer.0.ffn.gelu.out"] == 8 * 70
    assert elements["layer.0.attention.scores"] == (25 + 9) * 3
    share = traffic_share({"layer.0.ffn.residual": 16, "layer.0.ffn.gelu.out": 8}, elements)
    assert share == pytest.approx(8 * 36 / sum(elements.values()))


def test_plan_on_tiny_bert(tiny_model, tiny_calib, tiny_stats, stsb_validation, stsb_test, tmp_path):
    spec = PlanSpec(tolerance=0.001, max_sites=2, proxy_sentences=24, lazy_width=2, configs=(CFG, CFG.with_(mode=0)),
                    transforms=(("qk",),), top_configs=1, full_table=True)
    val, test = stsb_validation.subset(40), stsb_test.subset(40)
    cache = tmp_path / "plan.jsonl"
    result = plan_recipe(tiny_model, tiny_calib, val, test, spec, stats=tiny_stats, cache=cache, progress=False)
    # the table: n = 0, 1, ... with the sites added in order; the traffic share grows
    assert [row["n_sites"] for row in result.pareto] == list(range(len(result.pareto)))
    assert all(b["traffic_16bit"] > a["traffic_16bit"] for a, b in zip(result.pareto, result.pareto[1:]))
    assert result.pareto[0]["sites"] == () and len(result.pareto) == 3  # full_table: up to max_sites
    # a row's sites are the tuple of its recipe, each row's extending the previous one's (no list in memory)
    assert all(type(row["sites"]) is tuple for row in result.pareto)
    assert all(b["sites"][:-1] == a["sites"] and b["sites"][-1] == b["added"] for a, b in zip(result.pareto, result.pareto[1:]))
    from bertnpu.tune.plan import pick_row

    chosen = pick_row(result.pareto, result.fp32_validation - spec.tolerance, spec.min_cosine)[0]  # the noise rules (tests/test_stopping.py)
    assert result.recipe.activation_16bits == chosen["sites"]
    assert result.cosine_met == (chosen["validation_cosine"] >= spec.min_cosine) and result.validation_cosine == chosen["validation_cosine"]
    # the chosen recipe's numbers are those of an independent simulation
    stats = tiny_stats if not result.recipe.equivalent_transformation.enabled() else collect_transformed_stats(
        tiny_model, tiny_calib, tiny_stats, result.recipe.equivalent_transformation.enabled(), batch_size=7)
    sim = simulate(tiny_model, stats, result.recipe)
    assert evaluate_sts(sim.encoder_for(), test)["spearman"] == pytest.approx(result.test_spearman, abs=1e-6)
    assert evaluate_sts(SentenceEncoder(tiny_model, progress=False), test)["spearman"] == pytest.approx(result.fp32_test, abs=1e-9)
    for row in result.pareto[1:]:
        r = result.best_int8.with_(activation_16bits=row["sites"])
        s = simulate(tiny_model, stats if r.equivalent_transformation.enabled() else tiny_stats, r)
        assert evaluate_sts(s.encoder_for(), val)["spearman"] == pytest.approx(row["validation_spearman"], abs=1e-6)
        from bertnpu.tune.evaluate import unique_sentences

        val_sentences = unique_sentences(val)[0]
        emb, ref = s.encoder_for()(val_sentences), SentenceEncoder(tiny_model, progress=False)(val_sentences)
        want = np.mean(np.sum(emb * ref, 1) / (np.linalg.norm(emb, axis=1) * np.linalg.norm(ref, axis=1)))
        assert row["validation_cosine"] == pytest.approx(want, abs=1e-5)
    # the greedy's first pick is the site whose 16 bits give the highest proxy cosine among all sites
    first = result.pareto[1]["added"] if len(result.pareto) > 1 else None
    if first is not None:
        from bertnpu.tune.evaluate import unique_sentences

        proxy = unique_sentences(val)[0][:24]
        fp32 = SentenceEncoder(tiny_model, progress=False)(proxy)
        base = result.best_int8
        st = stats if base.equivalent_transformation.enabled() else tiny_stats
        def cos(site):
            emb = simulate(tiny_model, st, base.with_(activation_16bits=(site,))).encoder_for()(proxy)
            return cosine_rows(emb, fp32).mean()
        others = [s for s in ("layer.0.ffn.residual", "layer.1.attention.scores", "layer.2.ffn.gelu.out") if s != first]
        assert all(cos(first) >= cos(o) - 1e-9 for o in others)
    text = format_pareto(result)
    assert "profile aries" in text and "chosen" in text
    summary = result.summary()
    assert {"fp32_spearman", "spearman", "validation_spearman", "activation_16bits", "profile", "seconds"} <= set(summary)
    json.dumps(summary)
    # resume: a second plan reads every result from the cache and returns the same recipe
    lines = cache.read_text().splitlines()
    again = plan_recipe(tiny_model, tiny_calib, val, test, spec, stats=tiny_stats, cache=cache, progress=False)
    assert again.recipe == result.recipe and again.pareto == result.pareto
    assert cache.read_text().splitlines() == lines  # nothing new was computed
    # a cut last line is ignored
    cache.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:10])
    third = plan_recipe(tiny_model, tiny_calib, val, test, spec, stats=tiny_stats, cache=cache, progress=False)
    assert third.recipe == result.recipe


@pytest.mark.parametrize("kwargs, message", [
    ({"tolerance": 0}, "Tolerance 0 is outside \\(0, 1\\)"),
    ({"tolerance": 1.5}, "Tolerance 1.5 is outside \\(0, 1\\)"),
    ({"profile": "fast"}, "Unknown precision profile 'fast'"),
    ({"min_cosine": 1.0}, "Minimum cosine 1.0 is outside \\[0, 1\\)"),
    ({"min_cosine": -0.1}, "Minimum cosine -0.1 is outside"),
    ({"transforms": (("spin",),)}, "Unknown equivalent transformation 'spin'"),
    ({"transforms": (("ud",),)}, "Ud transformation is not simulated"),
    ({"candidate_roles": ("ffn.residuals",)}, "Unknown site role 'ffn.residuals' in PlanSpec.candidate_roles"),
])
def test_bad_spec(kwargs, message):
    with pytest.raises(BertnpuError, match=message):
        PlanSpec(**kwargs)


def test_cosine_floor_keeps_adding_sites(tiny_model, tiny_calib, tiny_stats, stsb_validation, stsb_test):
    """With the floor off the plan stops by a noise rule at once or after one site; with an unreachable floor it goes on to max_sites."""
    from bertnpu.tune.plan import pick_row

    common = dict(tolerance=0.5, max_sites=2, proxy_sentences=16, lazy_width=1, configs=(CFG,), transforms=(), top_configs=1)
    val, test = stsb_validation.subset(30), stsb_test.subset(30)
    off = plan_recipe(tiny_model, tiny_calib, val, test, PlanSpec(min_cosine=0.0, **common), stats=tiny_stats, progress=False)
    assert off.stop_rule in ("fp32_noise", "no_gain") and len(off.pareto) <= 2 and off.cosine_met
    assert off.pareto[0]["validation_cosine"] < 0.999  # 4-bit activations: the embeddings are off
    strict = plan_recipe(tiny_model, tiny_calib, val, test, PlanSpec(min_cosine=0.999, **common), stats=tiny_stats, progress=False)
    assert len(strict.pareto) == 3 and not strict.cosine_met and strict.stop_rule == "max_sites"
    assert strict.recipe.activation_16bits == pick_row(strict.pareto, strict.fp32_validation - 0.5, 0.999)[0]["sites"]
    assert "stopped (max_sites)" in format_pareto(strict)
    # every row carries its paired intervals against FP32 (and against the previous row)
    assert all(r["diff_to_fp32_ci"][0] <= r["diff_to_fp32"] <= r["diff_to_fp32_ci"][1] for r in strict.pareto)
    assert strict.pareto[0]["gain_ci"] is None and all(len(r["gain_ci"]) == 2 for r in strict.pareto[1:])
    s = strict.summary()
    assert s["diff_to_fp32"] == pytest.approx(strict.test_spearman - strict.fp32_test, abs=1e-15) and len(s["diff_to_fp32_ci"]) == 2


def test_layernorm_outputs_are_not_planned_by_default(tiny_model, tiny_calib, tiny_stats, stsb_validation, stsb_test):
    """A 16-bit override of LayerNormalization was seen to leave the .mxq unchanged (facts): the plan does not offer it as a lever."""
    from bertnpu.quant.sites import list_sites

    common = dict(tolerance=0.001, min_cosine=0.9999, max_sites=3, proxy_sentences=16, lazy_width=40, configs=(CFG,), transforms=(),
                  top_configs=1, full_table=True)
    val, test = stsb_validation.subset(30), stsb_test.subset(30)
    layernorms = [s.name for s in list_sites(tiny_model) if s.name.endswith("layernorm.out")]
    assert len(layernorms) == 2 * tiny_model.config.num_hidden_layers
    default = plan_recipe(tiny_model, tiny_calib, val, test, PlanSpec(**common), stats=tiny_stats, progress=False)
    assert sorted(default.not_tried) == sorted(layernorms)
    assert not set(default.pareto[-1]["sites"]) & set(layernorms) and len(default.pareto[-1]["sites"]) == 3
    assert "not tried at 16 bits: %d LayerNorm outputs" % len(layernorms) in format_pareto(default)
    residuals = plan_recipe(tiny_model, tiny_calib, val, test, PlanSpec(**{**common, "candidate_roles": ("ffn.residual",)}),
                            stats=tiny_stats, progress=False)  # a search among the FFN residual sums only (the quick run's kind)
    assert sorted(residuals.pareto[-1]["sites"]) == [f"layer.{i}.ffn.residual" for i in range(tiny_model.config.num_hidden_layers)][:3]
    allowed = plan_recipe(tiny_model, tiny_calib, val, test, PlanSpec(try_layernorm=True, **common), stats=tiny_stats, progress=False)
    assert allowed.not_tried == []
    # with the LayerNorm outputs allowed, the first step picks the best of all sites; a LayerNorm output can only win there
    first = allowed.pareto[1]["added"]
    if first not in layernorms:
        assert default.pareto[1]["added"] == first


def test_plan_cache_key_holds_the_sites_as_a_sorted_tuple_and_hashes_as_before():
    """recipe_ident keeps the recipe's tuple (sorted); the key is the one the list form gave, so earlier plan caches still serve."""
    from bertnpu.results_log import cache_key
    from bertnpu.tune.plan import PlanCache
    from bertnpu.tune.plan.cache import recipe_ident

    recipe = Recipe(activation_16bits=("layer.1.ffn.residual", "layer.0.ffn.residual"), prediction={"test_spearman": 0.8})
    ident = recipe_ident(recipe)
    assert ident["activation_16bits"] == ("layer.0.ffn.residual", "layer.1.ffn.residual")
    cache = PlanCache(None, {"model": "ab12"})
    assert cache.key("proxy", recipe) == cache.key("proxy", recipe.with_(activation_16bits=tuple(reversed(recipe.activation_16bits)), prediction={}))
    as_list = {**ident, "activation_16bits": sorted(recipe.to_dict()["activation_16bits"])}  # the earlier ident
    assert cache.key("proxy", recipe) == cache_key("proxy", {"recipe": as_list, "model": "ab12"})
