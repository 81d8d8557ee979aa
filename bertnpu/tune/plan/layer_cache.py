"""Running the NPU part layer by layer, reusing the hidden states before the layer a candidate changes."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ...memory import release_free_memory
from ...model.load import LoadedModel
from ...model.npu_part import NpuEncoder
from ...model.pooling import pool
from ...model.sentence_encoder import SentenceEncoder
from ...quant.int_gemm import carried, carry


def run_layers(encoder: NpuEncoder, hidden: torch.Tensor, mask: torch.Tensor, tap, start: int = -1,
               record: Optional[list] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run ``encoder`` from layer ``start`` (``-1``: from the NPU input, with its tap) on ``hidden``.

    ``hidden`` is the NPU input for ``start = -1``, else the input of layer ``start`` (the
    output of layer ``start - 1`` after its last tap). ``record`` (a list of ``num_layers + 1``
    slots) receives each layer's input and the final hidden state. Returns (last hidden, pooled).
    """
    tap = encoder.wrap_tap(tap) if hasattr(encoder, "wrap_tap") else tap
    token_mask = mask.bool()
    t = lambda site, x: tap(site, x, token_mask)  # noqa: E731
    additive = (~token_mask)[:, None, None, :].to(hidden.dtype) * torch.finfo(hidden.dtype).min
    ints = encoder.int_inputs(tap)
    x = t("embeddings.out", hidden) if start < 0 else hidden
    for i in range(max(start, 0), encoder.num_layers):
        if record is not None:
            record[i] = x
        x = encoder._layer(i, encoder.layers[i], x, additive, t, fused=False, ints=ints)
    if record is not None:
        record[encoder.num_layers] = x
    return x, encoder.pool(x, t, ints)


class QuantizedCodes:
    """A fake-quantized tensor kept as its integer codes and the scale that gives it back bit for bit.

    ``x = codes * scale`` exactly (checked when made): fake quantization itself multiplies the same
    integer-valued floats by the same scale, so int8 codes hold a layer input in a quarter of the
    float32 memory with no change to any later result (a ``-0.0`` comes back as ``0.0``: equal, and
    no sum, product or score downstream differs).
    """

    __slots__ = ("codes", "scale")

    def __init__(self, codes: torch.Tensor, scale):
        self.codes, self.scale = codes, scale

    def tensor(self) -> torch.Tensor:
        return self.codes.to(torch.float32).mul_(self.scale)

    @property
    def nbytes(self) -> int:
        return self.codes.numel() * self.codes.element_size()


class MappedCodes:
    """A NormConv site's output ``gamma * x̂ + beta`` kept as the int8 codes of ``x̂`` it carries (:func:`~bertnpu.quant.int_gemm.carry_codes`).

    :meth:`tensor` makes ``x̂`` from the codes and applies the encoder's site map as the encoder did (the same
    operations on the same values: bit for bit), and carries the codes again for the folded Linears.
    """

    __slots__ = ("codes", "spec", "site")

    def __init__(self, codes: torch.Tensor, spec, site: str):
        self.codes, self.spec, self.site = codes, spec, site

    def tensor(self, encoder) -> torch.Tensor:
        x_hat = self.codes.to(torch.float32)
        if self.spec.offset:
            x_hat.add_(self.spec.offset)
        return carry(encoder.site_maps[self.site][1](x_hat.mul_(self.spec.scale)), self.codes, self.spec)

    @property
    def nbytes(self) -> int:
        return self.codes.numel() * self.codes.element_size()


def compact(x: torch.Tensor, tap, site: str, encoder=None):
    """``x`` (the output of ``site`` under ``tap``) as :class:`QuantizedCodes` (or :class:`MappedCodes`, through
    ``encoder``'s site map) when that is exact, else ``x`` itself."""
    held = carried(x)
    if held is not None and encoder is not None and site in getattr(encoder, "site_maps", {}):
        kept = MappedCodes(held[1], held[0], site)
        return kept if torch.equal(kept.tensor(encoder), x) else x  # checked when kept, as below
    prepared = getattr(tap, "_prepared", None)
    op = prepared(site, x.dtype) if prepared is not None and x.dtype == torch.float32 and x.numel() else None
    if op is None:
        return x  # unquantized here: nothing smaller is exact
    scale = op[1]  # every fake quant is clamp(round(x / scale), lo, hi) * scale (symmetric, affine, per channel)
    codes = torch.div(x, scale).round_()
    lo, hi = float(codes.min()), float(codes.max())
    dtype = next((d for d in (torch.int8, torch.uint8, torch.int16) if torch.iinfo(d).min <= lo and hi <= torch.iinfo(d).max), None)
    if dtype is None:
        return x
    kept = QuantizedCodes(codes.to(dtype), scale)
    # a transformed encoder may map a value after its tap (then x is not codes * scale): keep such a tensor as it is
    return kept if torch.equal(kept.tensor(), x) else x


