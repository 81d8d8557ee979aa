import numpy as np
import torch

from bertnpu.quant.fake_quant import fake_quant_affine, fake_quant_symmetric, quantize_weight_per_channel


def test_symmetric_matches_torch_kernel_and_numpy():
    x = torch.randn(1000) * 3
    t = 2.5
    scale = t / 127
    ref = torch.fake_quantize_per_tensor_affine(x, scale, 0, -127, 127)
    ours = fake_quant_symmetric(x, t, 8)
    assert torch.allclose(ours, ref, atol=1e-6)
    xn = x.numpy().astype(np.float64)
    numpy_ref = np.clip(np.round(xn / scale), -127, 127) * scale
    assert np.abs(ours.numpy() - numpy_ref).max() < 1e-5


def test_unsigned_range_for_non_negative_sites():
    x = torch.rand(500)
    ours = fake_quant_symmetric(x, 1.0, 8, unsigned=True)
    ref = torch.fake_quantize_per_tensor_affine(x, 1.0 / 255, 0, 0, 255)
    assert torch.allclose(ours, ref, atol=1e-7)


def test_affine_matches_torch_kernel():
    x = torch.randn(1000) * 2 + 1
    lo, hi = -1.5, 4.0
    scale = (hi - lo) / 255
    zp = round(-lo / scale)
    ref = torch.fake_quantize_per_tensor_affine(x, scale, zp, 0, 255)
    assert torch.allclose(fake_quant_affine(x, lo, hi, 8), ref, atol=1e-6)


def test_weight_per_channel_matches_torch_kernel():
    w = torch.randn(7, 13)
    scales = w.abs().amax(1) / 127
    ref = torch.fake_quantize_per_channel_affine(w, scales, torch.zeros(7, dtype=torch.int32), 0, -127, 127)
    assert torch.allclose(quantize_weight_per_channel(w, 8), ref, atol=1e-6)
    assert len(torch.unique(quantize_weight_per_channel(w, 4)[0])) <= 15


def _numpy_fake_quant(x: np.ndarray, scale, qmin: int, qmax: int, zero_point: int = 0) -> np.ndarray:
    """Plain float32 numpy: divide, round half to even, shift, clip, unshift, multiply."""
    scale = np.asarray(scale, dtype=np.float32)
    q = np.clip(np.round(x / scale) + np.float32(zero_point), qmin, qmax)
    return ((q - np.float32(zero_point)) * scale).astype(np.float32)


def test_fused_kernels_are_bit_identical_to_numpy_and_leave_the_input_alone():
    rng = np.random.default_rng(3)
    x = (rng.standard_normal((4, 9, 33)) * 3).astype(np.float32)
    x[0, 0, :5] = [0.5, -0.5, 1.5, 2.5, 1e6]  # ties and a far outlier
    xt = torch.from_numpy(x.copy())
    for bits, unsigned in ((8, False), (8, True), (16, False), (4, False)):
        qmax = (2**bits - 1) if unsigned else 2 ** (bits - 1) - 1
        scale = np.float32(2.5) / np.float32(qmax)
        ref = _numpy_fake_quant(x, scale, 0 if unsigned else -qmax, qmax)
        assert np.array_equal(fake_quant_symmetric(xt, 2.5, bits, unsigned).numpy(), ref), (bits, unsigned)
    per_channel = (rng.random(33) * 3 + 0.1).astype(np.float32)
    ref = _numpy_fake_quant(x, per_channel / np.float32(127), -127, 127)
    assert np.array_equal(fake_quant_symmetric(xt, torch.from_numpy(per_channel), 8).numpy(), ref)
    lo, hi = -1.25, 4.0
    scale = (hi - lo) / 255
    zp = round(-lo / scale)
    ref = _numpy_fake_quant(x, np.float32(scale), 0, 255, zp)
    assert np.array_equal(fake_quant_affine(xt, lo, hi, 8).numpy(), ref)
    assert np.array_equal(xt.numpy(), x)  # the input is never written


def test_fake_quant_with_precomputed_scale_equals_threshold_form():
    from bertnpu.quant.fake_quant import fake_quant_with_scale, symmetric_scale

    x = torch.randn(6, 10, 16) * 2
    t = torch.rand(16) + 0.5
    assert torch.equal(fake_quant_with_scale(x, symmetric_scale(t, 8), -127, 127), fake_quant_symmetric(x, t, 8))
    assert torch.equal(fake_quant_with_scale(x, symmetric_scale(1.7, 16, True), 0, 65535), fake_quant_symmetric(x, 1.7, 16, True))


def test_affine_without_the_zero_point_passes_equals_the_shift_clip_unshift_definition():
    """fake_quant_affine clamps round(x / s) to [-zp, levels - zp] instead of shifting by zp, clipping to
    [0, levels] and shifting back: equal bit for bit, also at ties, far outliers, infinities and NaN."""
    rng = np.random.default_rng(5)
    x = (rng.standard_normal(20000) * 4).astype(np.float32)
    x[:10] = [0.0, -0.0, 1e30, -1e30, np.inf, -np.inf, 3e7, -3e7, 1e-30, np.nan]
    for lo, hi, bits in ((-1.25, 4.0, 8), (-0.17, 9.5, 8), (0.3, 2.0, 8), (-6.0, -0.5, 8), (-1.25, 4.0, 16), (-1.25, 4.0, 4), (-3.0, 1e-6, 8)):
        lo_, hi_ = min(lo, 0.0), max(hi, 0.0)
        levels = 2**bits - 1
        scale = max(hi_ - lo_, 1e-12) / levels
        zp = round(-lo_ / scale)
        # ties of round-half-to-even on the grid: x / scale = k + 0.5 exactly (in float32)
        k = np.arange(-40, 40, dtype=np.float32)
        x[10:90] = (k + np.float32(0.5)) * np.float32(scale)
        ref = _numpy_fake_quant(x, np.float32(scale), 0, levels, zp)
        got = fake_quant_affine(torch.from_numpy(x), lo, hi, bits).numpy()
        assert np.array_equal(got, ref, equal_nan=True), (lo, hi, bits)
