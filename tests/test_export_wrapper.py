"""The module handed to qbcompiler returns exactly the tensor the pooling needs, checked against Hugging Face's BertModel."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from bertnpu.device.export_wrapper import CompiledOutput, PoolingReadyBert, compiled_output
from bertnpu.errors import BertnpuError
from bertnpu.model.load import load_model


@pytest.fixture(scope="module")
def hf_bert(tiny_model_dir):
    """The same checkpoint loaded by transformers alone (an implementation independent of bertnpu)."""
    from transformers import BertModel

    return BertModel.from_pretrained(str(tiny_model_dir)).eval()


def _inputs(model, text="A man is playing a guitar, slowly."):
    enc = model.tokenizer(text, return_tensors="pt")
    return enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]


@pytest.mark.parametrize("pooling", ["mean", "cls", "max"])
def test_token_poolings_get_the_last_hidden_state(tiny_model_dir, hf_bert, pooling):
    model = load_model(str(tiny_model_dir), pooling=pooling)
    wrapper = PoolingReadyBert(model)
    ids, mask, types = _inputs(model)
    with torch.no_grad():
        got = wrapper(ids, mask, types)
        want = hf_bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    assert got.shape == (1, ids.shape[1], 36)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert wrapper.output == CompiledOutput("last_hidden_state", 36, pooling) == compiled_output(model)
    assert wrapper.bert is model.bert  # shares the parameters, no copy


def test_pooler_pooling_gets_the_pooler_output(tiny_model_dir, hf_bert):
    model = load_model(str(tiny_model_dir), pooling="pooler")
    ids, mask, types = _inputs(model)
    with torch.no_grad():
        got = PoolingReadyBert(model)(ids, mask, types)
        want = hf_bert(input_ids=ids, attention_mask=mask, token_type_ids=types).pooler_output
    # the pooler by hand: tanh(W h_CLS + b)
    with torch.no_grad():
        cls = hf_bert(input_ids=ids, attention_mask=mask, token_type_ids=types).last_hidden_state[:, 0]
        by_hand = torch.tanh(cls @ hf_bert.pooler.dense.weight.T + hf_bert.pooler.dense.bias)
    assert got.shape == (1, 36)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    torch.testing.assert_close(got, by_hand, rtol=0, atol=1e-5)
    assert compiled_output(model) == CompiledOutput("pooler_output", 36, "pooler")


def test_pooler_pooling_without_a_pooler_is_one_sentence(tiny_model_dir):
    from transformers import BertModel

    model = load_model(str(tiny_model_dir), pooling="pooler")
    no_pooler = dataclasses.replace(model, bert=BertModel(model.config, add_pooling_layer=False).eval())
    with pytest.raises(BertnpuError) as info:
        PoolingReadyBert(no_pooler)
    assert str(info.value) == (f"Pooling 'pooler' needs BERT's pooler, which {model.name!r} does not have; "
                               "load it with --pooling mean (or cls/max).")


def test_shape_text_description_and_matching():
    tokens = CompiledOutput("last_hidden_state", 384, "mean")
    pooled = CompiledOutput("pooler_output", 128, "pooler")
    assert tokens.shape_text == "[1, seq_len, 384]" and pooled.shape_text == "[1, 128]"
    assert tokens.describe() == "token states [1, seq_len, 384] (last_hidden_state), which bertnpu mean-pools on the CPU"
    assert pooled.describe() == "BERT's pooler output [1, 128] (pooler_output), the sentence vector as is"
    # leading 1s (batch, extra NPU dims) aside, the shape must be the tensor's
    assert tokens.matches((1, 9, 384), 9) and tokens.matches((9, 384), 9) and tokens.matches((1, 1, 9, 384), 9)
    assert not tokens.matches((1, 9, 384), 8) and not tokens.matches((1, 384), 9) and not tokens.matches((1, 9, 128), 9)
    assert pooled.matches((1, 128), 5) and pooled.matches((128,), 5) and not pooled.matches((1, 5, 128), 5)
    assert CompiledOutput.from_dict(tokens.to_dict()) == tokens and CompiledOutput.from_dict(pooled.to_dict()) == pooled
