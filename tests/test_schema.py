"""bertnpu.schema: the bounded JSON parser and the declarative field checks, against Python's json as reference."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, strategies as st

from bertnpu.errors import BertnpuError
from bertnpu.schema import MAX_DEPTH, Field, Schema, check_schema_version, check_size, depth_of, parse_json, show_key
from fuzz_json import assert_one_sentence, json_values


def _reference_depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_reference_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_reference_depth, value), default=0)
    return 0


@given(json_values)
def test_depth_of_matches_a_recursive_count(value):
    assert depth_of(value) == _reference_depth(value)


@given(st.one_of(st.text(max_size=60), json_values.map(json.dumps),
                 st.integers(1, 9000).map(lambda n: "[" * n + "]" * n), st.integers(1, 6000).map(lambda n: "9" * n)))
def test_parse_json_equals_json_loads_or_is_one_sentence(text):
    try:
        got = parse_json(text, "The file 'x.json'", "fix it.")
    except BertnpuError as exc:
        assert_one_sentence(exc, ["'x.json'"])
        return
    expected = json.loads(text)
    assert json.dumps(got, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert depth_of(got) <= MAX_DEPTH


def test_the_refusals_name_their_cause():
    cases = {"[" * 33 + "]" * 33: "nested deeper than the 32 levels", "[" * 5000 + "]" * 5000: "nested deeper than the 32 levels",
             "1" * 4301: "more digits than bertnpu reads", '{"a": 1, "a": 2}': "holds the key 'a' twice", '{"a": ': "not valid JSON"}
    for text, needle in cases.items():
        with pytest.raises(BertnpuError, match=needle):
            parse_json(text, "The file 'x.json'", "fix it.")
    assert parse_json("[" * 32 + "]" * 32, "x", "y") is not None and parse_json("1" * 4300, "x", "y") == int("1" * 4300)


@pytest.mark.parametrize("data,needle", [({}, "has no schema_version"), ({"schema_version": 0}, "schema_version=0 is invalid"),
                                         ({"schema_version": -1}, "schema_version=-1 is invalid"), ({"schema_version": 1.0}, "schema_version=1.0 is invalid"),
                                         ({"schema_version": True}, "schema_version=True is invalid"), ({"schema_version": 3}, "newer than this bertnpu reads (2)")])
def test_schema_version_is_a_positive_integer_no_newer_than_the_reader(data, needle):
    with pytest.raises(BertnpuError, match=needle.replace("(", r"\(").replace(")", r"\)")):
        check_schema_version(data, "The file 'x.json'", "fix it.", 2)
    assert check_schema_version({}, "x", "y", 2, missing=1) == 1 and check_schema_version({"schema_version": 2}, "x", "y", 2) == 2


SAMPLE = Schema({"name": Field(str, max_len=5), "count": Field(int, low=1), "score": Field(float, required=False, low=0, high=5),
                 "tags": Field(list, required=False, items=Field(str))}, strict=True)


@given(st.dictionaries(st.sampled_from(["name", "count", "score", "tags", "other"]), json_values, max_size=5))
def test_a_schema_passes_exactly_the_values_its_fields_allow(data):
    def allowed() -> bool:
        if set(data) - {"name", "count", "score", "tags"} or not {"name", "count"} <= set(data):
            return False
        name, count, score, tags = data["name"], data["count"], data.get("score", 1.0), data.get("tags", [])
        return (isinstance(name, str) and len(name) <= 5 and type(count) is int and count >= 1
                and type(score) in (int, float) and math.isfinite(score) and 0 <= score <= 5
                and isinstance(tags, list) and all(isinstance(t, str) for t in tags))

    try:
        out = SAMPLE.check(data, "", "the file 'x.json'", "fix it.")
    except BertnpuError as exc:
        assert not allowed()
        assert_one_sentence(exc, ["'x.json'"])
        return
    assert allowed() and out == data


def test_size_is_bounded_before_reading(tmp_path):
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2000)
    with pytest.raises(BertnpuError, match=r"is 0.0 MB, larger than the 0.0 MB bertnpu reads for it; fix it\."):
        check_size(big, "recipe file", "fix it.", limit=1000)
    check_size(big, "recipe file", "fix it.", limit=2000)


def test_keys_are_shown_without_breaking_the_sentence():
    assert show_key("percentil") == "percentil" and show_key("\n") == "'\\n'" and show_key("") == "''" and len(show_key("x" * 500)) == 60
