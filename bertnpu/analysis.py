"""What the model is and where each part runs (CPU vs NPU)."""

from __future__ import annotations

from typing import Any

from .model import LoadedModel


def model_summary(model: LoadedModel) -> dict[str, Any]:
    """Architecture figures and the CPU/NPU placement of a loaded model, as a flat-ish dict.

    Example:
        >>> model_summary(load_model())["layers"]
        6
    """
    cfg = model.config
    bert = model.bert
    emb_params = sum(p.numel() for p in bert.embeddings.parameters())
    enc_params = sum(p.numel() for p in bert.encoder.parameters())
    pool_params = sum(p.numel() for p in bert.pooler.parameters()) if bert.pooler is not None else 0
    return {
        "model": model.name,
        "path": str(model.path),
        "architecture": (getattr(cfg, "architectures", None) or ["BertModel"])[0],
        "model_type": cfg.model_type,
        "hidden_size": cfg.hidden_size,
        "layers": cfg.num_hidden_layers,
        "heads": cfg.num_attention_heads,
        "intermediate_size": cfg.intermediate_size,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": cfg.max_position_embeddings,
        "max_seq_length": model.max_seq_length,
        "hidden_act": cfg.hidden_act,
        "layer_norm_eps": cfg.layer_norm_eps,
        "pooling": model.pooling.mode,
        "normalize": model.pooling.normalize,
        "pooling_source": model.pooling.source,
        "cpu": {
            "ops": ["word embedding lookup", "token-type embedding lookup", "position embedding lookup", "sum", "LayerNorm"],
            "parameters": emb_params,
            "why": "the NPU cannot run embedding lookups; Mobilint's runtime computes them from weight_dict.pth",
        },
        "npu": {
            "ops": [f"{cfg.num_hidden_layers} x encoder layer (Q/K/V Linear, attention matmuls, softmax, output Linear, residual, LayerNorm, FFN Linear, {cfg.hidden_act}, Linear, residual, LayerNorm)"]
            + (["pooler (Linear + tanh)"] if bert.pooler is not None else []),
            "parameters": enc_params + pool_params,
            "input": f"[1, seq_len, {cfg.hidden_size}] float32 embeddings + attention mask",
        },
        "sentence_pooling_on": "cpu",
    }


def format_summary(summary: dict[str, Any]) -> str:
    """Human-readable text of :func:`model_summary`."""
    s = summary
    lines = [
        f"model        {s['model']} ({s['architecture']}, {s['path']})",
        f"size         hidden {s['hidden_size']}, layers {s['layers']}, heads {s['heads']}, FFN {s['intermediate_size']}, vocab {s['vocab_size']}",
        f"sequence     max {s['max_seq_length']} tokens (positions {s['max_position_embeddings']})",
        f"pooling      {s['pooling']}{' + normalize' if s['normalize'] else ''} ({s['pooling_source']})",
        f"CPU part     {', '.join(s['cpu']['ops'])}: {s['cpu']['parameters']:,} parameters",
        f"             ({s['cpu']['why']})",
        f"NPU part     {'; '.join(s['npu']['ops'])}: {s['npu']['parameters']:,} parameters",
        f"NPU input    {s['npu']['input']}",
    ]
    return "\n".join(lines)
