"""The compile record beside a .mxq: every field round-trips through its JSON; a newer or broken file is one sentence."""

from __future__ import annotations

import json

import pytest

from bertnpu.device.compile_record import SCHEMA_VERSION, CompileRecord, read_compile_record, record_path_for
from bertnpu.device.export_wrapper import CompiledOutput
from bertnpu.errors import BertnpuError
from bertnpu.project.layout import LAYOUT
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from bertnpu.version import __version__

RECIPE = Recipe(calibration=QuantConfig(method=3, output=1, percentile=0.9995, topk_ratio=0.02),
                activation_16bits=("layer.1.ffn.residual", "pooler.out"), equivalent_transformation=EquivalentTransformations(vo=True),
                profile="optimistic", target_device="aries2", prediction={"spearman": {"aries": 0.81}})
RECORD = CompileRecord(RECIPE, CompiledOutput("last_hidden_state", 36, "mean"), sites_16bit=("layer.1.ffn.residual", "pooler.out"),
                       operators_16bit=("/encoder/layer.1/output/Add", "/pooler/activation/Tanh", "/encoder/layer.0/output/Add"),
                       passed={"inference_scheme": "single"}, knobs_dropped=("qk",), qbcompiler_api="mxq_compile (generation 2)", model="tiny")


def test_path_is_beside_the_mxq(tmp_path):
    assert record_path_for(tmp_path / "m.mxq") == tmp_path / "m.mxq.recipe.json"
    assert record_path_for("a/b.mxq").name == "b.mxq.recipe.json"
    assert str(record_path_for(LAYOUT["mxq"])) == LAYOUT["mxq_recipe"]  # the project layout names the record the compile writes
    assert not [name for name in LAYOUT.values() if name.startswith(LAYOUT["mxq"] + ".") and name != LAYOUT["mxq_recipe"]]


def test_every_field_round_trips(tmp_path):
    mxq = tmp_path / "m.mxq"
    path = RECORD.save(record_path_for(mxq))
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["tool"] == f"bertnpu {__version__}"
    assert data["output"] == {"returns": "last_hidden_state", "shape": "[1, seq_len, 36]", "hidden_size": 36, "pooling": "mean",
                              "meaning": "token states [1, seq_len, 36] (last_hidden_state), which bertnpu mean-pools on the CPU"}
    assert data["knobs_dropped"] == ["qk"] and data["recipe"]["activation_16bits"] == ["layer.1.ffn.residual", "pooler.out"]
    assert data["sites_16bit"] == ["layer.1.ffn.residual", "pooler.out"] and data["operators_16bit"][-1] == "/encoder/layer.0/output/Add"
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
    assert (old.sites_16bit, old.operators_16bit) == ((), ())


def test_site_names_and_operator_names_are_two_fields():
    assert RECORD.operators == {"layer.1.ffn.residual": "/encoder/layer.1/output/Add", "pooler.out": "/pooler/activation/Tanh"}
    with pytest.raises(ValueError, match="operators_16bit has 1 name"):
        CompileRecord(RECIPE, RECORD.output, sites_16bit=("layer.1.ffn.residual", "pooler.out"), operators_16bit=("/a",))
    with pytest.raises(ValueError, match="sites_16bit must be a list of names"):
        CompileRecord(RECIPE, RECORD.output, sites_16bit="layer.1.ffn.residual")


def test_schema_1_record_is_migrated(tmp_path):
    """Schema 1 kept qbcompiler's operator names under passed["activation_16bits"] and the site map as "operators"."""
    ops = ["/encoder/layer.1/output/Add", "/pooler/activation/Tanh", "/encoder/layer.0/output/Add"]  # the last one a raw operator
    v1 = {"schema_version": 1, "tool": "bertnpu 0.3.0", "model": "tiny", "recipe": RECIPE.to_dict(),
          "operators": {"layer.1.ffn.residual": ops[0], "pooler.out": ops[1]},
          "passed": {"calibration": RECIPE.calibration.to_dict(), "activation_16bits": ops, "target_device": "aries2"},
          "knobs_dropped": [], "qbcompiler_api": "1.1+", "qbcompiler_version": "", "output": RECORD.output.to_dict()}
    record_path_for(tmp_path / "v1.mxq").write_text(json.dumps(v1))
    old = read_compile_record(tmp_path / "v1.mxq")
    assert old.sites_16bit == ("layer.1.ffn.residual", "pooler.out") and old.operators_16bit == tuple(ops)
    assert old.operators == v1["operators"] and old.passed == {"calibration": RECIPE.calibration.to_dict(), "target_device": "aries2"}
    assert old.recipe == RECIPE and old.qbcompiler_api == "1.1+"
    assert old.to_dict()["schema_version"] == SCHEMA_VERSION == 2  # saved again, it is a current record
    no_passed = {**v1, "passed": {}}  # a schema-1 record without the passed list: the map's operators, in site order
    record_path_for(tmp_path / "v1b.mxq").write_text(json.dumps(no_passed))
    assert read_compile_record(tmp_path / "v1b.mxq").operators_16bit == tuple(ops[:2])


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
