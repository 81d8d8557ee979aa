"""Recipe and QuantConfig files under fuzzing: a valid Recipe that says what the file says, or one sentence."""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from bertnpu.errors import BertnpuError, BertnpuWarning
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from fuzz_json import assert_one_sentence, json_values, mutated, paths_of, strict_loads

VALID_RECIPE = {**Recipe(calibration=QuantConfig(method=3, output=1, mode=1, percentile=0.999, topk_ratio=0.05, bits=8),
                         activation_16bits=("layer.0.ffn.residual", "pooler.out"), equivalent_transformation=EquivalentTransformations(qk=True),
                         profile="aries", prediction={"test_spearman": 0.81, "spearman": {"aries": 0.8}, "within_tolerance": True}).to_dict(),
                "tool": "bertnpu 0.3.0"}
VALID_CONFIG = {**QuantConfig(method=0, percentile=0.99).to_dict(), "schema_version": 1, "tool": "bertnpu 0.3.0"}
FIELD_NAMES = {str(p[-1]) for p in paths_of(VALID_RECIPE) + paths_of(VALID_CONFIG)} | {"schema_version", "recipe", "prediction", "Unknown"}
_DIR = Path(tempfile.mkdtemp(prefix="bertnpu-fuzz-recipe-"))


def _canonical(value):
    """JSON text with NaN spelled out, so equal values compare equal."""
    return json.dumps(value, sort_keys=True)


def _expected_calibration(raw: dict) -> dict:
    return {**QuantConfig().to_dict(), **{k: v for k, v in raw.items() if k not in ("schema_version", "tool")}}


def _check_loaded(recipe: Recipe, raw: dict) -> None:
    """The loaded recipe is valid, round-trips, and holds exactly what the file says (defaults for what it omits)."""
    assert Recipe.from_dict(json.loads(json.dumps(recipe.to_dict()))) == recipe
    got = recipe.to_dict()
    if "calibration" not in raw and "method" in raw:  # a flat QuantConfig file
        assert _canonical(got["calibration"]) == _canonical(_expected_calibration(raw))
        return
    for key, value in raw.items():
        if key in ("schema_version", "tool"):
            continue
        if key == "calibration":
            value = _expected_calibration(value)
        elif key == "activation_16bits":
            value = list(dict.fromkeys(value))
        elif key == "equivalent_transformation":
            value = {**EquivalentTransformations().__dict__, **value}
        assert _canonical(got[key]) == _canonical(value), key
    c = recipe.calibration
    assert 0 < c.percentile <= 1 and 0 < c.topk_ratio <= 1 and 2 <= c.bits <= 16 and not math.isnan(c.percentile)


def _load(data: bytes, name: str, loader):
    path = _DIR / name
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BertnpuWarning)  # legal but pointless values are accepted (checked below)
        try:
            return loader(path), path
        except BertnpuError as exc:
            assert_one_sentence(exc, FIELD_NAMES | {name})
            return None, path


@given(mutated(VALID_RECIPE))
def test_a_mutated_recipe_file_loads_as_written_or_is_one_sentence(data):
    recipe, _ = _load(data, "recipe.json", Recipe.load)
    if recipe is not None:
        _check_loaded(recipe, strict_loads(data))


@given(st.one_of(mutated(VALID_CONFIG), json_values.map(lambda v: json.dumps(v).encode())))
def test_a_mutated_quantconfig_file_loads_as_written_or_is_one_sentence(data):
    config, _ = _load(data, "config.json", QuantConfig.load)
    if config is not None:
        raw = strict_loads(data)
        assert _canonical(config.to_dict()) == _canonical(_expected_calibration(raw))
        assert QuantConfig.from_dict(config.to_dict()) == config


@given(json_values)
def test_any_json_value_as_a_recipe_is_a_recipe_or_one_sentence(value):
    recipe, _ = _load(json.dumps(value).encode(), "any.json", Recipe.load)
    if recipe is not None:
        _check_loaded(recipe, value)


