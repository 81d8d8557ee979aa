"""Quantization sites of the NPU part: every tensor the NPU would quantize, with a stable name."""

from __future__ import annotations

from dataclasses import dataclass

# (suffix, layout, description); layout "token" = [B, S, C], "attention" = [B, heads, S, S]
LAYER_SITES = (
    ("attention.query.out", "token", "query Linear output (attention score matmul input)"),
    ("attention.key.out", "token", "key Linear output (attention score matmul input)"),
    ("attention.value.out", "token", "value Linear output (context matmul input)"),
    ("attention.scores", "attention", "scaled q.k^T (softmax input)"),
    ("attention.softmax.out", "attention", "softmax output (context matmul input)"),
    ("attention.output.in", "token", "attention context, input of the attention output Linear"),
    ("attention.output.out", "token", "attention output Linear output"),
    ("attention.residual", "token", "residual sum: attention output + layer input"),
    ("attention.layernorm.out", "token", "LayerNorm output, input of the FFN intermediate Linear"),
    ("ffn.intermediate.out", "token", "FFN intermediate Linear output (GELU input)"),
    ("ffn.gelu.out", "token", "GELU output, input of the FFN output Linear"),
    ("ffn.output.out", "token", "FFN output Linear output"),
    ("ffn.residual", "token", "residual sum: FFN output + attention LayerNorm output"),
    ("ffn.layernorm.out", "token", "LayerNorm output: the layer's hidden state"),
)
# the sites whose output is the input of a quantized Linear (bertnpu.model.npu_part asks their int8 codes): the layer
# input (embeddings.out, a layer's ffn.layernorm.out), the attention context, the attention LayerNorm and the GELU
GEMM_INPUT_ROLES = ("embeddings.out", "ffn.layernorm.out", "attention.output.in", "attention.layernorm.out", "ffn.gelu.out")
ROLES = ("cls", "sep", "content")
# Linear layers whose weights the NPU quantizes, per encoder layer (module paths under BertLayer)
LAYER_LINEARS = ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense", "intermediate.dense", "output.dense")


@dataclass(frozen=True)
class SiteInfo:
    """One quantization site. ``layer`` is -1 outside the encoder layers; ``role`` is the name without the layer prefix."""

    name: str
    layer: int
    role: str
    layout: str
    description: str


def list_sites(model_or_layers, has_pooler: bool = True) -> list[SiteInfo]:
    """All sites in forward order, of a :class:`~bertnpu.model.LoadedModel` or of ``num_layers`` layers.

    Layer ``i``'s query/key/value Linears read ``embeddings.out`` (i = 0) or
    ``layer.{i-1}.ffn.layernorm.out``; the last ``ffn.layernorm.out`` is the final hidden state.

    Example:
        >>> [s.name for s in list_sites(1, False)][:3]
        ['embeddings.out', 'layer.0.attention.query.out', 'layer.0.attention.key.out']
    """
    if not isinstance(model_or_layers, int):
        return list_sites(model_or_layers.config.num_hidden_layers, model_or_layers.bert.pooler is not None)
    num_layers = model_or_layers
    sites = [SiteInfo("embeddings.out", -1, "embeddings.out", "token", "CPU embedding output: the NPU input, read by layer 0's query/key/value Linears")]
    for i in range(num_layers):
        for suffix, layout, desc in LAYER_SITES:
            if suffix == "ffn.layernorm.out":
                desc = desc + (" (final hidden state)" if i == num_layers - 1 else f", read by layer {i + 1}'s query/key/value Linears")
            sites.append(SiteInfo(f"layer.{i}.{suffix}", i, suffix, layout, desc))
    if has_pooler:
        sites.append(SiteInfo("pooler.dense.out", -1, "pooler.dense.out", "token", "pooler Linear output on [CLS] (tanh input)"))
        sites.append(SiteInfo("pooler.out", -1, "pooler.out", "token", "pooled output (tanh), BERT's pooler_output"))
    return sites


def sites_of(model) -> list[SiteInfo]:
    """Sites of a :class:`~bertnpu.model.LoadedModel` (same as ``list_sites(model)``)."""
    return list_sites(model)


def site_start(site: str, num_layers: int) -> int:
    """The first layer a site's change affects (``-1``: the NPU input; ``num_layers``: the pooler)."""
    if site == "embeddings.out":
        return -1
    if site.startswith("layer."):
        return int(site.split(".")[1])
    return num_layers
