"""The NPU half of the split: BERT's encoder (and pooler) written out op by op.

Every tensor that the NPU would quantize passes through a *tap*, a callable
``tap(site, x, token_mask) -> x`` named by a stable site name (see :mod:`bertnpu.sites`).
Observers use taps to collect activation statistics; the INT8 simulator uses them to
fake-quantize. With no tap the forward takes a fused attention path and equals
Hugging Face's ``BertModel`` (tested to 1e-5).

A Linear whose weight the simulator holds as integers (``int_weights``) and whose input site the
tap quantizes to 8 bits (``tap.int_input``) runs as an integer GEMM through the kernel the caller
put in ``int_gemm`` (the simulator in :mod:`bertnpu.quant` decides whether and which); every other
Linear runs in float. This module imports nothing from ``quant``: the model layer sits below it.
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

Tap = Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor]


def with_int_inputs(tap: Tap, int_input: Optional[Callable]) -> Tap:
    """``tap`` marked with ``int_input`` (``site -> IntInput or None``), so the Linears after it may run as integer GEMMs.

    For a wrapper tap that returns, on every site ``int_input`` names, exactly what the quantizing
    tap returned (e.g. one that also records or compares): the wrapper then computes what the
    quantizing tap alone computes.
    """
    if int_input is not None:
        tap.int_input = int_input  # type: ignore[attr-defined]
    return tap


class NpuEncoder(torch.nn.Module):
    """Encoder + pooler of a ``transformers.BertModel`` taking the CPU part's output.

    Shares (does not copy) the BertModel's parameters; use ``copy.deepcopy`` for a
    private copy to modify (the INT8 simulator does).
    """

    def __init__(self, bert):
        super().__init__()
        cfg = bert.config
        self.layers = bert.encoder.layer
        self.pooler = getattr(bert, "pooler", None)
        self.num_heads = int(cfg.num_attention_heads)
        self.head_dim = int(cfg.hidden_size // cfg.num_attention_heads)
        self.eps = float(cfg.layer_norm_eps)
        from transformers.activations import ACT2FN

        self.act = ACT2FN[cfg.hidden_act]
        # (layer, linear path) -> IntWeight, set by the simulator's weight quantization; (-1, "pooler.dense") for the pooler
        self.int_weights: dict = {}
        # the integer-GEMM kernel (``codes(x, spec)``, ``linear(codes, spec, weight, bias)``) chosen by the caller that
        # quantized the weights; None: every Linear in float
        self.int_gemm = None

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def forward(
        self, hidden: torch.Tensor, attention_mask: torch.Tensor, tap: Optional[Tap] = None, start: int = 0
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Args: hidden ``[B, S, H]`` (CPU embedding output), attention_mask ``[B, S]`` (1 = token).
        ``start`` > 0: ``hidden`` is layer ``start``'s input (the tapped output of layer ``start - 1``),
        and only layers ``start`` on run (``num_layers``: the pooler alone).

        Returns the last hidden state ``[B, S, H]`` and the pooled output ``[B, H]`` (None
        when the model has no pooler).
        """
        token_mask = attention_mask.bool()
        t = (lambda site, x: tap(site, x, token_mask)) if tap is not None else (lambda site, x: x)
        # Additive mask over keys, as BERT adds it to the attention scores.
        additive = (~token_mask)[:, None, None, :].to(hidden.dtype) * torch.finfo(hidden.dtype).min
        ints = self.int_inputs(tap)
        x = t("embeddings.out", hidden) if start == 0 else hidden
        for i in range(start, len(self.layers)):
            x = self._layer(i, self.layers[i], x, additive, t, fused=tap is None, ints=ints)
        return x, self.pool(x, t, ints)

    def pool(self, x: torch.Tensor, t, ints=None) -> Optional[torch.Tensor]:
        """The pooler's output on the last hidden state ``x`` (None without a pooler); ``t`` taps as in :meth:`forward`."""
        if self.pooler is None:
            return None
        first = x[:, 0]
        source = f"layer.{len(self.layers) - 1}.ffn.layernorm.out" if len(self.layers) else "embeddings.out"
        dense = t("pooler.dense.out", self._linear((-1, "pooler.dense"), self.pooler.dense, first, self._codes(first, ints, source)))
        return t("pooler.out", torch.tanh(dense))

    def int_inputs(self, tap) -> Optional[Callable]:
        """``site -> IntInput or None`` when Linears may run as integer GEMMs under ``tap``, else None."""
        ask = getattr(tap, "int_input", None)
        if not self.int_weights or self.int_gemm is None or ask is None:
            return None
        return ask

    def _codes(self, x: torch.Tensor, ints, site: str):
        """``(int8 codes, IntInput)`` of ``x``, the tapped output of ``site``, or None (the float path)."""
        if ints is None or x.dtype != torch.float32 or x.device.type != "cpu":
            return None
        spec = ints(site)
        if spec is None:
            return None
        return self.int_gemm.codes(x, spec), spec

    def _linear(self, key: tuple, linear: torch.nn.Linear, x: torch.Tensor, codes) -> torch.Tensor:
        weight = self.int_weights.get(key) if codes is not None else None
        if weight is None:
            return linear(x)
        return self.int_gemm.linear(codes[0], codes[1], weight, linear.bias if weight.bias is None else weight.bias)

    def _layer(self, i: int, layer, x: torch.Tensor, additive: torch.Tensor, t, fused: bool, ints=None) -> torch.Tensor:
        p = f"layer.{i}."
        att = layer.attention.self
        b, s, h = x.shape
        xc = self._codes(x, ints, f"layer.{i - 1}.ffn.layernorm.out" if i else "embeddings.out")
        q = t(p + "attention.query.out", self._linear((i, "attention.self.query"), att.query, x, xc))
        k = t(p + "attention.key.out", self._linear((i, "attention.self.key"), att.key, x, xc))
        v = t(p + "attention.value.out", self._linear((i, "attention.self.value"), att.value, x, xc))
        q, k, v = (y.view(b, s, self.num_heads, self.head_dim).transpose(1, 2) for y in (q, k, v))
        if fused:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=additive)
        else:
            scores = t(p + "attention.scores", (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim))
            probs = t(p + "attention.softmax.out", torch.softmax(scores + additive, dim=-1))
            ctx = probs @ v
        ctx = t(p + "attention.output.in", ctx.transpose(1, 2).reshape(b, s, h))
        out = layer.attention.output
        a = t(p + "attention.output.out", self._linear((i, "attention.output.dense"), out.dense, ctx, self._codes(ctx, ints, p + "attention.output.in")))
        a = t(p + "attention.residual", a + x)
        a = t(p + "attention.layernorm.out", F.layer_norm(a, (h,), out.LayerNorm.weight, out.LayerNorm.bias, self.eps))
        inter = t(p + "ffn.intermediate.out", self._linear((i, "intermediate.dense"), layer.intermediate.dense, a, self._codes(a, ints, p + "attention.layernorm.out")))
        inter = t(p + "ffn.gelu.out", self.act(inter))
        ffn = layer.output
        y = t(p + "ffn.output.out", self._linear((i, "output.dense"), ffn.dense, inter, self._codes(inter, ints, p + "ffn.gelu.out")))
        y = t(p + "ffn.residual", y + a)
        return t(p + "ffn.layernorm.out", F.layer_norm(y, (h,), ffn.LayerNorm.weight, ffn.LayerNorm.bias, self.eps))
