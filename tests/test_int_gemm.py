"""The integer GEMM of simulated Linears: exact int sums (numpy int64 reference), agreement with the float path, fallbacks."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bertnpu.quant import int_gemm
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.fake_quant import affine_params, fake_quant_affine_with, fake_quant_with_scale, weight_codes_per_channel
from bertnpu.quant.int_gemm import IntInput, IntWeight, int_linear, to_int8
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from bertnpu.quant.simulate import simulate
from bertnpu.quant.transforms import collect_transformed_stats

pytestmark = pytest.mark.skipif(not int_gemm.enabled(), reason="torch._int_mm is missing or inexact on this machine (the float path is used)")


def _linear(seed: int, k: int = 37, n: int = 11):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, k, generator=g) * 0.3, torch.randn(n, generator=g)


@pytest.mark.parametrize("kind", ["signed", "unsigned", "affine"])
def test_int_linear_is_the_exact_integer_sum(kind):
    w, bias = _linear(1)
    codes_w, scale_w = weight_codes_per_channel(w)
    x = torch.randn(2, 5, 37, generator=torch.Generator().manual_seed(2)) * 2 + (1.5 if kind != "signed" else 0.0)
    if kind == "signed":
        scale = torch.tensor(3.0 / 127)
        x_hat, spec = fake_quant_with_scale(x, scale, -127, 127), IntInput.of(scale, -127, 127)
    elif kind == "unsigned":
        scale = torch.tensor(6.0 / 255)
        x_hat, spec = fake_quant_with_scale(x.clamp(min=0), scale, 0, 255), IntInput.of(scale, 0, 255)
    else:
        scale, zp, levels = affine_params(-1.2, 5.0)
        x_hat, spec = fake_quant_affine_with(x, scale, zp, levels), IntInput.of(scale, -zp, levels - zp)
    expected_offset = {"signed": 0, "unsigned": 128, "affine": 128 - zp if kind == "affine" else None}[kind]
    assert spec.offset == expected_offset
    codes = to_int8(x_hat, spec)
    q = np.rint(x_hat.double().numpy() / float(scale)).astype(np.int64)  # the codes, independently
    assert np.array_equal(codes.numpy().astype(np.int64) + spec.offset, q)
    got = int_linear(codes, spec, IntWeight.from_quantized(codes_w, scale_w), bias).double().numpy()
    exact = (q @ codes_w.numpy().astype(np.int64).T) * float(scale) * scale_w.double().numpy().T + bias.double().numpy()
    assert got.shape == (2, 5, 11)
    np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-6 * np.abs(exact).max())
    # the float fake-quant path computes the same sum with FP32 rounding
    float_path = F.linear(x_hat, codes_w * scale_w, bias).double().numpy()
    np.testing.assert_allclose(float_path, exact, rtol=1e-5, atol=1e-5 * np.abs(exact).max())


def test_codes_of_a_tensor_beyond_the_range_are_clamped_not_wrapped():
    spec = IntInput.of(torch.tensor(0.01), -127, 127)
    codes = to_int8(torch.tensor([5.0, -5.0, 0.5]), spec)  # 500 and -500 steps: int8 would wrap them
    assert codes.tolist() == [127, -127, 50]


def test_int_input_refuses_what_int8_cannot_hold():
    assert IntInput.of(torch.tensor(0.1), -32767, 32767) is None  # 16 bits
    assert IntInput.of(torch.full((4,), 0.1), -127, 127) is None  # one scale per channel
    assert IntInput.of(0.1, -200, 55).offset == -72  # affine, zero point 200: codes -200..55 stored as -128..127


def _site_outputs(sim, model, sentences) -> dict:
    enc = sim.encoder_for()
    batch = enc.batches(sentences)[0]
    out = {}

    class Recording:  # the simulation's tap, recording what each site returns
        def __call__(self, site, x, mask):
            out[site] = sim.tap(site, x, mask).clone()
            return out[site]

        def int_input(self, site):
            return sim.tap.int_input(site)

    with torch.inference_mode():
        sim.encoder(enc.embedding(batch.input_ids, batch.token_type_ids), batch.attention_mask, tap=Recording())
    return out


@pytest.mark.parametrize("cfg", [QuantConfig(), QuantConfig(method=2, output=1, mode=2)])
def test_simulated_linears_take_the_integer_path_and_match_the_float_path(tiny_model, tiny_stats, stsb_test, int_mm_calls, cfg):
    sim = simulate(tiny_model, tiny_stats, Recipe(calibration=cfg))
    sentences = stsb_test.sentence1[:6]
    calls = int_mm_calls()
    with_ints = _site_outputs(sim, tiny_model, sentences)
    layers = tiny_model.config.num_hidden_layers
    assert calls["n"] == 6 * layers + 1  # every Linear of every layer, and the pooler
    floats = _site_outputs(simulate(tiny_model, tiny_stats, Recipe(calibration=cfg), integer_gemm=False), tiny_model, sentences)
    assert calls["n"] == 6 * layers + 1  # the float path never calls it
    # the first Linear outputs (before any rounding decision could differ) agree to float precision
    for site in ("layer.0.attention.query.out", "layer.0.attention.value.out"):
        pre = tiny_stats[site]
        assert torch.allclose(with_ints[site], floats[site], atol=1e-5 * max(abs(pre.min), abs(pre.max)))


def test_16_bit_and_fp32_inputs_keep_the_float_path(tiny_model, tiny_stats, stsb_test, int_mm_calls):
    sentences = stsb_test.sentence1[:6]
    layers = tiny_model.config.num_hidden_layers
    calls = int_mm_calls()
    # a 16-bit GELU output feeds layer 0's FFN output Linear; a kept-FP32 context feeds its attention output Linear
    sim = simulate(tiny_model, tiny_stats, Recipe(activation_16bits=("layer.0.ffn.gelu.out",)), keep_fp32=("layer.1.attention.output.in",))
    _site_outputs(sim, tiny_model, sentences)
    assert calls["n"] == 6 * layers + 1 - 2


def test_norm_conv_folded_linears_take_the_codes_of_x_hat(tiny_model, tiny_stats, tiny_calib, stsb_test, int_mm_calls):
    """NormConv: the NPU quantizes x̂ and holds Q(W diag(gamma)); the folded Linear's integer GEMM gives
    Q(W diag(gamma)) x̂ + W beta + b (float64 reference from the original weights), close to the float path."""
    sentences = stsb_test.sentence1[:6]
    layers = tiny_model.config.num_hidden_layers
    recipe = Recipe(equivalent_transformation=EquivalentTransformations(norm_conv=True))
    stats = collect_transformed_stats(tiny_model, tiny_calib, tiny_stats, recipe.equivalent_transformation)
    sim = simulate(tiny_model, stats, recipe)
    assert set(sim.encoder.folded_inputs) <= set(sim.encoder.int_weights)
    # every Linear that reads a mapped site (and so takes x̂'s codes) is folded
    for site in sim.encoder.site_maps:
        i, role = int(site.split(".")[1]), site.split(".", 2)[2]
        readers = [(i, "intermediate.dense")] if role == "attention.layernorm.out" else [(i + 1, f"attention.self.{p}") for p in ("query", "key", "value")]
        assert set(readers) <= set(sim.encoder.folded_inputs), site
    enc = sim.encoder_for()
    batch = enc.batches(sentences)[0]
    seen = {}

    class Recording:  # keeps what the tap returns (no copy: a copy would drop the codes the tap holds)
        def __call__(self, site, x, mask):
            seen[site, "in"] = x
            seen[site] = sim.tap(site, x, mask)
            return seen[site]

        def int_input(self, site):
            return sim.tap.int_input(site)

    calls = int_mm_calls()
    with torch.inference_mode():
        sim.encoder(enc.embedding(batch.input_ids, batch.token_type_ids), batch.attention_mask, tap=Recording())
    assert calls["n"] == 6 * layers + 1  # the folded Linears too
    layer = tiny_model.bert.encoder.layer[1]  # the original weights, untouched by the simulation's private copy
    ln = layer.attention.output.LayerNorm
    w, gamma = layer.intermediate.dense.weight.detach(), ln.weight.detach()
    codes_w, scale_w = weight_codes_per_channel(w * gamma[None, :])  # the weight the NPU holds, quantized per output channel
    w, b, beta = w.double(), layer.intermediate.dense.bias.detach().double(), ln.bias.detach().double()
    x_hat = seen["layer.1.attention.layernorm.out"].double()  # what the tap quantized: x̂, not gamma * x̂ + beta
    expected = (x_hat @ (codes_w.double() * scale_w.double()).T + w @ beta + b).numpy()
    got = seen["layer.1.ffn.intermediate.out", "in"].double().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
    # the float path computes the same function with float rounding: whole encodes agree closely
    ints = sim.encoder_for()(sentences)
    floats = simulate(tiny_model, stats, recipe, integer_gemm=False).encoder_for()(sentences)
    np.testing.assert_allclose(ints, floats, atol=1e-3 * np.abs(floats).max())


def test_the_process_policy_switches_the_float_path_on():
    from bertnpu.quant.kernel_policy import KernelPolicy, integer_gemm_from_environment, using_policy

    with using_policy(KernelPolicy(integer_gemm=integer_gemm_from_environment({"BERTNPU_INTEGER_GEMM": "0"}))):
        assert int_gemm.enabled() is False and int_gemm.kernel() is None
    with using_policy(KernelPolicy(integer_gemm=integer_gemm_from_environment({"BERTNPU_INTEGER_GEMM": "1"}))):
        assert int_gemm.enabled() is True and int_gemm.kernel() is int_gemm.INT_GEMM


def test_per_site_errors_and_sensitivity_run_the_simulated_encoder_as_it_is(tiny_model, tiny_stats, stsb_test, int_mm_calls):
    """The SQNR forward and the sensitivity pass wrap the tap; their embeddings are the simulation's own (integer GEMMs included)."""
    from bertnpu.tune.error_analysis import SiteReference, site_sqnr, site_sensitivity

    sim = simulate(tiny_model, tiny_stats, Recipe())
    sentences = list(dict.fromkeys(stsb_test.sentence1[:40]))
    own = sim.encoder_for(batch_size=32)(sentences)
    got = np.zeros_like(own)
    calls = int_mm_calls()
    site_sqnr(tiny_model, sim, sentences, reference=SiteReference(tiny_model, sentences), embeddings=got)
    assert calls["n"] > 0 and np.array_equal(got, own)
    pairs = stsb_test.subset(20)
    rows = site_sensitivity(tiny_model, tiny_stats, QuantConfig(), pairs, sites=["layer.1.ffn.gelu.out"], progress=False)
    kept = simulate(tiny_model, tiny_stats, Recipe(), keep_fp32=["layer.1.ffn.gelu.out"])
    from bertnpu.tune.evaluate import evaluate_sts

    fp32 = evaluate_sts(simulate(tiny_model, tiny_stats, Recipe(), quantize_weights=False, quantize_activations=False).encoder_for(), pairs)["spearman"]
    assert rows[0]["all_but_delta"] == evaluate_sts(kept.encoder_for(), pairs)["spearman"] - fp32


