"""`bertnpu mblt-ops FILE.mblt` on the qbcompiler double's graph: every operator, its producers, bertnpu's site guess."""

import json

import pytest

from bertnpu.cli import main
from bertnpu.device.qbcompiler_adapter import compile_mblt


@pytest.mark.parametrize("qbcompiler_double", [2, 3], indirect=True)
def test_mblt_ops_table(qbcompiler_double, tiny_model, tiny_model_dir, tmp_path, capsys):
    mblt = compile_mblt(tiny_model, tmp_path / "m.mblt", target_device="aries-rb")
    graph = json.loads(mblt.read_text())["operators"]  # the double's file, read independently
    assert main(["mblt-ops", str(mblt), "--model", str(tiny_model_dir), "--json"]) == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [row["name"] for row in r["operators"]] == [o["name"] for o in graph]
    made_by = {t: o["name"] for o in graph for t in o["outputs"]}
    for row, op in zip(r["operators"], graph):
        assert row["producers"] == [made_by[t] for t in op["inputs"] if t in made_by]
    sites = {row["name"]: row["site"] for row in r["operators"]}
    assert sites["/encoder/layer.0/attention/self/MatMul"] == "layer.0.attention.scores"
    assert sites["/encoder/layer.2/output/Add"] == "layer.2.ffn.residual" and r["layers_found"] == 3
    assert main(["mblt-ops", str(mblt), "--model", str(tiny_model_dir)]) == 0
    out = capsys.readouterr().out
    assert f"{len(graph)} operators, 3 encoder layer(s) found" in out and "activation_16bits_operators" in out


def test_mblt_ops_bad_input(tmp_path, capsys):
    assert main(["mblt-ops", str(tmp_path / "absent.mblt")]) == 2
    assert "does not exist" in capsys.readouterr().err
