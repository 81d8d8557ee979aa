"""Equivalent transformations of the NPU part (qbcompiler's NormConv, Qk, Vo), applied to a private copy.

Each transformation leaves the FP32 function of the encoder unchanged and only changes which
tensor the NPU quantizes at a few sites (and which weights it quantizes). The definitions
bertnpu simulates (Mobilint publishes the intent, not the algorithm; see
``shared/reference/mobilint_sdk_facts.md``, "Mixed precision and equivalent transformations"):

* **NormConv**: every LayerNorm whose output feeds Linears inside the encoder (each layer's
  ``attention.layernorm.out``, and ``ffn.layernorm.out`` of every layer but the last) is split
  into its normalization ``x̂ = (x - mean) / std`` and its affine ``gamma * x̂ + beta``. The NPU
  quantizes ``x̂`` (the site's tensor changes from ``gamma * x̂ + beta`` to ``x̂``); ``gamma`` and
  ``beta`` are folded into the Linears that read it (``W' = W diag(gamma)``, ``b' = b + W beta``,
  and ``W'`` is what gets quantized per output channel); the residual Add that also reads the
  LayerNorm output applies ``gamma``, ``beta`` per channel to the dequantized ``x̂`` (how the
  compiler treats that Add is not published: bertnpu assumes at higher precision). The last
  LayerNorm (the final hidden state) is left alone, so the CPU part does nothing.
* **Qk**: per layer and head, the query and key weights (and biases) are rotated by one
  orthogonal matrix ``R`` (``q' = q R``, ``k' = k R``), so ``q' k'^T = q k^T``: the scores are
  unchanged while ``attention.query.out`` and ``attention.key.out`` become the rotated
  tensors, whose outlier channels are spread over the head. The CPU part does nothing.
* **Vo**: per layer and head, the value weights are rotated by ``R`` (``v' = v R``) and the
  attention output Linear's input columns by the same ``R`` (``W_o' = W_o blockdiag(R)``), so
  its output is unchanged; ``attention.value.out`` and ``attention.output.in`` become the
  rotated tensors. The CPU part does nothing.
* **Ud** (FFN up/down) is refused: GELU does not commute with a rotation, so the FFN output
  would change and bertnpu has no exact definition to simulate.

``R`` is a randomized Hadamard matrix (``H diag(±1) / sqrt(d)``) when the head size is a power
of two, else the Q factor of a seeded Gaussian matrix; seeds depend on layer and head only.

Activation statistics must be collected on the transformed encoder (the tensors at the
targeted sites differ): :func:`collect_transformed_stats`.
"""

from __future__ import annotations

import copy
from typing import Callable, Iterable, Optional

import numpy as np
import torch

from ..errors import BertnpuError
from ..model.npu_part import NpuEncoder, Tap, with_int_inputs
from .int_gemm import carry_codes, mapped_codes
from .recipe import TRANSFORMATIONS, EquivalentTransformations

SIMULATED = ("norm_conv", "qk", "vo")
UD_REFUSAL = "The Ud transformation is not simulated by bertnpu (GELU does not commute with a rotation of the FFN weights); switch ud off in the recipe."
# which site roles each transformation changes (the tensors it targets)
TARGET_ROLES = {
    "norm_conv": ("attention.layernorm.out", "ffn.layernorm.out"),
    "qk": ("attention.query.out", "attention.key.out"),
    "vo": ("attention.value.out", "attention.output.in"),
}


def transformation_names(transforms: EquivalentTransformations | Iterable[str]) -> list[str]:
    """Enabled names in canonical order; one sentence for an unknown name or for ``ud``."""
    names = transforms.enabled() if isinstance(transforms, EquivalentTransformations) else list(transforms)
    for n in names:
        if n not in TRANSFORMATIONS:
            raise BertnpuError(f"Unknown equivalent transformation {n!r}; use one of {', '.join(TRANSFORMATIONS)}.")
    if "ud" in names:
        raise BertnpuError(UD_REFUSAL)
    return [n for n in SIMULATED if n in names]


