"""What the model is and where each part runs (CPU vs NPU)."""

from __future__ import annotations

from typing import Any

from .load import LoadedModel


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


class _SplitModel:
    """Builds the exportable CPU + NPU module of a model (kept out of import time: torch.export is heavy)."""

    @staticmethod
    def build(model: LoadedModel):
        import torch

        from .npu_part import NpuEncoder
        from .cpu_part import CpuEmbedding

        class SplitBert(torch.nn.Module):
            def __init__(self, bert):
                super().__init__()
                self.cpu_part = CpuEmbedding.from_bert(bert)
                self.npu = NpuEncoder(bert)

            def forward(self, input_ids, token_type_ids, attention_mask):
                # an identity tap selects the op-by-op path, so attention shows as matmul/softmax
                return self.npu(self.cpu_part(input_ids, token_type_ids), attention_mask, tap=lambda site, x, mask: x)

        return SplitBert(model.bert).eval()


_SKIP_OPS = ("_assert_tensor_metadata", "_assert_scalar", "sym_size")


def op_inventory(model: LoadedModel, sentence: str = "Hello, my dog is cute") -> list[dict]:
    """Every op of the split model (torch.export, aten level) with module path, block, placement, shape and FLOPs.

    Placement: ops of the embedding part and of attention-mask preparation run on the CPU
    (Mobilint's runtime does them); everything else is the NPU part.
    """
    import torch

    tok = model.tokenizer(sentence, return_tensors="pt")
    args = (tok["input_ids"], tok["token_type_ids"], tok["attention_mask"])
    with torch.no_grad():
        graph = torch.export.export(_SplitModel.build(model), args).graph
    mask_only: set = set()
    rows: list[dict] = []
    block = "npu input"
    for node in graph.nodes:
        if node.op == "placeholder":
            if node.name == "attention_mask":
                mask_only.add(node)
            continue
        if node.op != "call_function" or any(s in str(node.target) for s in _SKIP_OPS):
            continue
        inputs = [a for a in node.all_input_nodes if a.op != "get_attr" and not a.name.startswith(("p_", "b_", "c_"))]
        stack = node.meta.get("nn_module_stack") or {}
        path = list(stack.values())[-1][0] if stack else ""
        value = node.meta.get("val")
        shape = tuple(int(s) for s in value.shape) if hasattr(value, "shape") else ()
        if inputs and all(a in mask_only for a in inputs):
            mask_only.add(node)
            blk, place = "attention mask", "CPU"
        elif path.startswith("cpu_part"):
            blk, place = "embeddings", "CPU"
        else:
            if path.startswith("npu.layers."):
                block = "layer." + path.split(".")[2]
            elif path.startswith("npu.pooler"):
                block = "pooler"
            blk, place = block, "NPU"
        op = str(node.target).replace("aten.", "").split(".")[0]
        rows.append({"index": len(rows), "op": op, "module": path, "block": blk, "placement": place, "shape": list(shape), "flops": _flops(node, op, shape)})
    return rows


def _flops(node, op: str, shape: tuple) -> int:
    """Multiply-add FLOPs of matrix products; other ops count 0."""
    if op in ("linear", "matmul", "mm", "bmm", "addmm") and shape:
        first = node.args[0].meta.get("val") if hasattr(node.args[0], "meta") else None
        k = int(first.shape[-1]) if first is not None else 0
        out = 1
        for s in shape:
            out *= s
        return 2 * out * k
    return 0


def block_summary(model: LoadedModel, rows: list[dict]) -> list[dict]:
    """Per block: placement, op count, parameters and FLOPs (at the inventory's sentence length)."""
    bert = model.bert
    params = {"embeddings": sum(p.numel() for p in bert.embeddings.parameters()), "attention mask": 0}
    for i, layer in enumerate(bert.encoder.layer):
        params[f"layer.{i}"] = sum(p.numel() for p in layer.parameters())
    if bert.pooler is not None:
        params["pooler"] = sum(p.numel() for p in bert.pooler.parameters())
    blocks: dict[str, dict] = {}
    for r in rows:
        b = blocks.setdefault(r["block"], {"block": r["block"], "placement": r["placement"], "ops": 0, "flops": 0, "parameters": params.get(r["block"], 0)})
        b["ops"] += 1
        b["flops"] += r["flops"]
    return list(blocks.values())


def verify_split(model: LoadedModel, sentences: list[str]) -> float:
    """Max abs difference, over real tokens of a padded batch, between the CPU+NPU split and the full Hugging Face model."""
    import torch

    from .npu_part import NpuEncoder
    from .cpu_part import CpuEmbedding

    tok = model.tokenizer(sentences, padding=True, truncation=True, max_length=model.max_seq_length, return_tensors="pt")
    with torch.no_grad():
        ref = model.bert(**tok).last_hidden_state
        last, _ = NpuEncoder(model.bert)(CpuEmbedding.from_bert(model.bert)(tok["input_ids"], tok["token_type_ids"]), tok["attention_mask"])
    return float((last - ref)[tok["attention_mask"].bool()].abs().max())