def _tensor(slot, encoder) -> torch.Tensor:
    if isinstance(slot, MappedCodes):
        return slot.tensor(encoder)
    return slot.tensor() if isinstance(slot, QuantizedCodes) else slot


def _slot_site(i: int) -> str:
    """The site whose tapped output is layer ``i``'s input (slot ``num_layers`` is the last layer's output)."""
    return "embeddings.out" if i == 0 else f"layer.{i - 1}.ffn.layernorm.out"


class LayerCachedEncoder:
    """Embeddings of a fixed sentence list under many taps, reusing the base recipe's early layers.

    ``set_base(encoder, tap)`` fixes the recipe whose layer inputs are kept; ``embed(tap,
    start)`` runs only from layer ``start`` with those inputs (``tap`` must equal the base tap
    before that layer). ``advance(tap, start)`` does the same and makes ``tap`` the new base.

    Memory: the kept layer inputs are the only per-sentence state (``layers + 1`` tensors per
    batch); each is held as int8 (or int16) codes where it is a quantized site's output, exact
    bit for bit (:func:`compact`), and the CPU part's output is recomputed from the token ids.
    """

    def __init__(self, model: LoadedModel, sentences: Sequence[str], batch_size: int = 64, progress: bool = False, desc: str = "encode (layers reused)"):
        self.model, self.progress, self.desc = model, progress, desc
        self.sentences = list(sentences)
        self.probe = SentenceEncoder(model, batch_size=batch_size, progress=False)
        self.batches = self.probe.batches(self.sentences)
        self.encoder: Optional[NpuEncoder] = None
        self.base_tap = None
        self.layer_inputs: Optional[list[list]] = None

    def set_base(self, encoder: NpuEncoder, tap) -> None:
        self.encoder, self.base_tap, self.layer_inputs = encoder, tap, None

    def kept_bytes(self) -> int:
        """Bytes the kept layer inputs take (codes or float32)."""
        slots = [s for batch in self.layer_inputs or () for s in batch if s is not None]
        return sum(s.nbytes if isinstance(s, (QuantizedCodes, MappedCodes)) else s.numel() * s.element_size() for s in slots)

    def _run(self, tap, start: int, record: bool) -> np.ndarray:
        assert self.encoder is not None, "call set_base first"
        if start >= 0 and self.layer_inputs is None:
            self._run(self.base_tap, -1, True)
        layers = self.encoder.num_layers
        out = np.zeros((len(self.sentences), self.model.config.hidden_size), dtype=np.float32)
        if record and self.layer_inputs is None:
            self.layer_inputs = [None] * len(self.batches)
        try:
            with torch.inference_mode():
                for b, batch in enumerate(tqdm(self.batches, desc=self.desc, disable=not self.progress, leave=False)):
                    mask = batch.attention_mask
                    slots = list(self.layer_inputs[b] or [None] * (layers + 1)) if self.layer_inputs is not None else [None] * (layers + 1)
                    x = self.probe.embedding(batch.input_ids, batch.token_type_ids) if start < 0 else _tensor(slots[min(start, layers)], self.encoder)
                    fresh = [None] * (layers + 1) if record else None
                    last, pooled = run_layers(self.encoder, x, mask, tap, start, fresh)
                    out[batch.order] = pool(last, mask, pooled, self.model.pooling.mode).float().numpy()
                    if record:  # in place, batch by batch: the old and new inputs are never all held at once
                        for i in range(max(start + 1, 0), layers + 1):  # slot ``start`` is the base's own input
                            slots[i] = compact(fresh[i], tap, _slot_site(i), self.encoder)
                        self.layer_inputs[b] = slots
        except BaseException:
            if record:
                self.layer_inputs = None  # half advanced: recomputed from the base tap when next needed
            raise
        if record:
            self.base_tap = tap
        release_free_memory()  # as SentenceEncoder: without it a BERT-base plan's heap grew by 0.1 GB a candidate
        return out

    def embed(self, tap, start: int = -1) -> np.ndarray:
        return self._run(tap, start, False)

    def advance(self, tap, start: int = -1) -> np.ndarray:
        return self._run(tap, start, True)