@given(st.sampled_from([[], None, "text", 3, [["a", 1]]]))
def test_a_prediction_that_is_not_an_object_is_one_sentence(prediction):
    data = json.dumps({**VALID_RECIPE, "prediction": prediction}).encode()
    with pytest.raises(BertnpuError, match="prediction=") as info:
        Recipe.load(_write(data))
    assert_one_sentence(info.value, ["prediction"])


def _write(data: bytes) -> Path:
    path = _DIR / "one.json"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("version,needle", [(0, "schema_version=0 is invalid"), (-1, "schema_version=-1 is invalid"),
                                            (True, "schema_version=True is invalid"), (3, "newer than this bertnpu reads (2)")])
def test_schema_version_must_be_a_positive_integer_no_newer_than_the_reader(version, needle):
    with pytest.raises(BertnpuError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        Recipe.load(_write(json.dumps({**VALID_RECIPE, "schema_version": version}).encode()))


def test_a_recipe_file_without_schema_version_is_refused_but_a_flat_config_reads_as_version_1():
    body = {k: v for k, v in VALID_RECIPE.items() if k != "schema_version"}
    with pytest.raises(BertnpuError, match="has no schema_version, which bertnpu always writes"):
        Recipe.load(_write(json.dumps(body).encode()))
    flat = {"method": 0, "percentile": 0.99}  # hand-written in qbcompiler's vocabulary
    assert Recipe.load(_write(json.dumps(flat).encode())).calibration == QuantConfig(method=0, percentile=0.99)
    assert QuantConfig.load(_write(json.dumps(flat).encode())) == QuantConfig(method=0, percentile=0.99)


@pytest.mark.parametrize("text,needle", [("[" * 5000 + "]" * 5000, "nested deeper than the 32 levels"),
                                         ('{"schema_version": ' + "1" * 5000 + "}", "more digits than bertnpu reads"),
                                         ('{"schema_version": 2, "schema_version": 2}', "holds the key 'schema_version' twice")])
def test_deep_huge_and_duplicated_are_one_sentence(text, needle):
    with pytest.raises(BertnpuError, match=needle) as info:
        Recipe.load(_write(text.encode()))
    assert_one_sentence(info.value, ["one.json"])


def test_a_percentile_that_clips_almost_everything_is_accepted_with_one_warning():
    data = json.dumps({**VALID_RECIPE, "calibration": {**VALID_RECIPE["calibration"], "percentile": 1e-300}}).encode()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        recipe = Recipe.load(_write(data))
    assert recipe.calibration.percentile == 1e-300
    assert [w.category for w in caught] == [BertnpuWarning]
    text = str(caught[0].message)
    # clipped share = topk_ratio * (1 - p) = 0.05 of every site's values
    assert "percentile=1e-300" in text and "clips 0.05 of every site's values" in text and "\n" not in text
    with warnings.catch_warnings(record=True) as caught:  # the tutorial's value: no word
        warnings.simplefilter("always")
        Recipe.load(_write(json.dumps(VALID_RECIPE).encode()))
    assert not caught


def test_a_topk_ratio_too_small_for_the_calibration_set_is_one_warning():
    from bertnpu.quant.config import warn_pointless_topk
    from bertnpu.quant.thresholds import clipped_count

    config = QuantConfig(percentile=0.999, topk_ratio=1e-6)
    assert clipped_count(10**6, 0.999, 1e-6) == 0  # 1e-6 * 1e-3 * 1e6 = 0.001 values
    with pytest.warns(BertnpuWarning, match="keeps fewer than one of even the largest site's 1000000 calibration values apart") as caught:
        warn_pointless_topk(config, 10**6, "recipe file 'r.json'")
    assert len(caught) == 1
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn_pointless_topk(config, 10**10, "recipe file 'r.json'")  # 10 values clipped: fine
        warn_pointless_topk(QuantConfig(percentile=1.0), 10**6, "recipe file 'r.json'")  # p = 1 asks for Max on purpose
    assert not caught
