import numpy as np
import pytest
import torch

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.errors import BertnpuError
from bertnpu.tune.evaluate import evaluate_sts
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.quant.simulate import KEEP_FP32_NOTE, simulate
from bertnpu.quant.stats import collect_activation_stats
from bertnpu.quant.thresholds import clip_thresholds


@pytest.fixture(scope="module")
def default_stats(default_model, stsb_validation, tmp_path_factory):
    calib = build_calibration_set(default_model, tmp_path_factory.mktemp("c") / "calib", CalibrationSpec(count=128), pairs=stsb_validation, progress=False)
    return collect_activation_stats(default_model, calib, progress=False)


def test_quantization_off_is_fp32_exactly(tiny_model, tiny_stats, stsb_test):
    sentences = stsb_test.sentence1[:50]
    off = simulate(tiny_model, tiny_stats, QuantConfig(), quantize_weights=False, quantize_activations=False)
    sim = off.encoder_for()(sentences)
    fp32_same_path = SentenceEncoder(tiny_model, tap=lambda s, x, m: x, progress=False)(sentences)
    assert np.array_equal(sim, fp32_same_path)
    assert np.abs(sim - SentenceEncoder(tiny_model, progress=False)(sentences)).max() < 1e-5
    everything_kept = simulate(tiny_model, tiny_stats, QuantConfig(), keep_fp32=list(tiny_stats.observers), quantize_weights=False)
    assert np.array_equal(everything_kept.encoder_for()(sentences), sim)


def test_weights_are_per_channel_int8(tiny_model, tiny_stats):
    sim = simulate(tiny_model, tiny_stats, QuantConfig())
    w0 = tiny_model.bert.encoder.layer[1].intermediate.dense.weight.detach()
    wq = sim.encoder.layers[1].intermediate.dense.weight.detach()
    scales = w0.abs().amax(1, keepdim=True) / 127
    codes = wq / scales
    assert torch.allclose(codes, codes.round(), atol=1e-3) and codes.abs().max() <= 127 + 1e-3
    assert not torch.equal(w0, wq)
    assert torch.equal(tiny_model.bert.encoder.layer[1].intermediate.dense.weight.detach(), w0)  # the model is untouched


def test_activation_fake_quant_uses_the_clip_ranges(tiny_model, tiny_stats):
    cfg = QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.5)
    sim = simulate(tiny_model, tiny_stats, cfg, profile="all-int8")
    rng = clip_thresholds(tiny_stats, cfg)["layer.0.ffn.intermediate.out"]
    x = torch.linspace(-3 * rng.threshold, 3 * rng.threshold, 1001)[None, None, :].expand(1, 1, 1001)
    y = sim.tap("layer.0.ffn.intermediate.out", x, torch.ones(1, 1, dtype=torch.bool))
    assert y.abs().max().item() == pytest.approx(rng.threshold, rel=1e-6)
    assert len(torch.unique(y)) <= 255
    soft = sim.tap("layer.0.attention.softmax.out", torch.rand(1, 3, 4, 4), torch.ones(1, 4, dtype=torch.bool))
    assert soft.min() >= 0 and len(torch.unique(soft)) <= 256  # unsigned range for a never-negative site


def test_zero_point_methods_are_asymmetric(tiny_model, tiny_stats):
    cfg = QuantConfig(method=2, mode=0)
    sim = simulate(tiny_model, tiny_stats, cfg)
    obs = tiny_stats["layer.0.ffn.gelu.out"]  # GELU: min about -0.17, max large
    x = torch.linspace(obs.min, obs.max, 5000)[None, None, :]
    y = sim.tap("layer.0.ffn.gelu.out", x, torch.ones(1, 1, dtype=torch.bool))
    step = (obs.max - min(obs.min, 0)) / 255
    assert (y - x).abs().max() <= step / 2 + 1e-5


def test_output_per_channel_scales(tiny_model, tiny_stats):
    sim = simulate(tiny_model, tiny_stats, QuantConfig(method=0, output=1))
    plan = sim.tap.plans["layer.0.attention.query.out"]
    assert plan[1].shape == (36,)
    assert sim.tap.plans["layer.0.attention.residual"][1].dim() == 0


