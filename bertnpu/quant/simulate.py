"""Simulation of the quantized NPU part for one recipe: fake-quantized weights and activations.

What is simulated (bertnpu's model of the NPU, since Mobilint's kernels are not public):

* weights of every Linear: symmetric INT8, one scale per output channel (all methods);
* activations at every site (see :mod:`bertnpu.quant.sites`) at the bit width the recipe gives
  it: the precision profile's default for the site's role (:mod:`bertnpu.quant.precision`),
  raised to 16 bits for the recipe's ``activation_16bits``. A 16-bit site uses the *same range
  rule* as at 8 bits, applied at 16 bits: the same clip range for Max and MaxPercentile (they do
  not depend on the width), the MSE search at 16-bit steps for Histogram; ``2^16`` levels;
* the clip range from :func:`~bertnpu.quant.thresholds.clip_thresholds`: symmetric per tensor
  (methods 0, 1), or with a zero-point (methods 2, 3); a symmetric site that never goes
  negative uses the unsigned range; methods 1 and 3 share one range per site role across layers;
  scale, zero point and code range from :func:`~bertnpu.quant.qparams.calculate_qparams` (the panels
  show the same: ``FakeQuantTap.qparams`` is what the tap applies);
* ``output`` 0: one scale per Linear output; 1: one scale per output channel of each Linear
  output site (each channel's abs-max shrunk by the site's clip ratio; with a zero point, each
  channel's min and max shrunk by the site's clip ratio on that side, and one zero point per
  channel); 2 (sigmoid-based) is not modelled and is refused. Which other ops get per-channel
  scales under ``output`` 1 is not published: bertnpu gives them one scale per tensor;
* the recipe's equivalent transformations (NormConv, Qk, Vo; see
  :mod:`bertnpu.quant.transforms`) on a private copy of the NPU part; the stats must then come
  from the transformed encoder (:func:`~bertnpu.quant.transforms.collect_transformed_stats`);
* a Linear with an 8-bit input and INT8 weights sums the integer products exactly (int32) and
  rescales once, as an integer MAC array does (:mod:`bertnpu.quant.int_gemm`); others run in float;
* the CPU part (embeddings + LayerNorm) and sentence pooling stay FP32, as on the device.

``keep_fp32`` (leave a site unquantized) is a *diagnostic only*: the NPU has no FP32
activations, so no compiled model corresponds to it. The device's remedy is 16 bits.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Optional

import torch

from ..errors import BertnpuError
from ..model.load import LoadedModel
from ..model.npu_part import NpuEncoder
from ..model.sentence_encoder import SentenceEncoder
from .config import QuantConfig
from .fake_quant import fake_quant_affine_with, fake_quant_with_scale, quantize_codes, weight_codes_per_channel
from .int_gemm import IntInput, IntWeight, hold_codes, int8_codes, kernel
from .int_gemm import enabled as int_gemm_enabled
from .kernel_policy import current_policy
from .precision import DEFAULT_PROFILE, site_bits, site_role
from .qparams import AFFINE, QParams, calculate_qparams, clip_plan
from .recipe import Recipe
from .sites import GEMM_INPUT_ROLES, LAYER_LINEARS
from .thresholds import ClipRange, clip_thresholds

LINEAR_OUTPUT_ROLES = ("attention.query.out", "attention.key.out", "attention.value.out", "attention.output.out",
                       "ffn.intermediate.out", "ffn.output.out", "pooler.dense.out")
KEEP_FP32_NOTE = "keep in FP32 is a diagnostic with no device counterpart (the NPU has no FP32 activations); use activation_16bits for a compilable recipe"


def quantize_weights_(encoder: NpuEncoder, bits: int = 8, *, integer_gemm: Optional[bool] = None) -> NpuEncoder:
    """Replace every Linear weight of ``encoder`` by its per-output-channel fake-quantized copy (in place).

    ``integer_gemm``: whether the 8-bit Linears run as integer GEMMs (:func:`bertnpu.quant.int_gemm.kernel`;
    None: the process's choice); the choice is put into the encoder with its integer weights.

    A Linear with a folded input affine (NormConv, ``encoder.folded_inputs``) is quantized as the
    NPU holds it, ``Q(W diag(gamma))``, and unfolded again with a bias correction, so that on
    ``gamma * x̂ + beta`` it computes exactly ``Q(W diag(gamma)) x̂ + W beta + b``.
    """
    folded = getattr(encoder, "folded_inputs", {}) or {}
    ints = {}  # the integer weights of the Linears that may take the integer GEMM (bits <= 8)

    def quantize(key, linear):
        codes, scale = weight_codes_per_channel(linear.weight, bits)
        linear.weight.copy_(codes * scale)
        if bits <= 8:
            ints[key] = IntWeight.from_quantized(codes, scale)

    with torch.no_grad():
        for i, layer in enumerate(encoder.layers):
            for path in LAYER_LINEARS:
                linear = layer.get_submodule(path)
                affine = folded.get((i, path))
                if affine is None:
                    quantize((i, path), linear)
                    continue
                gamma, beta = affine
                safe = torch.where(gamma == 0, torch.ones_like(gamma), gamma)
                w = linear.weight.detach().clone()
                codes, scale = weight_codes_per_channel(w * gamma[None, :], bits)
                if bits <= 8:  # on the codes of x̂ (carried past the site map): Q(W diag(gamma)) x̂ + W beta + b
                    ints[(i, path)] = IntWeight.from_quantized(codes, scale, bias=linear.bias + w @ beta)
                w_eff = codes * scale / safe[None, :]
                linear.bias.add_((w - w_eff) @ beta)
                linear.weight.copy_(w_eff)
        if encoder.pooler is not None:
            quantize((-1, "pooler.dense"), encoder.pooler.dense)
    encoder.int_weights = ints
    encoder.int_gemm = kernel(integer_gemm)
    return encoder


class FakeQuantTap:
    """A tap that fake-quantizes each site's activation with its clip range at its bit width.

    ``bits`` maps site -> bit width (sites missing from it use ``config.bits``); ``skip``
    leaves sites unquantized (the FP32 diagnostic).
    """

    def __init__(self, ranges: dict[str, ClipRange], config: QuantConfig, stats, skip: Iterable[str] = (),
                 bits: Optional[Mapping[str, int]] = None, ranges16: Optional[dict[str, ClipRange]] = None):
        self.config = config
        self.skip = set(skip)
        self.bits = dict(bits or {})
        self.stats, self.ranges, self.ranges16 = stats, ranges, ranges16
        self.plans = self._plans(ranges, config, stats)
        # the range rule applied at 16 bits (differs from the 8-bit range only for mode 2, whose MSE search depends on the step)
        self.plans16 = self._plans(ranges16, config, stats) if ranges16 is not None else {}
        self._ops: dict = {}  # (site, bits, dtype) -> the ready fake-quant call; shared by with_bits copies (same plans)

    def _plans(self, ranges: dict[str, ClipRange], config: QuantConfig, stats) -> dict[str, tuple]:
        return {name: clip_plan(stats[name], rng, config, self.per_channel(name)) for name, rng in ranges.items() if name not in self.skip}

    def per_channel(self, site: str) -> bool:
        """``output`` 1 gives a Linear output one scale (and zero point) per channel; every other site one per tensor."""
        return self.config.output == 1 and site_role(site) in LINEAR_OUTPUT_ROLES

    def with_bits(self, changes: Mapping[str, int]) -> "FakeQuantTap":
        """A copy sharing the plans, with some sites' bit widths changed (cheap: no new ranges)."""
        other = copy.copy(self)
        other.bits = {**self.bits, **changes}
        return other

    def site_bits(self, site: str) -> int:
        return self.bits.get(site, self.config.bits)

    def qparams(self, site: str, bits: Optional[int] = None, dtype: torch.dtype = torch.float32) -> Optional[QParams]:
        """The :class:`~bertnpu.quant.qparams.QParams` the tap applies to ``site`` at ``bits`` (default: the site's
        width) on activations of ``dtype``, or None (unquantized)."""
        bits = self.site_bits(site) if bits is None else bits
        if site not in self.plans:
            return None
        # the range rule at 16 bits where it differs (mode 2), else the 8-bit range
        ranges = self.ranges16 if bits > 8 and self.plans16 and site in self.plans16 else self.ranges
        return calculate_qparams(self.stats[site], self.config, rng=ranges[site], bits=bits, per_channel=self.per_channel(site), dtype=dtype)

    def _op(self, site: str, bits: int, dtype: torch.dtype):
        """The site's fake quantization at ``bits`` with its scale computed once: ``(fn, *args)``, or None (unquantized)."""
        qp = self.qparams(site, bits, dtype)
        if qp is None:
            return None
        if qp.scheme == AFFINE:
            return (fake_quant_affine_with, qp.scale, qp.zero_point, qp.qmax)
        return (fake_quant_with_scale, qp.scale, qp.qmin, qp.qmax)

    def _prepared(self, site: str, dtype: torch.dtype):
        key = (site, self.bits.get(site, self.config.bits), dtype)
        op = self._ops.get(key, False)
        if op is False:
            op = self._ops[key] = self._op(*key)
        return op

    def int_input(self, site: str) -> Optional[IntInput]:
        """How the site's float32 output maps to int8 codes (for the integer GEMM of the Linear it feeds), or None
        (unquantized, above 8 bits, or one scale per channel)."""
        if self.bits.get(site, self.config.bits) > 8:
            return None
        op = self._prepared(site, torch.float32)
        if op is None:
            return None
        if op[0] is fake_quant_affine_with:
            scale, zero_point, levels = op[1:]
            return IntInput.of(scale, -int(zero_point), int(levels - zero_point)) if not isinstance(zero_point, torch.Tensor) else None
        scale, qmin, qmax = op[1:]
        return IntInput.of(scale, qmin, qmax)

    def _handoff(self, site: str, x: torch.Tensor) -> Optional[IntInput]:
        """The int8 mapping of a site whose output feeds a quantized Linear (:data:`~bertnpu.quant.sites.GEMM_INPUT_ROLES`),
        when its codes can go to the integer GEMM; else None."""
        if x.dtype != torch.float32 or x.device.type != "cpu" or site_role(site) not in GEMM_INPUT_ROLES or not int_gemm_enabled():
            return None
        return self.int_input(site)

    def _apply(self, op, site: str, x: torch.Tensor) -> torch.Tensor:
        spec = self._handoff(site, x)
        if spec is None:
            return op[0](x, *op[1:])
        # the same codes and product as op (both fake quantizers are quantize_codes(x, scale, qmin, qmax).mul_(scale)),
        # their int8 form kept for the Linear this site feeds (int_gemm.to_int8 takes it instead of dividing again)
        codes = quantize_codes(x, spec.scale, spec.qmin, spec.qmax)
        codes8 = int8_codes(codes, spec)
        return hold_codes(codes.mul_(spec.scale), codes8, spec)

    def __call__(self, site: str, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """``fake_quant_symmetric`` / ``fake_quant_affine`` of the site's plan, with the scale prepared on first use."""
        op = self._prepared(site, x.dtype)
        if op is None:
            return x
        if not current_policy().serial_fake_quant:  # the process's choice (kernel_policy), made once by the caller
            return self._apply(op, site, x)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)  # elementwise passes: the same result on any number of threads
        try:
            return self._apply(op, site, x)
        finally:
            torch.set_num_threads(threads)


@dataclass
class Simulation:
    """A simulated NPU part for one recipe: encoder copy + activation tap, and its ``encode``.

    ``reference`` is the same (transformed) encoder with FP32 weights, the right reference for
    per-site errors; ``site_bits`` the activation width of every site.
    """

    model: LoadedModel
    config: QuantConfig
    encoder: NpuEncoder
    tap: Optional[FakeQuantTap]
    ranges: dict[str, ClipRange] = field(default_factory=dict)
    recipe: Recipe = field(default_factory=Recipe)
    site_bits: dict[str, int] = field(default_factory=dict)
    keep_fp32: tuple[str, ...] = ()
    reference: Optional[NpuEncoder] = None

    @property
    def profile(self) -> str:
        return self.recipe.profile

    def label(self) -> str:
        """The recipe and its profile, plus the FP32 diagnostic when used (every figure names its profile)."""
        extra = f"; {len(self.keep_fp32)} site(s) kept FP32 (diagnostic, no device counterpart)" if self.keep_fp32 else ""
        return self.recipe.label() + extra

    def encoder_for(self, progress: bool = False, batch_size: int = 64, embedding=None) -> SentenceEncoder:
        """An ``encode`` callable for :func:`~bertnpu.tune.evaluate.evaluate_sts` (``embedding``: a ready FP32 CPU part to reuse)."""
        tap = self.tap if self.tap is not None else (lambda site, x, mask: x)  # same op-by-op path as quantized
        return SentenceEncoder(self.model, tap=tap, encoder=self.encoder, progress=progress, batch_size=batch_size,
                               desc=f"encode (sim, {self.profile})", embedding=embedding)


def as_recipe(recipe_or_config: Recipe | QuantConfig | None, profile: Optional[str] = None,
              activation_16bits: Optional[Iterable[str]] = None) -> Recipe:
    """A Recipe from a Recipe or a QuantConfig, with ``profile`` / ``activation_16bits`` overriding (replacing) when given."""
    if recipe_or_config is None:
        recipe = Recipe()
    elif isinstance(recipe_or_config, QuantConfig):
        recipe = Recipe(calibration=recipe_or_config)
    elif isinstance(recipe_or_config, Recipe):
        recipe = recipe_or_config
    else:
        raise BertnpuError(f"Cannot simulate a {type(recipe_or_config).__name__}; pass a Recipe or a QuantConfig.")
    changes = {}
    if profile is not None:
        changes["profile"] = profile
    if changes:
        recipe = recipe.with_(**changes)
    # replaces the recipe's sites (the CLI's --a16 adds): both through Recipe.with_16bits, the one rule
    return recipe.with_16bits(activation_16bits, replace_sites=True) if activation_16bits is not None else recipe


def check_stats_transforms(stats, recipe: Recipe) -> list[str]:
    """The recipe's transformations, after checking the stats were collected on the same transformed encoder."""
    from .transforms import transformation_names

    names = transformation_names(recipe.equivalent_transformation)
    have = list(stats.meta.get("equivalent_transformation", []))
    if have != names:
        raise BertnpuError(
            f"The activation stats were collected with transformation(s) [{', '.join(have) or 'none'}] but the recipe uses "
            f"[{', '.join(names) or 'none'}]; collect them on the transformed encoder (bertnpu.quant.transforms.collect_transformed_stats).")
    return names


def simulate(
    model: LoadedModel, stats, recipe: Recipe | QuantConfig | None = None, *, profile: Optional[str] = None,
    activation_16bits: Optional[Iterable[str]] = None, keep_fp32: Iterable[str] = (), quantize_weights: bool = True,
    quantize_activations: bool = True, encoder: Optional[NpuEncoder] = None, integer_gemm: Optional[bool] = None,
    keep_reference: bool = True,
) -> Simulation:
    """Build the fake-quantized NPU part of ``model`` for ``recipe`` (a Recipe, or a QuantConfig).

    Args:
        profile / activation_16bits: override the recipe's (e.g. to bracket over profiles).
        keep_fp32: sites left unquantized, a diagnostic with no device counterpart.
        quantize_weights / quantize_activations: switch either part off (both off = FP32).
        encoder: a ready NPU part to use as is (e.g. one weight-quantized copy across a sweep);
            it must carry the recipe's transformations.
        integer_gemm: 8-bit Linears as integer GEMMs (True), in float (False), or the process's choice (None);
            a ready ``encoder`` keeps the choice made when its weights were quantized.
        keep_reference: False leaves ``reference`` None (with transformations it is a second full copy
            of the NPU part, needed only for per-site errors).

    Example:
        >>> sim = simulate(model, stats, Recipe(activation_16bits=("layer.0.ffn.residual",)))
        >>> sim.site_bits["layer.0.ffn.residual"], sim.site_bits["layer.0.attention.softmax.out"]
        (16, 16)
    """
    from .transforms import transformed_encoder

    recipe = as_recipe(recipe, profile, activation_16bits)
    config = recipe.calibration
    if config.output == 2:
        raise BertnpuError("QuantConfig.output=2 (sigmoid-based) is not modelled by bertnpu's simulator; simulate with output 0 or 1.")
    names = check_stats_transforms(stats, recipe)
    site_names = [s.name for s in stats.sites]
    keep = set(keep_fp32)
    unknown = keep - set(site_names)
    if unknown:
        raise BertnpuError(f"Unknown site(s) {', '.join(sorted(unknown))} in keep_fp32; list the sites with `bertnpu sites`.")
    bits = {s: (config.bits if b == 8 else max(b, config.bits)) for s, b in site_bits(site_names, recipe.profile, recipe.activation_16bits).items()}
    reference = None
    if encoder is None:
        if keep_reference:
            reference = transformed_encoder(model.bert, names) if names else NpuEncoder(model.bert)
        encoder = transformed_encoder(model.bert, names) if names else copy.deepcopy(NpuEncoder(model.bert))
        if quantize_weights:
            quantize_weights_(encoder, config.bits, integer_gemm=integer_gemm)
    elif tuple(getattr(encoder, "transforms", ())) != tuple(names):
        raise BertnpuError(f"The encoder given carries transformation(s) {list(getattr(encoder, 'transforms', ()))}, not the recipe's {names}; build it with transformed_encoder.")
    ranges = clip_thresholds(stats, config)
    ranges16 = clip_thresholds(stats, config.with_(bits=16)) if config.mode == 2 and config.bits < 16 else None
    tap = FakeQuantTap(ranges, config, stats, skip=keep, bits=bits, ranges16=ranges16) if quantize_activations else None
    return Simulation(model, config, encoder, tap, ranges, recipe, bits, tuple(sorted(keep)), reference)


__all__ = ["DEFAULT_PROFILE", "FakeQuantTap", "KEEP_FP32_NOTE", "Simulation", "as_recipe", "quantize_weights_", "simulate"]
