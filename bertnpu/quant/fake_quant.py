"""Fake quantization: pure tensor functions (quantize, then dequantize) used by the simulator.

Each function allocates one output tensor and works on it in place (divide, round, clamp,
multiply), so a call makes one pass of temporaries instead of four. The arithmetic is the same
sequence as ``clamp(round(x / scale), qmin, qmax) * scale``, so the results are bit-identical to
the unfused form (``tests/test_fake_quant.py`` checks it against numpy). torch's fused
``fake_quantize_per_tensor_affine`` is not used: it multiplies by ``1 / scale`` (so it differs
in the last bit at rounding ties) and, on CPU, measured slower here than this in-place chain
(it also writes a gradient mask).
"""

from __future__ import annotations

import torch


def qmax_symmetric(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def symmetric_scale(threshold: torch.Tensor | float, bits: int = 8, unsigned: bool = False, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Scale ``threshold / qmax`` of symmetric (or unsigned ``[0, threshold]``) quantization, as a tensor of ``dtype``."""
    qmax = (2**bits - 1) if unsigned else qmax_symmetric(bits)
    return torch.as_tensor(threshold, dtype=dtype).clamp(min=1e-12) / qmax


def fake_quant_symmetric(x: torch.Tensor, threshold: torch.Tensor | float, bits: int = 8, unsigned: bool = False) -> torch.Tensor:
    """Symmetric fake quantization with scale ``threshold / qmax``; ``threshold`` broadcasts over the last dim.

    ``unsigned`` uses ``[0, threshold]`` with ``2^bits - 1`` steps (for sites that are never negative,
    such as softmax outputs). Values beyond the threshold are clipped. ``x`` is not modified.

    Example:
        >>> fake_quant_symmetric(torch.tensor([0.3, -2.0, 5.0]), 2.54, bits=8)
        tensor([ 0.3000, -2.0000,  2.5400])
    """
    qmax = (2**bits - 1) if unsigned else qmax_symmetric(bits)
    scale = symmetric_scale(threshold, bits, unsigned, x.dtype)
    return fake_quant_with_scale(x, scale, 0 if unsigned else -qmax, qmax)


def quantize_codes(x: torch.Tensor, scale: torch.Tensor | float, qmin, qmax) -> torch.Tensor:
    """``clamp(round(x / scale), qmin, qmax)``: the integer codes (as floats) with one allocation; every quantizer here starts with it."""
    y = torch.div(x, scale)
    y.round_()
    return y.clamp_(qmin, qmax)


def fake_quant_with_scale(x: torch.Tensor, scale: torch.Tensor | float, qmin: int, qmax: int) -> torch.Tensor:
    """``clamp(round(x / scale), qmin, qmax) * scale`` with one allocation (``scale`` precomputed, broadcasting)."""
    return quantize_codes(x, scale, qmin, qmax).mul_(scale)


def affine_params(lo: float, hi: float, bits: int = 8) -> tuple[float, int, int]:
    """``(scale, zero_point, levels)`` of asymmetric quantization of ``[lo, hi]`` (widened to include 0) onto ``0..levels``."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    levels = 2**bits - 1
    scale = max(hi - lo, 1e-12) / levels
    return scale, round(-lo / scale), levels


def fake_quant_affine(x: torch.Tensor, lo: float, hi: float, bits: int = 8) -> torch.Tensor:
    """Asymmetric (zero-point) fake quantization of ``[lo, hi]`` (widened to include 0) onto ``0..2^bits-1``."""
    return fake_quant_affine_with(x, *affine_params(lo, hi, bits))


def fake_quant_affine_with(x: torch.Tensor, scale: float, zero_point: int, levels: int) -> torch.Tensor:
    """``(clamp(round(x / scale) + zp, 0, levels) - zp) * scale``, computed as ``clamp(round(x / scale), -zp, levels - zp) * scale``.

    The two are equal bit for bit: ``round`` gives an integer, and adding then removing the
    integer ``zp`` is exact below 2^24; a rounded value beyond that is clamped to the same
    bound either way (``levels < 2^24``). So the zero point costs no extra pass.
    """
    return quantize_codes(x, scale, -zero_point, levels - zero_point).mul_(scale)


def weight_codes_per_channel(weight: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer codes (float, in ``[-qmax, qmax]``) and per-row scales ``[out, 1]`` of a Linear weight ``[out, in]`` (scale = row abs-max / qmax)."""
    qmax = qmax_symmetric(bits)
    scale = symmetric_scale(weight.abs().amax(1, keepdim=True), bits, dtype=weight.dtype)
    return quantize_codes(weight, scale, -qmax, qmax), scale


def quantize_weight_per_channel(weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Symmetric per-output-channel fake quantization of a Linear weight ``[out, in]``: codes times scales of :func:`weight_codes_per_channel`."""
    codes, scale = weight_codes_per_channel(weight, bits)
    return codes * scale


def affine_channel_params(lo: torch.Tensor, hi: torch.Tensor, bits: int = 8) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-channel ``(scale, zero_point, levels)``: :func:`affine_params` of each channel's ``[lo_c, hi_c]`` (float32 tensors)."""
    lo = torch.as_tensor(lo, dtype=torch.float64).clamp(max=0.0)
    hi = torch.as_tensor(hi, dtype=torch.float64).clamp(min=0.0)
    levels = 2**bits - 1
    scale = (hi - lo).clamp(min=1e-12) / levels
    return scale.float(), torch.round(-lo / scale).float(), levels