def test_output_per_channel_zero_points_match_numpy(tiny_model, tiny_stats):
    """Methods 2/3 with output 1: one scale and zero point per channel of a Linear output (was per tensor)."""
    cfg = QuantConfig(method=2, mode=0, output=1)
    sim = simulate(tiny_model, tiny_stats, cfg)
    site = "layer.0.ffn.output.out"
    obs = tiny_stats[site]
    lo_c = np.minimum(obs.channel_min.numpy(), 0.0)
    hi_c = np.maximum(obs.channel_max.numpy(), 0.0)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((2, 5, lo_c.size)) * np.maximum(hi_c - lo_c, 1e-3) * 0.7).astype(np.float32)
    y = sim.tap(site, torch.from_numpy(x), torch.ones(2, 5, dtype=torch.bool)).numpy()
    scale = np.maximum(hi_c - lo_c, 1e-12) / 255  # mode 0: no clipping, each channel its own [min, max]
    zp = np.round(-lo_c / scale)
    want = (np.clip(np.round(x / scale.astype(np.float32)) + zp, 0, 255) - zp) * scale.astype(np.float32)
    assert np.allclose(y, want, atol=1e-6 * float(np.abs(want).max()))
    assert ((np.abs(y - x) <= scale / 2 + 1e-5) | (x < lo_c) | (x > hi_c)).all()  # inside each channel's range: half a step
    assert not np.allclose(y, sim.tap.__class__(sim.ranges, cfg.with_(output=0), tiny_stats)(site, torch.from_numpy(x), None).numpy())
    assert sim.tap.plans["layer.0.attention.residual"][0] == "affine"  # not a Linear output: one range per tensor


def test_bad_requests(tiny_model, tiny_stats):
    with pytest.raises(BertnpuError, match="output=2 \\(sigmoid-based\\) is not modelled"):
        simulate(tiny_model, tiny_stats, QuantConfig(output=2))
    with pytest.raises(BertnpuError, match="Unknown site\\(s\\) layer.9.x"):
        simulate(tiny_model, tiny_stats, QuantConfig(), keep_fp32=["layer.9.x"])


def test_profiles_and_16_bit_overrides(tiny_model, tiny_stats):
    """aries: softmax at 16 bits, scores at 8; an override raises a site to 16 bits with the same clip range."""
    cfg = QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.5)
    site = "layer.0.ffn.intermediate.out"
    sim = simulate(tiny_model, tiny_stats, Recipe(calibration=cfg, activation_16bits=(site,)))
    assert sim.site_bits[site] == 16 and sim.site_bits["layer.0.attention.softmax.out"] == 16
    assert sim.site_bits["layer.0.attention.scores"] == 8 and sim.site_bits["layer.1.ffn.intermediate.out"] == 8
    t = sim.ranges[site].threshold
    x = torch.linspace(-2 * t, 2 * t, 200001)[None, None, :]
    mask = torch.ones(1, 1, dtype=torch.bool)
    y16 = sim.tap(site, x, mask)
    assert y16.abs().max().item() == pytest.approx(t, rel=1e-6)  # same range rule as 8 bits
    inside = x.abs() <= t
    assert (y16 - x)[inside].abs().max().item() <= t / 32767 / 2 * 1.01  # step of 16 bits (float32 rounding aside)
    assert len(torch.unique(y16)) > 255 * 50
    y8 = sim.tap("layer.1.ffn.intermediate.out", x, mask)
    assert len(torch.unique(y8)) <= 255
    soft = torch.rand(1, 3, 40, 40)
    assert len(torch.unique(sim.tap("layer.0.attention.softmax.out", soft, torch.ones(1, 40, dtype=torch.bool)))) > 256
    pessimistic = simulate(tiny_model, tiny_stats, cfg, profile="all-int8")
    assert set(pessimistic.site_bits.values()) == {8}
    optimistic = simulate(tiny_model, tiny_stats, cfg, profile="optimistic")
    assert {s for s, b in optimistic.site_bits.items() if b == 16} == {
        f"layer.{i}.{r}" for i in range(3) for r in ("attention.layernorm.out", "ffn.layernorm.out", "attention.residual", "ffn.residual", "ffn.gelu.out", "attention.softmax.out")}
    assert "[aries]" in sim.label() and "1 site(s) at 16 bits" in sim.label()
    assert "no device counterpart" in simulate(tiny_model, tiny_stats, cfg, keep_fp32=[site]).label() and "no device counterpart" in KEEP_FP32_NOTE


