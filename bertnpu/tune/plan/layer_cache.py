"""Running the NPU part layer by layer, reusing the hidden states before the layer a candidate changes."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from ...model.load import LoadedModel
from ...model.npu_part import NpuEncoder
from ...model.pooling import pool
from ...model.sentence_encoder import SentenceEncoder


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


class LayerCachedEncoder:
    """Embeddings of a fixed sentence list under many taps, reusing the base recipe's early layers.

    ``set_base(encoder, tap)`` fixes the recipe whose layer inputs are kept; ``embed(tap,
    start)`` runs only from layer ``start`` with those inputs (``tap`` must equal the base tap
    before that layer). ``advance(tap, start)`` does the same and makes ``tap`` the new base.
    """

    def __init__(self, model: LoadedModel, sentences: Sequence[str], batch_size: int = 64):
        self.model = model
        self.sentences = list(sentences)
        probe = SentenceEncoder(model, batch_size=batch_size, progress=False)
        self.batches = probe.batches(self.sentences)
        with torch.inference_mode():
            self.inputs = [(probe.embedding(b.input_ids, b.token_type_ids), b.attention_mask, b.order) for b in self.batches]
        self.encoder: Optional[NpuEncoder] = None
        self.base_tap = None
        self.layer_inputs: Optional[list[list]] = None

    def set_base(self, encoder: NpuEncoder, tap) -> None:
        self.encoder, self.base_tap, self.layer_inputs = encoder, tap, None

    def _run(self, tap, start: int, record: bool) -> np.ndarray:
        assert self.encoder is not None, "call set_base first"
        if start >= 0 and self.layer_inputs is None:
            self._run(self.base_tap, -1, True)
        out = np.zeros((len(self.sentences), self.model.config.hidden_size), dtype=np.float32)
        new_inputs = []
        with torch.inference_mode():
            for b, (hidden, mask, order) in enumerate(self.inputs):
                slots = list(self.layer_inputs[b]) if self.layer_inputs is not None else [None] * (self.encoder.num_layers + 1)
                x = hidden if start < 0 else slots[min(start, self.encoder.num_layers)]
                last, pooled = run_layers(self.encoder, x, mask, tap, start, slots if record else None)
                out[order] = pool(last, mask, pooled, self.model.pooling.mode).float().numpy()
                new_inputs.append(slots)
        if record:
            self.layer_inputs, self.base_tap = new_inputs, tap
        return out

    def embed(self, tap, start: int = -1) -> np.ndarray:
        return self._run(tap, start, False)

    def advance(self, tap, start: int = -1) -> np.ndarray:
        return self._run(tap, start, True)
