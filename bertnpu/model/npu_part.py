"""The NPU half of the split: BERT's encoder (and pooler) written out op by op.

Every tensor that the NPU would quantize passes through a *tap*, a callable
``tap(site, x, token_mask) -> x`` named by a stable site name (see :mod:`bertnpu.sites`).
Observers use taps to collect activation statistics; the INT8 simulator uses them to
fake-quantize. With no tap the forward takes a fused attention path and equals
Hugging Face's ``BertModel`` (tested to 1e-5).
"""

from __future__ import annotations

import math
from typing import Callable, Optional

import torch
import torch.nn.functional as F

Tap = Callable[[str, torch.Tensor, torch.Tensor], torch.Tensor]


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
        x = t("embeddings.out", hidden) if start == 0 else hidden
        for i in range(start, len(self.layers)):
            x = self._layer(i, self.layers[i], x, additive, t, fused=tap is None)
        pooled = None
        if self.pooler is not None:
            dense = t("pooler.dense.out", self.pooler.dense(x[:, 0]))
            pooled = t("pooler.out", torch.tanh(dense))
        return x, pooled

    def _layer(self, i: int, layer, x: torch.Tensor, additive: torch.Tensor, t, fused: bool) -> torch.Tensor:
        p = f"layer.{i}."
        att = layer.attention.self
        b, s, h = x.shape
        q = t(p + "attention.query.out", att.query(x))
        k = t(p + "attention.key.out", att.key(x))
        v = t(p + "attention.value.out", att.value(x))
        q, k, v = (y.view(b, s, self.num_heads, self.head_dim).transpose(1, 2) for y in (q, k, v))
        if fused:
            ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=additive)
        else:
            scores = t(p + "attention.scores", (q @ k.transpose(-1, -2)) / math.sqrt(self.head_dim))
            probs = t(p + "attention.softmax.out", torch.softmax(scores + additive, dim=-1))
            ctx = probs @ v
        ctx = t(p + "attention.output.in", ctx.transpose(1, 2).reshape(b, s, h))
        out = layer.attention.output
        a = t(p + "attention.output.out", out.dense(ctx))
        a = t(p + "attention.residual", a + x)
        a = t(p + "attention.layernorm.out", F.layer_norm(a, (h,), out.LayerNorm.weight, out.LayerNorm.bias, self.eps))
        inter = t(p + "ffn.intermediate.out", layer.intermediate.dense(a))
        inter = t(p + "ffn.gelu.out", self.act(inter))
        ffn = layer.output
        y = t(p + "ffn.output.out", ffn.dense(inter))
        y = t(p + "ffn.residual", y + a)
        return t(p + "ffn.layernorm.out", F.layer_norm(y, (h,), ffn.LayerNorm.weight, ffn.LayerNorm.bias, self.eps))
