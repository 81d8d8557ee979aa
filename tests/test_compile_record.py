"""The compile record beside a .mxq: every field round-trips through its JSON; a newer or broken file is one sentence."""

from __future__ import annotations

import json

import pytest

from bertnpu.device.compile_record import SCHEMA_VERSION, CompileRecord, read_compile_record, record_path_for
from bertnpu.device.export_wrapper import CompiledOutput
from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from bertnpu.version import __version__

RECIPE = Recipe(calibration=QuantConfig(method=3, output=1, percentile=0.9995, topk_ratio=0.02),
                activation_16bits=("layer.1.ffn.residual", "pooler.out"), equivalent_transformation=EquivalentTransformations(vo=True),
                profile="optimistic", target_device="aries2", prediction={"spearman": {"aries": 0.81}})
RECORD = CompileRecord(RECIPE, CompiledOutput("last_hidden_state", 36, "mean"), operators={"layer.1.ffn.residual": "/encoder/layer.1/output/Add"},
                       passed={"inference_scheme": "single", "16bit_ops": ["/encoder/layer.1/output/Add"]}, knobs_dropped=("qk",),
                       qbcompiler_api="mxq_compile (generation 2)", model="tiny")


def test_path_is_beside_the_mxq(tmp_path):
    assert record_path_for(tmp_path / "m.mxq") == tmp_path / "m.mxq.recipe.json"
    assert record_path_for("a/b.mxq").name == "b.mxq.recipe.json"


def test_every_field_round_trips(tmp_path):
    mxq = tmp_path / "m.mxq"
    path = RECORD.save(record_path_for(mxq))
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["tool"] == f"bertnpu {__version__}"
    assert data["output"] == {"returns": "last_hidden_state", "shape": "[1, seq_len, 36]", "hidden_size": 36, "pooling": "mean",
                              "meaning": "token states [1, seq_len, 36] (last_hidden_state), which bertnpu mean-pools on the CPU"}
    assert data["knobs_dropped"] == ["qk"] and data["recipe"]["activation_16bits"] == ["layer.1.ffn.residual", "pooler.out"]
    again = read_compile_record(mxq)
    assert again == RECORD
    assert again.recipe.equivalent_transformation.vo and again.recipe.prediction == {"spearman": {"aries": 0.81}}
    RECORD.save(path)  # a companion of its .mxq: replaced with it, no --force needed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.mxq.recipe.json"]  # no temporary file left


def test_missing_record_is_none_and_optional_fields_default(tmp_path):
    assert read_compile_record(tmp_path / "tutorial.mxq") is None
    minimal = {"recipe": Recipe().to_dict(), "output": {"returns": "pooler_output", "hidden_size": 128, "pooling": "pooler"}}
    record_path_for(tmp_path / "old.mxq").write_text(json.dumps(minimal))
    old = read_compile_record(tmp_path / "old.mxq")
    assert old.recipe == Recipe() and old.output == CompiledOutput("pooler_output", 128, "pooler")
    assert (old.operators, old.passed, old.knobs_dropped, old.qbcompiler_api, old.model) == ({}, {}, (), "", "")


def test_newer_schema_is_one_sentence(tmp_path):
    data = RECORD.to_dict()
    data["schema_version"] = SCHEMA_VERSION + 1
    record_path_for(tmp_path / "m.mxq").write_text(json.dumps(data))
    with pytest.raises(BertnpuError) as info:
        read_compile_record(tmp_path / "m.mxq")
    assert f"schema_version {SCHEMA_VERSION + 1}, newer than this bertnpu reads; upgrade bertnpu ({__version__})" in str(info.value)


@pytest.mark.parametrize("text, why", [("{not json", "JSONDecodeError"), (json.dumps({"recipe": {}}), "KeyError"),
                                        (json.dumps([1, 2]), "AttributeError")])
def test_broken_record_is_one_sentence(tmp_path, text, why):
    record_path_for(tmp_path / "m.mxq").write_text(text)
    with pytest.raises(BertnpuError) as info:
        read_compile_record(tmp_path / "m.mxq")
    msg = str(info.value)
    assert "is not a readable compile record" in msg and why in msg and "recompile with `bertnpu compile --recipe`" in msg
