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
``offset * column_sum(q_w)``. Inputs at 16 bits, per-channel input scales, non-CPU tensors and
dtypes other than float32 keep the float path.

NormConv folds a LayerNorm's affine into the Linears that read it: the NPU quantizes ``x̂`` and
holds ``Q(W diag(gamma))``, so such a Linear computes ``Q(W diag(gamma)) x̂ + W beta + b``. Its
integer GEMM takes the codes of ``x̂`` that the tap made (:func:`carry_codes`; the encoder itself
goes on with ``gamma * x̂ + beta``) and adds the bias ``b + W beta``; where no codes were carried
it keeps the float path.

The simulator's tap already computed an input's integer codes when it fake-quantized it; on the sites that feed a
Linear it keeps their int8 form on its output (:func:`hold_codes`) and :func:`to_int8` takes them instead of dividing
``x̂ / scale`` again: the same integers (dividing recovers them exactly), one division, rounding and clamp fewer.
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
    bias: Optional[torch.Tensor] = None  # the bias the integer GEMM adds in place of the Linear's own (NormConv: ``b + W beta``)

    @classmethod
    def from_quantized(cls, q: torch.Tensor, scale: torch.Tensor, bias: Optional[torch.Tensor] = None) -> "IntWeight":
        """From integer-valued ``q`` ``[out, in]`` (within int8) and per-row ``scale`` (``[out]`` or ``[out, 1]``)."""
        q8 = q.detach().to(torch.int8)
        return cls(q8.t(), scale.detach().reshape(-1).to(torch.float32).clone(), q8.to(torch.int32).sum(1, dtype=torch.int32),
                   None if bias is None else bias.detach().to(torch.float32).clone())


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


_HELD = "_bertnpu_int8"  # the attribute a fake-quant tap's output carries its int8 codes in (hold_codes)
_MAPPED = "_bertnpu_int8_mapped"  # ... and a site map's image of that output, the codes of the tensor before the map (carry_codes)


def _version(x: torch.Tensor) -> Optional[int]:
    return None if x.is_inference() else x._version


def _same_spec(a: IntInput, b: IntInput) -> bool:
    return a.scale is b.scale and a.qmin == b.qmin and a.qmax == b.qmax


def hold_codes(y: torch.Tensor, codes8: torch.Tensor, spec: IntInput) -> torch.Tensor:
    """Attach to ``y``, a fake-quant tap's finished output, its int8 codes ``codes8`` (:func:`int8_codes` of the float
    codes ``y`` was multiplied from), so the Linear it feeds takes them instead of dividing again (:func:`to_int8`).

    They stay valid while ``y`` is unchanged: :func:`to_int8` checks the same spec and, outside inference mode, ``y``'s
    in-place version (inference tensors keep none: there the encoder, and every wrapper tap by the contract of
    :func:`~bertnpu.model.npu_part.with_int_inputs`, hands a tap's output to its Linear unchanged)."""
    setattr(y, _HELD, (spec, _version(y), codes8))
    return y


def carry_codes(y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out``, a site map's image of ``y`` (a NormConv site: the tap quantizes ``x̂`` and the encoder goes on with
    ``gamma * x̂ + beta``), carrying the int8 codes ``y`` holds (:func:`hold_codes`) as the codes *of the quantized
    tensor*, not of ``out``: only :func:`mapped_codes` reads them, for the folded Linears that take ``x̂`` on the NPU."""
    held = getattr(y, _HELD, None)
    return carry(out, held[2], held[0]) if held is not None and held[1] == _version(y) else out


def mapped_codes(x: torch.Tensor, spec: IntInput) -> Optional[torch.Tensor]:
    """The int8 codes of the quantized tensor behind ``x`` (:func:`carry_codes`) under ``spec``, or None (no codes
    carried, ``x`` changed since, or another mapping): never computed from ``x``, which is not that tensor."""
    held = carried(x)
    return held[1] if held is not None and _equal_spec(held[0], spec) else None


def _equal_spec(a: IntInput, b: IntInput) -> bool:
    """The same mapping, by value (a tap built apart, e.g. for a rerun from kept layer inputs, has equal scales in other tensors)."""
    if a.qmin != b.qmin or a.qmax != b.qmax:
        return False
    return a.scale is b.scale or bool(torch.equal(torch.as_tensor(a.scale, dtype=torch.float32), torch.as_tensor(b.scale, dtype=torch.float32)))


def carried(x: torch.Tensor) -> Optional[tuple]:
    """``(spec, int8 codes)`` that :func:`carry_codes` put on ``x`` (still valid), or None."""
    held = getattr(x, _MAPPED, None)
    return (held[0], held[2]) if held is not None and held[1] == _version(x) else None


def carry(out: torch.Tensor, codes8: torch.Tensor, spec: IntInput) -> torch.Tensor:
    """Put ``codes8`` on ``out`` as :func:`carry_codes` does (for a tensor rebuilt from kept codes)."""
    setattr(out, _MAPPED, (spec, _version(out), codes8))
    return out


def int8_codes(codes: torch.Tensor, spec: IntInput, scratch: bool = False) -> torch.Tensor:
    """Float integer codes in ``[qmin, qmax]`` as the int8 ``q - offset`` the integer GEMM reads (``scratch``: ``codes``
    may be changed in place; else it is left as it was)."""
    if spec.offset:
        codes = codes.sub_(spec.offset) if scratch else codes - spec.offset
    return codes.to(torch.int8)


def to_int8(x: torch.Tensor, spec: IntInput) -> torch.Tensor:
    """The int8 codes ``q - offset`` of a fake-quantized ``x`` (``x = q * scale`` exactly: dividing recovers ``q``).

    The clamp changes nothing for such an ``x``; for any other tensor it quantizes instead of letting a code wrap around in int8.
    Codes the tap held (:func:`hold_codes`) for this same ``x`` and spec are the same integers, taken without a division.
    """
    held = getattr(x, _HELD, None)
    if held is not None and held[1] == _version(x) and _same_spec(held[0], spec):
        return held[2]
    return int8_codes(quantize_codes(x, spec.scale, spec.qmin, spec.qmax), spec, scratch=True)


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