def test_16_bits_everywhere_is_close_to_fp32(tiny_model, tiny_stats, stsb_test):
    sentences = stsb_test.sentence1[:40]
    fp32 = SentenceEncoder(tiny_model, progress=False)(sentences)
    every = [s.name for s in tiny_stats.sites]
    a16 = simulate(tiny_model, tiny_stats, QuantConfig(method=0, mode=0), activation_16bits=every, quantize_weights=False).encoder_for()(sentences)
    a8 = simulate(tiny_model, tiny_stats, QuantConfig(method=0, mode=0), profile="all-int8", quantize_weights=False).encoder_for()(sentences)
    err16, err8 = np.abs(a16 - fp32).max(), np.abs(a8 - fp32).max()
    assert err16 < err8 / 10  # not 1/256: values beyond the calibration max clip at both widths


def test_unknown_16_bit_site_and_profile(tiny_model, tiny_stats):
    from bertnpu.errors import BertnpuError

    with pytest.raises(BertnpuError, match=r"Unknown site\(s\) layer.7.ffn.residual in activation_16bits"):
        simulate(tiny_model, tiny_stats, QuantConfig(), activation_16bits=["layer.7.ffn.residual"])
    with pytest.raises(BertnpuError, match="Unknown precision profile 'fast'; use one of aries, all-int8, optimistic"):
        simulate(tiny_model, tiny_stats, QuantConfig(), profile="fast")


@pytest.mark.slow
def test_16_bit_is_within_0001_of_fp32(default_model, default_stats, stsb_test):
    fp32 = evaluate_sts(SentenceEncoder(default_model, progress=False), stsb_test)["spearman"]
    int16 = evaluate_sts(simulate(default_model, default_stats, QuantConfig(bits=16)).encoder_for(), stsb_test)["spearman"]
    assert abs(int16 - fp32) <= 0.001
    int8 = evaluate_sts(simulate(default_model, default_stats, QuantConfig(method=0)).encoder_for(), stsb_test)["spearman"]
    assert int8 < fp32 - 0.01  # INT8 per-tensor really costs accuracy on MiniLM


def test_16_bit_histogram_site_uses_the_mse_search_at_16_bits(tiny_model, tiny_stats):
    """Mode 2 chooses its clip by an MSE search that depends on the step: at 16 bits it is run with 16-bit steps."""
    cfg = QuantConfig(method=0, mode=2)
    site = "layer.1.ffn.residual"
    sim = simulate(tiny_model, tiny_stats, cfg, activation_16bits=[site])
    t8 = clip_thresholds(tiny_stats, cfg)[site].threshold
    t16 = clip_thresholds(tiny_stats, cfg.with_(bits=16))[site].threshold
    assert t16 > t8  # finer steps: the search clips less
    x = torch.linspace(-2 * t16, 2 * t16, 1001)[None, None, :]
    mask = torch.ones(1, 1, dtype=torch.bool)
    assert sim.tap(site, x, mask).abs().max().item() == pytest.approx(t16, rel=1e-6)
    other = clip_thresholds(tiny_stats, cfg)["layer.0.ffn.residual"].threshold  # an 8-bit site keeps the 8-bit search
    assert sim.tap("layer.0.ffn.residual", x, mask).abs().max().item() == pytest.approx(other, rel=1e-6)


def _numpy_site_fake_quant(x: np.ndarray, plan: tuple, bits: int) -> np.ndarray:
    """The tap's definition from its plan, in float32 numpy: symmetric ``clip(round(x / s)) * s`` with
    ``s = max(t, 1e-12) / qmax``, or asymmetric with a zero point (shift, clip to ``0..2^bits-1``, unshift)."""
    if plan[0] == "affine":
        lo, hi = min(plan[1], 0.0), max(plan[2], 0.0)
        levels = 2**bits - 1
        scale = max(hi - lo, 1e-12) / levels
        zp = round(-lo / scale)
        s = np.float32(scale)
        return ((np.clip(np.round(x / s) + np.float32(zp), 0, levels) - np.float32(zp)) * s).astype(np.float32)
    threshold, unsigned = np.asarray(plan[1].numpy(), dtype=np.float32), plan[2]
    qmax = (2**bits - 1) if unsigned else 2 ** (bits - 1) - 1
    s = np.maximum(threshold, np.float32(1e-12)) / np.float32(qmax)
    return (np.clip(np.round(x / s), 0 if unsigned else -qmax, qmax) * s).astype(np.float32)


