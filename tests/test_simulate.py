import numpy as np
import pytest
import torch

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.errors import BertnpuError
from bertnpu.tune.evaluate import evaluate_sts
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.simulate import simulate_int8
from bertnpu.quant.stats import collect_activation_stats
from bertnpu.quant.thresholds import clip_thresholds


@pytest.fixture(scope="module")
def default_stats(default_model, stsb_validation, tmp_path_factory):
    calib = build_calibration_set(default_model, tmp_path_factory.mktemp("c") / "calib", CalibrationSpec(count=128), pairs=stsb_validation, progress=False)
    return collect_activation_stats(default_model, calib, progress=False)


def test_quantization_off_is_fp32_exactly(tiny_model, tiny_stats, stsb_test):
    sentences = stsb_test.sentence1[:50]
    off = simulate_int8(tiny_model, tiny_stats, QuantConfig(), quantize_weights=False, quantize_activations=False)
    sim = off.encoder_for()(sentences)
    fp32_same_path = SentenceEncoder(tiny_model, tap=lambda s, x, m: x, progress=False)(sentences)
    assert np.array_equal(sim, fp32_same_path)
    assert np.abs(sim - SentenceEncoder(tiny_model, progress=False)(sentences)).max() < 1e-5
    everything_kept = simulate_int8(tiny_model, tiny_stats, QuantConfig(), keep_fp32=list(tiny_stats.observers), quantize_weights=False)
    assert np.array_equal(everything_kept.encoder_for()(sentences), sim)


def test_weights_are_per_channel_int8(tiny_model, tiny_stats):
    sim = simulate_int8(tiny_model, tiny_stats, QuantConfig())
    w0 = tiny_model.bert.encoder.layer[1].intermediate.dense.weight.detach()
    wq = sim.encoder.layers[1].intermediate.dense.weight.detach()
    scales = w0.abs().amax(1, keepdim=True) / 127
    codes = wq / scales
    assert torch.allclose(codes, codes.round(), atol=1e-3) and codes.abs().max() <= 127 + 1e-3
    assert not torch.equal(w0, wq)
    assert torch.equal(tiny_model.bert.encoder.layer[1].intermediate.dense.weight.detach(), w0)  # the model is untouched


def test_activation_fake_quant_uses_the_clip_ranges(tiny_model, tiny_stats):
    cfg = QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.5)
    sim = simulate_int8(tiny_model, tiny_stats, cfg)
    rng = clip_thresholds(tiny_stats, cfg)["layer.0.ffn.intermediate.out"]
    x = torch.linspace(-3 * rng.threshold, 3 * rng.threshold, 1001)[None, None, :].expand(1, 1, 1001)
    y = sim.tap("layer.0.ffn.intermediate.out", x, torch.ones(1, 1, dtype=torch.bool))
    assert y.abs().max().item() == pytest.approx(rng.threshold, rel=1e-6)
    assert len(torch.unique(y)) <= 255
    soft = sim.tap("layer.0.attention.softmax.out", torch.rand(1, 3, 4, 4), torch.ones(1, 4, dtype=torch.bool))
    assert soft.min() >= 0 and len(torch.unique(soft)) <= 256  # unsigned range for a never-negative site


def test_zero_point_methods_are_asymmetric(tiny_model, tiny_stats):
    cfg = QuantConfig(method=2, mode=0)
    sim = simulate_int8(tiny_model, tiny_stats, cfg)
    obs = tiny_stats["layer.0.ffn.gelu.out"]  # GELU: min about -0.17, max large
    x = torch.linspace(obs.min, obs.max, 5000)[None, None, :]
    y = sim.tap("layer.0.ffn.gelu.out", x, torch.ones(1, 1, dtype=torch.bool))
    step = (obs.max - min(obs.min, 0)) / 255
    assert (y - x).abs().max() <= step / 2 + 1e-5


def test_output_per_channel_scales(tiny_model, tiny_stats):
    sim = simulate_int8(tiny_model, tiny_stats, QuantConfig(method=0, output=1))
    plan = sim.tap.plans["layer.0.attention.query.out"]
    assert plan[1].shape == (36,)
    assert sim.tap.plans["layer.0.attention.residual"][1].dim() == 0


def test_bad_requests(tiny_model, tiny_stats):
    with pytest.raises(BertnpuError, match="output=2 \\(sigmoid-based\\) is not modelled"):
        simulate_int8(tiny_model, tiny_stats, QuantConfig(output=2))
    with pytest.raises(BertnpuError, match="Unknown site\\(s\\) layer.9.x"):
        simulate_int8(tiny_model, tiny_stats, QuantConfig(), keep_fp32=["layer.9.x"])


@pytest.mark.slow
def test_16_bit_is_within_0001_of_fp32(default_model, default_stats, stsb_test):
    fp32 = evaluate_sts(SentenceEncoder(default_model, progress=False), stsb_test)["spearman"]
    int16 = evaluate_sts(simulate_int8(default_model, default_stats, QuantConfig(bits=16)).encoder_for(), stsb_test)["spearman"]
    assert abs(int16 - fp32) <= 0.001
    int8 = evaluate_sts(simulate_int8(default_model, default_stats, QuantConfig(method=0)).encoder_for(), stsb_test)["spearman"]
    assert int8 < fp32 - 0.01  # INT8 per-tensor really costs accuracy on MiniLM
