import json
from pathlib import Path

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


def test_weights_absent_from_the_file_are_refused_not_randomised(tiny_model_dir, tmp_path):
    import shutil

    from safetensors.torch import load_file, save_file

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    tensors = load_file(folder / "model.safetensors")
    del tensors["encoder.layer.2.output.dense.weight"]
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(BertnpuError, match="lack 1 tensor\\(s\\) such as 'encoder.layer.2.output.dense.weight'"):
        load_model(str(folder))


def test_hub_cache_layout_links_are_inside(tiny_model_dir, tmp_path):
    """A hub snapshot links its files to ../../blobs: inside the repository's cache folder, so accepted."""
    repo = tmp_path / "models--x--tiny"
    snap = repo / "snapshots" / "abc"
    snap.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for f in tiny_model_dir.iterdir():
        (repo / "blobs" / f.name).write_bytes(f.read_bytes())
        (snap / f.name).symlink_to(Path("../../blobs") / f.name)
    from bertnpu.model.load import _hub_cache_root, check_files_inside

    check_files_inside(snap, _hub_cache_root(snap))
    with pytest.raises(BertnpuError, match="links outside the model folder"):
        check_files_inside(snap, snap)
