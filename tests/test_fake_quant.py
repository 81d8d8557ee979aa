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
