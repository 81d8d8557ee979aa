import json

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.model.load import Pooling, load_model, read_pooling


def test_default_model_is_offline_minilm(default_model):
    cfg = default_model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (384, 6, 12)
    assert default_model.pooling == Pooling("mean", True, "1_Pooling/config.json")
    assert default_model.max_seq_length == 256  # sentence_bert_config.json
    assert not default_model.bert.training


def test_folder_without_st_config_means_mean_pooling_and_says_so(tiny_model):
    assert tiny_model.pooling.mode == "mean"
    assert "assumed" in tiny_model.pooling.source
    assert tiny_model.max_seq_length == 77  # capped by the position table


@pytest.mark.parametrize("key,mode", [("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_tokens", "mean")])
def test_read_pooling(tmp_path, key, mode):
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({key: True}))
    assert read_pooling(tmp_path) == Pooling(mode, False, "1_Pooling/config.json")


def test_pooling_override(tiny_model_dir):
    assert load_model(str(tiny_model_dir), pooling="cls").pooling.mode == "cls"
    with pytest.raises(BertnpuError, match="Unknown pooling 'avg'"):
        load_model(str(tiny_model_dir), pooling="avg")


def test_missing_model_path():
    with pytest.raises(BertnpuError, match="Model folder './no/such/model' does not exist"):
        load_model("./no/such/model")


def test_not_bert_family_names_the_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]}))
    with pytest.raises(BertnpuError, match="'gpt2' model \\(GPT2LMHeadModel\\), not BERT-family"):
        load_model(str(tmp_path))


def test_hub_id_offline_is_one_sentence(monkeypatch):
    import bertnpu.model.hub

    monkeypatch.setattr(bertnpu.model.hub, "hub_reachable", lambda: False)
    with pytest.raises(BertnpuError, match="hub cannot be reached"):
        load_model("sentence-transformers-testing/stsb-bert-tiny-safetensors")


def test_trust_remote_code_is_off_by_default(tiny_model_dir, monkeypatch):
    import transformers

    seen = []
    real = transformers.AutoConfig.from_pretrained

    def spy(*args, **kwargs):
        seen.append(kwargs.get("trust_remote_code"))
        return real(*args, **kwargs)

    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", spy)
    load_model(str(tiny_model_dir))
    assert seen and set(seen) == {False}
    seen.clear()
    load_model(str(tiny_model_dir), trust_remote_code=True)
    assert seen and set(seen) == {True}
