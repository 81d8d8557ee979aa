"""StageResult.to_dict: JSON-ready, paths relative to the run folder, live objects left out."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bertnpu.quant.recipe import Recipe
from bertnpu.stages.result import StageResult, encode, not_serialized


@dataclass(frozen=True)
class _Result(StageResult):
    value: float
    count: Any
    files: tuple
    recipe: Recipe
    table: Any
    live: Any = not_serialized()


def test_to_dict_is_json_with_relative_paths(tmp_path):
    r = _Result(value=np.float32(0.5), count=np.int64(7), files=(tmp_path / "a" / "x.png", Path("/elsewhere/y.json")),
                recipe=Recipe(activation_16bits=("layer.0.ffn.residual",)), table={"rows": (np.arange(3), {"p": tmp_path / "z"})}, live=object())
    d = r.to_dict(relative_to=tmp_path)
    assert json.loads(json.dumps(d)) == d
    assert d["value"] == 0.5 and d["count"] == 7 and type(d["count"]) is int
    assert d["files"] == ["a/x.png", "/elsewhere/y.json"]  # outside the run folder: absolute
    assert d["recipe"] == Recipe(activation_16bits=("layer.0.ffn.residual",)).to_dict()
    assert d["table"] == {"rows": [[0, 1, 2], {"p": "z"}]} and "live" not in d
    assert r.to_dict()["files"][0] == str(tmp_path / "a" / "x.png")


def test_encode_leaves_plain_values():
    assert encode({"a": (1, 2.5, None, "s")}) == {"a": [1, 2.5, None, "s"]}
