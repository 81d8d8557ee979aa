"""LayerCachedEncoder: embeddings from kept layer inputs equal, bit for bit, a whole encode in the same batches."""

import numpy as np

from bertnpu.quant import int_gemm
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from bertnpu.quant.simulate import simulate
from bertnpu.quant.transforms import collect_transformed_stats
from bertnpu.tune.plan import LayerCachedEncoder, site_start
from bertnpu.tune.plan.layer_cache import MappedCodes

SITES = ("embeddings.out", "layer.0.ffn.residual", "layer.1.attention.layernorm.out", "layer.2.ffn.layernorm.out", "pooler.out")


def _check(model, stats, recipe, sentences):
    """Every start layer: the reused run equals an independent whole encode (same batch size) exactly."""
    base = simulate(model, stats, recipe)
    cached = LayerCachedEncoder(model, sentences, batch_size=8)
    cached.set_base(base.encoder, base.tap)
    assert np.array_equal(cached.advance(base.tap), base.encoder_for(batch_size=8)(sentences))
    # the kept inputs are the quantized codes (int8/uint8, or int16 for a zero point's wider range), no float32
    values = sum(batch.input_ids.numel() for batch in cached.batches) * model.config.hidden_size * (model.config.num_hidden_layers + 1)
    assert values <= cached.kept_bytes() <= 2 * values
    for site in SITES:
        variant = simulate(model, stats, recipe.with_(activation_16bits=(site,)), encoder=base.encoder)
        want = variant.encoder_for(batch_size=8)(sentences)
        assert np.array_equal(cached.embed(variant.tap, site_start(site, model.config.num_hidden_layers)), want), site
    # advancing the base to a 16-bit variant keeps later reuse exact
    site = "layer.1.ffn.residual"
    variant = simulate(model, stats, recipe.with_(activation_16bits=(site,)), encoder=base.encoder)
    assert np.array_equal(cached.advance(variant.tap, site_start(site, 3)), variant.encoder_for(batch_size=8)(sentences))
    later = simulate(model, stats, recipe.with_(activation_16bits=(site, "layer.2.ffn.residual")), encoder=base.encoder)
    assert np.array_equal(cached.embed(later.tap, 2), later.encoder_for(batch_size=8)(sentences))
    return cached


def test_reuse_is_bit_identical_symmetric(tiny_model, tiny_stats, stsb_test):
    _check(tiny_model, tiny_stats, Recipe(calibration=QuantConfig(method=0, mode=1, percentile=0.999, topk_ratio=0.01)), stsb_test.sentence1[:30])


def test_reuse_is_bit_identical_zero_point_per_channel(tiny_model, tiny_stats, stsb_test):
    _check(tiny_model, tiny_stats, Recipe(calibration=QuantConfig(method=3, output=1, mode=0)), stsb_test.sentence2[:30])


def test_reuse_is_bit_identical_int4(tiny_model, tiny_stats, stsb_test):
    _check(tiny_model, tiny_stats, Recipe(calibration=QuantConfig(method=1, mode=2, bits=4)), stsb_test.sentence1[30:60])


def test_reuse_is_bit_identical_norm_conv(tiny_model, tiny_stats, tiny_calib, stsb_test, int_mm_calls):
    """NormConv's mapped sites are kept as the codes of x̂ and rebuilt through the site map; the folded Linears keep their integer GEMM."""
    recipe = Recipe(equivalent_transformation=EquivalentTransformations(norm_conv=True, qk=True))
    stats = collect_transformed_stats(tiny_model, tiny_calib, tiny_stats, recipe.equivalent_transformation)
    sentences = stsb_test.sentence1[60:90]
    cached = _check(tiny_model, stats, recipe, sentences)
    assert any(isinstance(slot, MappedCodes) for batch in cached.layer_inputs for slot in batch)
    if not int_gemm.enabled():
        return
    # a rerun from layer 1 under a separately built tap (equal scales, other objects) keeps every Linear an integer GEMM
    variant = simulate(tiny_model, stats, recipe.with_(activation_16bits=("layer.2.ffn.residual",)), encoder=cached.encoder)
    calls = int_mm_calls()
    cached.embed(variant.tap, 1)
    layers = tiny_model.config.num_hidden_layers
    assert calls["n"] == len(cached.batches) * (6 * (layers - 1) + 1)
