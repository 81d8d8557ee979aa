"""Integer GEMM for the simulator's Linears: INT8 activations times INT8 weights summed exactly in int32.

A simulated Linear whose input is an 8-bit quantized activation and whose weight is held as
per-output-channel INT8 computes what an integer MAC array computes: the exact integer sum
``sum_k q_x[k] * q_w[n, k]``, then one rescale ``s_x * s_w[n]`` and the bias. The float
fake-quant path (``x̂ @ Ŵᵀ + b`` in FP32) computes the same sum with FP32 rounding in every
product and addition; the two agree to about 1e-6 relative (``tests/test_int_gemm.py``), and the
integer one is the exact sum. Mobilint does not publish its accumulator width; an int32 sum
cannot overflow here (``K * 128 * 127 < 2^31`` for ``K`` below 132,000 inputs).

Why: on CPUs with int8 dot-product instructions (AVX512-VNNI, AVX-VNNI) ``torch._int_mm`` ran
4-5x faster than the FP32 ``linear`` on MiniLM's shapes, and Linears are most of an encode.

An activation range ``[qmin, qmax]`` that does not fit int8 (unsigned ``0..255``, a zero point
other than 128) is shifted by ``offset`` into it; the shift comes back exactly as
``offset * column_sum(q_w)``. Inputs at 16 bits, per-channel input scales, NormConv-folded
weights, non-CPU tensors and dtypes other than float32 keep the float path.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import torch

from .fake_quant import quantize_codes

_CHECKED: dict[str, bool] = {}


@dataclass(frozen=True)
class IntWeight:
    """A Linear weight as the NPU holds it: ``weight`` int8 ``[in, out]`` (a transposed view), ``scale`` float32 ``[out]``,
    ``column_sums`` int32 ``[out]`` (for inputs shifted by an offset)."""

    weight: torch.Tensor
    scale: torch.Tensor
    column_sums: torch.Tensor

    @classmethod
    def from_quantized(cls, q: torch.Tensor, scale: torch.Tensor) -> "IntWeight":
        """From integer-valued ``q`` ``[out, in]`` (within int8) and per-row ``scale`` (``[out]`` or ``[out, 1]``)."""
        q8 = q.detach().to(torch.int8)
        return cls(q8.t(), scale.detach().reshape(-1).to(torch.float32).clone(), q8.to(torch.int32).sum(1, dtype=torch.int32))


@dataclass(frozen=True)
class IntInput:
    """How a site's quantized activation maps to int8: ``x̂ = q * scale`` with integer ``q`` in ``[qmin, qmax]``, stored as ``q - offset``."""

    scale: torch.Tensor | float
    qmin: int
    qmax: int

    @property
    def offset(self) -> int:
        return 0 if self.qmin >= -128 and self.qmax <= 127 else self.qmin + 128

    @classmethod
    def of(cls, scale, qmin: int, qmax: int) -> Optional["IntInput"]:
        """The mapping, or None where it cannot be int8 (more than 256 levels, or a scale per channel)."""
        if qmax - qmin > 255:
            return None
        if isinstance(scale, torch.Tensor) and scale.numel() != 1:
            return None
        return cls(scale, int(qmin), int(qmax))


def enabled() -> bool:
    """Whether Linears may use the integer GEMM: the process's choice (:class:`~bertnpu.quant.kernel_policy.KernelPolicy`
    ``integer_gemm``, set by the caller; ``BERTNPU_INTEGER_GEMM=0`` is read by the CLI), by default after a one-time exactness check."""
    from .kernel_policy import current_policy

    chosen = current_policy().integer_gemm
    if chosen is not None:
        return chosen
    if "ok" not in _CHECKED:
        _CHECKED["ok"] = _self_check()
    return _CHECKED["ok"]


def _self_check() -> bool:
    """``torch._int_mm`` exists and sums a small odd-shaped product exactly (against an int64 matmul)."""
    if not hasattr(torch, "_int_mm"):
        return False
    g = torch.Generator().manual_seed(0)
    a = torch.randint(-128, 128, (5, 37), dtype=torch.int8, generator=g)
    b = torch.randint(-127, 128, (11, 37), dtype=torch.int8, generator=g)
    try:
        got = torch._int_mm(a, b.t())
    except (RuntimeError, NotImplementedError):
        return False
    return bool(torch.equal(got.to(torch.int64), a.to(torch.int64) @ b.to(torch.int64).t()))


def to_int8(x: torch.Tensor, spec: IntInput) -> torch.Tensor:
    """The int8 codes ``q - offset`` of a fake-quantized ``x`` (``x = q * scale`` exactly: dividing recovers ``q``).

    The clamp changes nothing for such an ``x``; for any other tensor it quantizes instead of letting a code wrap around in int8.
    """
    y = quantize_codes(x, spec.scale, spec.qmin, spec.qmax)
    if spec.offset:
        y.sub_(spec.offset)
    return y.to(torch.int8)


def int_linear(codes: torch.Tensor, spec: IntInput, weight: IntWeight, bias: Optional[torch.Tensor]) -> torch.Tensor:
    """``Linear(x̂)`` from the int8 ``codes`` of ``x̂`` (:func:`to_int8`): exact int32 sum, then ``* s_x * s_w + bias``."""
    lead = codes.shape[:-1]
    acc = torch._int_mm(codes.reshape(-1, codes.shape[-1]), weight.weight)
    if spec.offset:
        acc.add_(weight.column_sums * spec.offset)
    out = acc.to(torch.float32)
    out.mul_(weight.scale * spec.scale)
    if bias is not None:
        out.add_(bias)
    return out.view(*lead, out.shape[-1])


@dataclass(frozen=True)
class IntGemm:
    """The integer-GEMM kernel a simulated NPU encoder calls (``NpuEncoder.int_gemm``): int8 codes of an input, and the Linear."""

    codes: Callable[[torch.Tensor, IntInput], torch.Tensor]
    linear: Callable[[torch.Tensor, IntInput, IntWeight, Optional[torch.Tensor]], torch.Tensor]


INT_GEMM = IntGemm(to_int8, int_linear)


def kernel(integer_gemm: Optional[bool] = None) -> Optional[IntGemm]:
    """The kernel for an encoder whose weights are quantized now: ``INT_GEMM``, or None (the float path).

    ``integer_gemm``: True / False choose; None takes the process's choice (:func:`enabled`).
    """
    use = enabled() if integer_gemm is None else integer_gemm
    return INT_GEMM if use else None
