"""A model folder's config.json, modules.json and pooling config under fuzzing.

Property: the reader returns what the files say (pooling mode and normalization; the config's
sizes) or raises one BertnpuError sentence; never another exception.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from bertnpu.errors import BertnpuError
from bertnpu.model.load import check_model_config, load_model, read_pooling
from fuzz_json import assert_one_sentence, json_values, mutated, paths_of, strict_loads

ROOT = Path(tempfile.mkdtemp(prefix="bertnpu-fuzz-load-"))
MODULES = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
           {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
           {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
POOLING = {"word_embedding_dimension": 384, "pooling_mode_cls_token": False, "pooling_mode_mean_tokens": True, "pooling_mode_max_tokens": False,
           "pooling_mode_mean_sqrt_len_tokens": False}
CONFIG = {"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 36, "num_hidden_layers": 3, "num_attention_heads": 3,
          "intermediate_size": 70, "max_position_embeddings": 77, "type_vocab_size": 3, "vocab_size": 30522, "layer_norm_eps": 1e-7,
          "hidden_act": "gelu", "position_embedding_type": "absolute"}
NAMES = {str(p[-1]) for p in paths_of(MODULES) + paths_of(POOLING) + paths_of(CONFIG)} | {"modules.json", "config.json", "pooling"}


def _expected_pooling(modules: list, cfg: dict) -> tuple[str, bool]:
    """sentence-transformers' reading, written out independently: (mode, normalize)."""
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    if not any(m.get("type", "").endswith("Pooling") for m in modules):
        return "mean", normalize
    for key, mode in (("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_tokens", "mean")):
        if cfg.get(key) is True:
            return mode, normalize
    return cfg["pooling_mode"], normalize


@given(st.one_of(mutated(MODULES).map(lambda b: (b, json.dumps(POOLING).encode())),
                 mutated(POOLING).map(lambda b: (json.dumps(MODULES).encode(), b)),
                 json_values.map(lambda v: (json.dumps(MODULES).encode(), json.dumps(v).encode()))))
def test_fuzzed_pooling_files_give_the_pooling_they_say_or_one_sentence(files):
    modules_bytes, pooling_bytes = files
    folder = ROOT / "pool"
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "1_Pooling").mkdir(parents=True)
    (folder / "modules.json").write_bytes(modules_bytes)
    (folder / "1_Pooling" / "config.json").write_bytes(pooling_bytes)
    try:
        pooling = read_pooling(folder)
    except BertnpuError as exc:
        assert_one_sentence(exc, NAMES)
        return
    modules = strict_loads(modules_bytes)
    pooling_path = next((m.get("path", "1_Pooling") for m in modules if m.get("type", "").endswith("Pooling")), None)
    cfg = strict_loads(pooling_bytes) if pooling_path == "1_Pooling" else {}
    if pooling_path not in (None, "1_Pooling"):  # points at a folder without a config: mean assumed, and said so
        assert pooling.mode == "mean" and "assumed" in pooling.source
        return
    assert (pooling.mode, pooling.normalize) == _expected_pooling(modules, cfg)


@given(st.one_of(mutated(CONFIG), json_values.map(lambda v: json.dumps(v).encode())))
def test_a_fuzzed_config_json_is_checked_or_one_sentence(data):
    folder = ROOT / "cfg"
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_bytes(data)
    try:
        cfg = check_model_config(folder)
    except BertnpuError as exc:
        assert_one_sentence(exc, NAMES)
        return
    assert cfg == strict_loads(data)
    assert cfg.get("hidden_size", 768) % cfg.get("num_attention_heads", 12) == 0
    assert all(1 <= cfg.get(k, 1) <= 65_536 for k in ("hidden_size", "num_attention_heads"))


@pytest.fixture(scope="module")
def model_copy(tiny_model_dir) -> Path:
    return Path(shutil.copytree(tiny_model_dir, ROOT / "model", dirs_exist_ok=True))


# each example loads a whole (tiny) model: a fifth of the profile's examples
@settings(max_examples=max(8, settings.default.max_examples // 5))
@given(data=mutated(CONFIG))
def test_a_model_with_a_fuzzed_config_json_loads_as_written_or_is_one_sentence(model_copy, data):
    (model_copy / "config.json").write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # transformers' own notes about unusual configs
        try:
            model = load_model(str(model_copy))
        except BertnpuError as exc:
            assert_one_sentence(exc, NAMES | {"model", "weights", "Model"})
            return
    raw = strict_loads(data)
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "vocab_size"):
        if key in raw:
            assert getattr(model.config, key) == raw[key], key
    assert model.config.model_type == "bert"