@pytest.mark.parametrize("cfg", [QuantConfig(), QuantConfig(method=2, mode=2), QuantConfig(method=3, output=1, mode=0)])
def test_codes_the_tap_hands_to_the_linears_give_the_embeddings_of_dividing_again(tiny_model, tiny_stats, stsb_test, monkeypatch, int_mm_calls, cfg):
    from bertnpu.model.npu_part import with_int_inputs
    from bertnpu.model.sentence_encoder import SentenceEncoder

    sim = simulate(tiny_model, tiny_stats, Recipe(calibration=cfg))
    sentences = stsb_test.sentence1[:12]  # one batch
    divided = {"n": 0}
    real = int_gemm.quantize_codes

    def counting(*args):
        divided["n"] += 1
        return real(*args)

    monkeypatch.setattr(int_gemm, "quantize_codes", counting)
    calls = int_mm_calls()
    handed = sim.encoder_for()(sentences)
    layers = tiny_model.config.num_hidden_layers
    assert calls["n"] == 6 * layers + 1  # every Linear still an integer GEMM
    assert divided["n"] == 1  # only the pooler's input, a slice of the last hidden state, is divided again
    # a wrapper returning a fresh copy carries no codes: every Linear input is divided again, as before the hand-off
    copying = with_int_inputs(lambda site, x, mask: sim.tap(site, x, mask).clone(), sim.tap.int_input)
    again = SentenceEncoder(tiny_model, tap=copying, encoder=sim.encoder, progress=False)(sentences)
    assert divided["n"] == 1 + 4 * layers + 1
    np.testing.assert_array_equal(handed, again)