def head_rotation(dim: int, seed: int) -> torch.Tensor:
    """An orthogonal ``[dim, dim]`` matrix: randomized Hadamard for powers of two, else seeded QR."""
    rng = np.random.default_rng(seed)
    if dim & (dim - 1) == 0:
        h = np.ones((1, 1))
        while h.shape[0] < dim:
            h = np.block([[h, h], [h, -h]])
        r = h * rng.choice([-1.0, 1.0], size=dim)[None, :] / np.sqrt(dim)
    else:
        q, upper = np.linalg.qr(rng.standard_normal((dim, dim)))
        r = q * np.sign(np.diag(upper))[None, :]
    return torch.from_numpy(r).float()


class TransformedEncoder(NpuEncoder):
    """An :class:`NpuEncoder` copy with rotated weights and, for NormConv, site maps.

    ``site_maps[site] = (to_quantized, from_quantized)``: a tap sees ``to_quantized(x)`` at that
    site and the encoder continues with ``from_quantized`` of what the tap returns.
    ``folded_inputs[(layer, linear_path)] = (gamma, beta)``: the Linear's weight is quantized as
    ``W diag(gamma)`` (NormConv). :func:`transformed_encoder` adds a site map and the folds of every
    Linear that reads that site together, so every Linear after a mapped site is folded (the one kind
    that can take the codes of ``x̂``). ``transforms`` lists what was applied.
    """

    site_maps: dict
    folded_inputs: dict
    transforms: tuple

    def wrap_tap(self, tap: Tap) -> Tap:
        """``tap`` seen through the site maps (the caller's tap sees the quantized-space tensors)."""
        maps = self.site_maps
        if not maps:
            return tap

        def mapped(site, x, mask):
            m = maps.get(site)
            if m is None:
                return tap(site, x, mask)
            y = tap(site, m[0](x), mask)
            return carry_codes(y, m[1](y))  # the codes of x̂ go on to the folded Linears (int_gemm.carry_codes)

        return with_int_inputs(mapped, getattr(tap, "int_input", None))

    def _codes(self, x: torch.Tensor, ints, site: str):
        """A mapped (NormConv) site's Linears read the codes of ``x̂`` carried past the map, or run in float."""
        if site not in self.site_maps:
            return super()._codes(x, ints, site)
        spec = ints(site) if ints is not None else None
        codes = mapped_codes(x, spec) if spec is not None else None
        return None if codes is None else (codes, spec)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor, tap: Optional[Tap] = None):
        return super().forward(hidden, attention_mask, self.wrap_tap(tap) if tap is not None else None)


def _rotate_rows_(linear: torch.nn.Linear, rotations: list[torch.Tensor]) -> None:
    """Per head ``h``: output rows ``W_h <- R_h^T W_h`` and ``b_h <- R_h^T b_h`` (so ``y_h' = y_h R_h``)."""
    d = rotations[0].shape[0]
    for h, r in enumerate(rotations):
        rows = slice(h * d, (h + 1) * d)
        linear.weight[rows] = r.T @ linear.weight[rows]
        if linear.bias is not None:
            linear.bias[rows] = r.T @ linear.bias[rows]


def _layer_rotations(encoder: NpuEncoder, layer: int, salt: int) -> list[torch.Tensor]:
    return [head_rotation(encoder.head_dim, 1_000_003 * salt + 1000 * layer + h) for h in range(encoder.num_heads)]


def _affine_map(gamma: torch.Tensor, beta: torch.Tensor) -> tuple[Callable, Callable]:
    safe = torch.where(gamma == 0, torch.ones_like(gamma), gamma)
    return (lambda x: (x - beta) / safe), (lambda y: y * safe + beta)


