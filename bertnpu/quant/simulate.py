"""INT8 simulation of the NPU part: fake-quantized weights and activations, embedding part in FP32.

What is simulated (bertnpu's model of the NPU, since Mobilint's kernels are not public):

* weights of every Linear: symmetric INT8, one scale per output channel (all methods);
* activations at every site (see :mod:`bertnpu.sites`), with the clip range from
  :func:`~bertnpu.thresholds.clip_thresholds`: symmetric per tensor (methods 0, 1), or with a
  zero-point (methods 2, 3); a symmetric site that never goes negative uses the unsigned
  range; methods 1 and 3 share one range per site role across layers;
* ``output`` 0: one scale per Linear output; 1: one scale per output channel of each Linear
  output site (each channel's abs-max shrunk by the site's clip ratio); 2 (sigmoid-based) is
  not modelled and is refused;
* the CPU part (embeddings + LayerNorm) and sentence pooling stay FP32, as on the device.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable, Optional

import torch

from ..model.sentence_encoder import SentenceEncoder
from ..model.npu_part import NpuEncoder
from ..errors import BertnpuError
from .fake_quant import fake_quant_affine, fake_quant_symmetric, quantize_weight_per_channel
from ..model.load import LoadedModel
from .config import QuantConfig
from .sites import LAYER_LINEARS
from .thresholds import ClipRange, clip_thresholds

LINEAR_OUTPUT_ROLES = ("attention.query.out", "attention.key.out", "attention.value.out", "attention.output.out",
                       "ffn.intermediate.out", "ffn.output.out", "pooler.dense.out")


def quantize_weights_(encoder: NpuEncoder, bits: int = 8) -> NpuEncoder:
    """Replace every Linear weight of ``encoder`` by its per-output-channel fake-quantized copy (in place)."""
    with torch.no_grad():
        for layer in encoder.layers:
            for path in LAYER_LINEARS:
                linear = layer.get_submodule(path)
                linear.weight.copy_(quantize_weight_per_channel(linear.weight, bits))
        if encoder.pooler is not None:
            encoder.pooler.dense.weight.copy_(quantize_weight_per_channel(encoder.pooler.dense.weight, bits))
    return encoder


class FakeQuantTap:
    """A tap that fake-quantizes each site's activation with its clip range."""

    def __init__(self, ranges: dict[str, ClipRange], config: QuantConfig, stats, skip: Iterable[str] = ()):
        self.config = config
        self.skip = set(skip)
        self.plans: dict[str, tuple] = {}
        for name, rng in ranges.items():
            if name in self.skip:
                continue
            obs = stats[name]
            if config.zero_point:
                self.plans[name] = ("affine", rng.lo, rng.hi)
                continue
            unsigned = obs.min >= 0
            threshold = torch.tensor(rng.hi if unsigned else rng.threshold)
            role = name.split(".", 2)[-1] if name.startswith("layer.") else name
            if config.output == 1 and role in LINEAR_OUTPUT_ROLES and obs.absmax > 0:
                # per-channel scales: each channel keeps the site's clip ratio
                threshold = (obs.channel_absmax.float() * (rng.threshold / obs.absmax)).clamp(min=1e-12)
            self.plans[name] = ("symmetric", threshold, unsigned)

    def __call__(self, site: str, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        plan = self.plans.get(site)
        if plan is None:
            return x
        if plan[0] == "affine":
            return fake_quant_affine(x, plan[1], plan[2], self.config.bits)
        threshold = plan[1]
        if threshold.dim() == 1 and x.dim() == 4:  # not reached: attention sites are never per-channel
            raise AssertionError(site)
        return fake_quant_symmetric(x, threshold, self.config.bits, plan[2])


@dataclass
class Int8Simulation:
    """A simulated INT8 NPU part: fake-quantized encoder copy + activation tap, and its ``encode``."""

    model: LoadedModel
    config: QuantConfig
    encoder: NpuEncoder
    tap: Optional[FakeQuantTap]
    ranges: dict[str, ClipRange] = field(default_factory=dict)

    def encoder_for(self, progress: bool = False, batch_size: int = 64) -> SentenceEncoder:
        """An ``encode`` callable for :func:`~bertnpu.evaluate.evaluate_sts`."""
        tap = self.tap if self.tap is not None else (lambda site, x, mask: x)  # same op-by-op path as INT8
        return SentenceEncoder(self.model, tap=tap, encoder=self.encoder, progress=progress, batch_size=batch_size, desc="encode (INT8 sim)")


def simulate_int8(
    model: LoadedModel, stats, config: QuantConfig = QuantConfig(), *, keep_fp32: Iterable[str] = (),
    quantize_weights: bool = True, quantize_activations: bool = True, encoder: Optional[NpuEncoder] = None,
) -> Int8Simulation:
    """Build the fake-quantized NPU part of ``model`` for ``config``.

    Args:
        keep_fp32: site names left in FP32 (per-site toggles).
        quantize_weights / quantize_activations: switch either part off (both off = FP32).
        encoder: a ready NPU part to use as is (e.g. the same weight-quantized copy across a sweep).

    Example:
        >>> sim = simulate_int8(model, stats, QuantConfig())
        >>> evaluate_sts(sim.encoder_for(), pairs)["spearman"]  # doctest: +SKIP
    """
    if config.output == 2:
        raise BertnpuError("QuantConfig.output=2 (sigmoid-based) is not modelled by bertnpu's simulator; simulate with output 0 or 1.")
    keep = set(keep_fp32)
    unknown = keep - set(stats.observers)
    if unknown:
        raise BertnpuError(f"Unknown site(s) {', '.join(sorted(unknown))} in keep_fp32; list the sites with `bertnpu sites`.")
    if encoder is None:
        encoder = copy.deepcopy(NpuEncoder(model.bert))
        if quantize_weights:
            quantize_weights_(encoder, config.bits)
    ranges = clip_thresholds(stats, config)
    tap = FakeQuantTap(ranges, config, stats, skip=keep) if quantize_activations else None
    return Int8Simulation(model, config, encoder, tap, ranges)
