"""Fake quantization: pure tensor functions (quantize, then dequantize) used by the INT8 simulator."""

from __future__ import annotations

import torch


def qmax_symmetric(bits: int) -> int:
    return 2 ** (bits - 1) - 1


def fake_quant_symmetric(x: torch.Tensor, threshold: torch.Tensor | float, bits: int = 8, unsigned: bool = False) -> torch.Tensor:
    """Symmetric fake quantization with scale ``threshold / qmax``; ``threshold`` broadcasts over the last dim.

    ``unsigned`` uses ``[0, threshold]`` with ``2^bits - 1`` steps (for sites that are never negative,
    such as softmax outputs). Values beyond the threshold are clipped.
    """
    qmax = (2**bits - 1) if unsigned else qmax_symmetric(bits)
    qmin = 0 if unsigned else -qmax
    scale = torch.as_tensor(threshold, dtype=x.dtype).clamp(min=1e-12) / qmax
    return torch.clamp(torch.round(x / scale), qmin, qmax) * scale


def fake_quant_affine(x: torch.Tensor, lo: float, hi: float, bits: int = 8) -> torch.Tensor:
    """Asymmetric (zero-point) fake quantization of ``[lo, hi]`` (widened to include 0) onto ``0..2^bits-1``."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    levels = 2**bits - 1
    scale = max(hi - lo, 1e-12) / levels
    zero_point = round(-lo / scale)
    q = torch.clamp(torch.round(x / scale) + zero_point, 0, levels)
    return (q - zero_point) * scale


def quantize_weight_per_channel(weight: torch.Tensor, bits: int = 8) -> torch.Tensor:
    """Symmetric per-output-channel fake quantization of a Linear weight ``[out, in]`` (scale = row abs-max / qmax)."""
    return fake_quant_symmetric(weight, weight.abs().amax(1, keepdim=True), bits)