def transformed_encoder(bert, transforms: EquivalentTransformations | Iterable[str]) -> NpuEncoder:
    """A private copy of ``bert``'s NPU part with ``transforms`` applied (a plain copy when none).

    Example:
        >>> enc = transformed_encoder(model.bert, ["qk", "vo"])
        >>> enc.transforms
        ('qk', 'vo')
    """
    names = transformation_names(transforms)
    enc = copy.deepcopy(TransformedEncoder(bert))
    enc.site_maps, enc.folded_inputs, enc.transforms = {}, {}, tuple(names)
    with torch.no_grad():
        for i, layer in enumerate(enc.layers):
            att = layer.attention.self
            if "qk" in names:
                rot = _layer_rotations(enc, i, 1)
                _rotate_rows_(att.query, rot)
                _rotate_rows_(att.key, rot)
            if "vo" in names:
                rot = _layer_rotations(enc, i, 2)
                _rotate_rows_(att.value, rot)
                block = torch.block_diag(*rot)
                dense = layer.attention.output.dense
                dense.weight.copy_(dense.weight @ block)
        if "norm_conv" in names:
            last = enc.num_layers - 1
            for i, layer in enumerate(enc.layers):
                ln = layer.attention.output.LayerNorm
                gamma, beta = ln.weight.detach().clone(), ln.bias.detach().clone()
                enc.site_maps[f"layer.{i}.attention.layernorm.out"] = _affine_map(gamma, beta)
                enc.folded_inputs[(i, "intermediate.dense")] = (gamma, beta)
                if i < last:
                    ln = layer.output.LayerNorm
                    gamma, beta = ln.weight.detach().clone(), ln.bias.detach().clone()
                    enc.site_maps[f"layer.{i}.ffn.layernorm.out"] = _affine_map(gamma, beta)
                    for path in ("attention.self.query", "attention.self.key", "attention.self.value"):
                        enc.folded_inputs[(i + 1, path)] = (gamma, beta)
    return enc


def transformed_sites(site_names: Iterable[str], transforms: EquivalentTransformations | Iterable[str], num_layers: int) -> list[str]:
    """The sites whose tensors ``transforms`` change (NormConv spares the final LayerNorm)."""
    names = transformation_names(transforms)
    roles = {r for n in names for r in TARGET_ROLES[n]}
    final = f"layer.{num_layers - 1}.ffn.layernorm.out"
    return [s for s in site_names if s.startswith("layer.") and s.split(".", 2)[-1] in roles and s != final]


def collect_transformed_stats(model, calib, base_stats, transforms: EquivalentTransformations | Iterable[str], *,
                              batch_size: int = 32, progress: bool = False, encoder: Optional[NpuEncoder] = None):
    """Activation stats of the transformed encoder: the targeted sites re-observed, the others reused.

    The transformations are exact in FP32, so every other site's tensor is that of
    ``base_stats`` (collected on the plain encoder from the same ``calib``); only the targeted
    sites are observed again, which costs one forward pass over ``calib``.
    """
    from tqdm.auto import tqdm

    from .stats import ActivationStats, StatsTap, _calibration_batches, calibration_hash

    names = transformation_names(transforms)
    if base_stats.meta.get("equivalent_transformation"):
        raise BertnpuError("collect_transformed_stats needs stats of the plain encoder; collect them with `bertnpu stats` (no transformation).")
    if base_stats.meta.get("calibration_sha256") not in (None, calibration_hash(calib)):
        raise BertnpuError("The base stats come from another calibration set than the one given; recompute them with `bertnpu stats`.")
    enc = encoder if encoder is not None else transformed_encoder(model.bert, names)
    changed = set(transformed_sites([s.name for s in base_stats.sites], names, enc.num_layers))
    cfg = model.config
    tap = StatsTap(base_stats.sites, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, base_stats.meta.get("seed", 0))

    def observe(site, x, mask):
        return tap(site, x, mask) if site in changed else x

    with torch.inference_mode():
        for hidden, mask, idx in tqdm(list(_calibration_batches(calib, batch_size)), desc="stats (transformed)", disable=not progress, leave=False):
            tap.start_batch(mask, idx)
            enc(hidden, mask, tap=observe)
    observers = {s.name: (tap.observers[s.name] if s.name in changed else base_stats[s.name]) for s in base_stats.sites}
    return ActivationStats(list(base_stats.sites), observers, {**base_stats.meta, "equivalent_transformation": names})


def stats_for_recipe(model, stats, recipe, calib=None, *, progress: bool = False):
    """``stats`` when they match the recipe's transformations, else the transformed stats from ``calib``.

    One sentence when the recipe needs transformed stats and no calibration set is given.
    """
    names = transformation_names(recipe.equivalent_transformation)
    if list(stats.meta.get("equivalent_transformation", [])) == names:
        return stats
    if calib is None:
        raise BertnpuError(f"The recipe uses transformation(s) {', '.join(names)}, whose activation stats must be collected on the "
                           "transformed encoder; pass the calibration set (--calib DIR) instead of --stats.")
    return collect_transformed_stats(model, calib, stats, names, progress=progress)