@pytest.mark.parametrize("cfg", [QuantConfig(method=0, mode=1), QuantConfig(method=1, output=1), QuantConfig(method=2, mode=0),
                                 QuantConfig(method=3, mode=2), QuantConfig(method=0, mode=2)])
def test_tap_equals_its_definition_on_every_site_and_bit_width(tiny_model, tiny_stats, cfg):
    """The tap prepares each site's scale once and caches it by (site, bits): every site at its own width,
    and after with_bits at the new width (a cache keyed by site alone would fail here), equals numpy."""
    sim = simulate(tiny_model, tiny_stats, cfg, activation_16bits=["layer.0.ffn.residual"])
    rng = np.random.default_rng(11)
    mask = torch.ones(2, 5, dtype=torch.bool)
    for round_ in range(2):  # the second round uses the prepared ops
        for site in tiny_stats.observers:
            obs = tiny_stats[site]
            width = obs.channel_absmax.numel()
            shape = (2, 3, 5, 5) if site.endswith(("scores", "softmax.out")) else (2, 5, width)
            x = (rng.standard_normal(shape) * max(obs.absmax, 1e-3) * 0.8).astype(np.float32)
            bits = sim.site_bits[site]
            plan = (sim.tap.plans16.get(site) if bits > 8 and sim.tap.plans16 else None) or sim.tap.plans[site]
            got = sim.tap(site, torch.from_numpy(x.copy()), mask).numpy()
            assert np.array_equal(got, _numpy_site_fake_quant(x, plan, bits)), (site, bits, round_)
    wide = sim.tap.with_bits({"layer.1.ffn.gelu.out": 16})
    x = (rng.standard_normal((2, 5, tiny_stats["layer.1.ffn.gelu.out"].channel_absmax.numel())) * 2).astype(np.float32)
    plan16 = sim.tap.plans16.get("layer.1.ffn.gelu.out") or sim.tap.plans["layer.1.ffn.gelu.out"]
    assert np.array_equal(wide("layer.1.ffn.gelu.out", torch.from_numpy(x), mask).numpy(), _numpy_site_fake_quant(x, plan16, 16))
    eight = sim.tap("layer.1.ffn.gelu.out", torch.from_numpy(x), mask).numpy()
    assert np.array_equal(eight, _numpy_site_fake_quant(x, sim.tap.plans["layer.1.ffn.gelu.out"], 8))
    assert not np.array_equal(eight, _numpy_site_fake_quant(x, plan16, 16))


def test_serial_fake_quant_passes_give_the_same_embeddings_and_restore_the_threads(tiny_model, tiny_stats, stsb_test, monkeypatch):
    """With the serial policy the tap runs its elementwise passes on one thread: the same numbers, bit for bit."""
    from bertnpu.quant.kernel_policy import KernelPolicy, current_policy, using_policy

    sentences = stsb_test.sentence1[:40]
    threads = torch.get_num_threads()
    out = {}
    for serial in (False, True):
        policy = using_policy(KernelPolicy(serial_fake_quant=serial))
        policy.__enter__()
        seen = []
        sim = simulate(tiny_model, tiny_stats, QuantConfig(method=2, output=1))
        tap = sim.tap

        def spy(site, x, mask):
            y = tap(site, x, mask)
            seen.append(torch.get_num_threads())
            return y

        from bertnpu.model.sentence_encoder import SentenceEncoder as _SE
        out[serial] = _SE(tiny_model, tap=spy, encoder=sim.encoder, progress=False)(sentences)
        policy.__exit__(None, None, None)
        assert set(seen) == {threads}  # restored after every site
    assert np.array_equal(out[False], out[True])
    assert current_policy().serial_fake_quant is False  # the policy is restored after the block