def test_the_tap_holds_codes_for_exactly_the_sites_whose_codes_the_linears_ask_for(tiny_model, tiny_stats, stsb_test):
    from bertnpu.model.npu_part import with_int_inputs
    from bertnpu.quant.precision import site_role
    from bertnpu.quant.sites import GEMM_INPUT_ROLES

    sim = simulate(tiny_model, tiny_stats, Recipe())
    asked, holding = set(), set()

    def ask(site):
        asked.add(site_role(site))
        return sim.tap.int_input(site)

    def tap(site, x, mask):
        y = sim.tap(site, x, mask)
        if getattr(y, int_gemm._HELD, None) is not None:
            holding.add(site_role(site))
        return y

    enc = sim.encoder_for()
    batch = enc.batches(stsb_test.sentence1[:4])[0]
    with torch.inference_mode():
        sim.encoder(enc.embedding(batch.input_ids, batch.token_type_ids), batch.attention_mask, tap=with_int_inputs(tap, ask))
    assert asked == holding == set(GEMM_INPUT_ROLES)


def test_held_codes_are_dropped_when_the_tensor_changes_in_place():
    spec = IntInput.of(torch.tensor(0.5), -127, 127)
    codes = torch.tensor([1.0, -3.0, 4.0])
    y = int_gemm.hold_codes(codes.clone().mul_(spec.scale), int_gemm.int8_codes(codes, spec), spec)
    assert to_int8(y, spec).tolist() == [1, -3, 4]
    y.mul_(2)  # no longer the tap's output: divided again
    assert to_int8(y, spec).tolist() == [2, -6, 8]
    other = IntInput.of(torch.tensor(0.5), -127, 127)  # another scale object: not the tap's mapping
    assert to_int8(int_gemm.hold_codes(codes * spec.scale, torch.zeros(3, dtype=torch.int8), spec), other).tolist() == [1, -3, 4]
