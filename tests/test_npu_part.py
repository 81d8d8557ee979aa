"""NpuEncoder: every site tapped once, in the listed order, with the documented shapes; taps act; padding never leaks."""

import torch

from bertnpu.model.cpu_part import CpuEmbedding
from bertnpu.model.npu_part import NpuEncoder
from bertnpu.quant.sites import list_sites

SENTENCES = ["A man is playing a flute.", "Two dogs run on the wet sand near the sea at dawn."]


def _inputs(model, sentences=SENTENCES):
    tok = model.tokenizer(sentences, padding=True, return_tensors="pt")
    with torch.no_grad():
        x = CpuEmbedding.from_bert(model.bert)(tok["input_ids"], tok["token_type_ids"])
    return x, tok["attention_mask"]


def test_sites_are_tapped_once_in_listed_order_with_their_layout(tiny_model):
    x, mask = _inputs(tiny_model)
    seen = []

    def tap(site, value, token_mask):
        seen.append((site, tuple(value.shape)))
        assert token_mask.shape == mask.shape and token_mask.dtype == torch.bool
        return value

    with torch.no_grad():
        NpuEncoder(tiny_model.bert)(x, mask, tap=tap)
    sites = list_sites(tiny_model)
    assert [s for s, _ in seen] == [s.name for s in sites]
    b, s = mask.shape
    cfg = tiny_model.config
    for (name, shape), info in zip(seen, sites):
        if info.layout == "attention":
            assert shape == (b, cfg.num_attention_heads, s, s), name
        elif name.startswith("pooler"):
            assert shape == (b, cfg.hidden_size), name
        else:
            assert shape[:2] == (b, s) and shape[2] in (cfg.hidden_size, cfg.intermediate_size), name


def test_softmax_rows_sum_to_one_over_real_tokens_only(tiny_model):
    x, mask = _inputs(tiny_model)
    probs = {}

    def tap(site, value, token_mask):
        if site.endswith("attention.softmax.out"):
            probs[site] = value.clone()
        return value

    with torch.no_grad():
        NpuEncoder(tiny_model.bert)(x, mask, tap=tap)
    short = int(mask[0].sum())
    for value in probs.values():
        assert torch.allclose(value.sum(-1), torch.ones_like(value.sum(-1)), atol=1e-6)
        assert value[0, :, :, short:].abs().max().item() < 1e-12  # padded keys get no weight


def test_a_tap_changes_what_follows(tiny_model):
    x, mask = _inputs(tiny_model)
    enc = NpuEncoder(tiny_model.bert)
    with torch.no_grad():
        _, pooled = enc(x, mask, tap=lambda site, v, m: torch.zeros_like(v) if site == "pooler.dense.out" else v)
        last, _ = enc(x, mask, tap=lambda site, v, m: v * 0 if site == f"layer.{tiny_model.config.num_hidden_layers - 1}.ffn.residual" else v)
    assert torch.equal(pooled, torch.zeros_like(pooled))  # tanh(0) = 0
    ln = tiny_model.bert.encoder.layer[-1].output.LayerNorm
    assert torch.allclose(last, ln.bias.expand_as(last), atol=1e-5)  # LayerNorm of zeros is its bias


def test_padding_never_changes_a_sentence(tiny_model):
    enc = NpuEncoder(tiny_model.bert)
    x, mask = _inputs(tiny_model)
    alone_x, alone_mask = _inputs(tiny_model, SENTENCES[:1])
    ident = lambda site, v, m: v  # noqa: E731 - the op-by-op path
    with torch.no_grad():
        for tap in (None, ident):
            batched, _ = enc(x, mask, tap=tap)
            alone, _ = enc(alone_x, alone_mask, tap=tap)
            n = int(alone_mask.sum())
            assert (batched[0, :n] - alone[0, :n]).abs().max().item() <= 1e-5


def test_shares_the_models_parameters(tiny_model):
    enc = NpuEncoder(tiny_model.bert)
    assert enc.layers[0].attention.self.query.weight.data_ptr() == tiny_model.bert.encoder.layer[0].attention.self.query.weight.data_ptr()
    assert enc.num_layers == tiny_model.config.num_hidden_layers and enc.eps == tiny_model.config.layer_norm_eps


def test_forward_from_a_layer_input_equals_the_whole_forward(tiny_model):
    """``start``: fed the tapped output of layer ``start - 1``, the remaining layers give the whole forward's result."""
    x, mask = _inputs(tiny_model)
    enc = NpuEncoder(tiny_model.bert)
    kept = {}

    def tap(site, value, token_mask):
        value = value * 1.01 if site.endswith("ffn.residual") else value  # a tap that acts, as a simulation's does
        kept[site] = value
        return value

    with torch.no_grad():
        whole, pooled = enc(x, mask, tap=tap)
        last = enc.num_layers - 1
        rest, rest_pooled = enc(kept[f"layer.{last - 1}.ffn.layernorm.out"], mask, tap=tap, start=last)
        only_pooler, pooler_pooled = enc(whole, mask, tap=tap, start=enc.num_layers)
    assert torch.equal(rest, whole) and torch.equal(rest_pooled, pooled)
    assert torch.equal(only_pooler, whole) and torch.equal(pooler_pooled, pooled)
