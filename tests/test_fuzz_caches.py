"""The plan cache (tune/plan/cache.py) and the sweep cache (tune/sweep.py), both a results_log.ResultLog, under fuzzing.

Property: reading a cache never raises; every result it hands back has the shape the planner or
the sweep reads (a damaged line is skipped and computed again, never used).
"""

from __future__ import annotations

import json
import math
import tempfile
import warnings
from pathlib import Path

from hypothesis import given, strategies as st

from bertnpu.errors import BertnpuWarning
from bertnpu.tune.plan.cache import PlanCache
from bertnpu.tune.sweep import sweep_log
from fuzz_json import json_values, mutated

ROOT = Path(tempfile.mkdtemp(prefix="bertnpu-fuzz-cache-"))
PLAN_ROW = {"key": "0123456789abcdef01234567", "spearman": 0.81, "cosine": 0.99}
SWEEP_ROWS = [{"key": "0123456789abcdef0123", "kind": "full", "spearman": 0.8, "pearson": 0.79, "mean_sqnr_db": 21.5},
              {"key": "abcdef0123456789abcd", "kind": "proxy", "proxy_cosine": 0.99, "proxy_spearman": 0.7}]


def _value(row: dict) -> dict:
    """What the log hands back for a row: the row less its key."""
    return {k: v for k, v in row.items() if k != "key"}


def _score(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and (math.isnan(value) or -1 <= value <= 1)


def _lines(draw, valid: list[dict]) -> bytes:
    parts = [draw(st.one_of(mutated(row), json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=30))) for row in valid]
    keep = [json.dumps(row).encode() for row in valid if draw(st.booleans())]
    return b"\n".join(parts + keep) + draw(st.sampled_from([b"\n", b"", b'{"key": "cut']))


@st.composite
def plan_cache_files(draw) -> bytes:
    return _lines(draw, [PLAN_ROW, PLAN_ROW])


@st.composite
def sweep_cache_files(draw) -> bytes:
    return _lines(draw, SWEEP_ROWS)


def _read_written(path, data: bytes, read):
    """Write ``data`` to ``path`` and read it back with ``read``; returns (what it read, the warnings it gave)."""
    path.write_bytes(data)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        return read(path), caught


@given(plan_cache_files())
def test_a_fuzzed_plan_cache_hands_back_only_well_formed_results(data):
    cache, caught = _read_written(ROOT / "plan_cache.jsonl", data, lambda path: PlanCache(path, {}).log)
    assert all(w.category is BertnpuWarning and "\n" not in str(w.message) for w in caught)
    assert len(caught) <= 1
    for key, value in cache.values.items():
        assert isinstance(key, str) and len(key) <= 64 and isinstance(value, dict)
        assert _score(value["cosine"]) and not math.isnan(value["cosine"]) and _score(value.get("spearman", 0.0))
    if json.dumps(PLAN_ROW).encode() in data.split(b"\n"):  # an intact line is always read
        assert cache.values[PLAN_ROW["key"]] == _value(PLAN_ROW)


@given(sweep_cache_files())
def test_a_fuzzed_sweep_cache_hands_back_only_well_formed_results(data):
    rows, caught = _read_written(ROOT / "sweep_cache.jsonl", data, lambda path: sweep_log(path).values)
    assert len(caught) <= 1 and all(w.category is BertnpuWarning for w in caught)
    for key, row in rows.items():
        assert isinstance(key, str) and len(key) <= 64 and row["kind"] in ("full", "proxy")
        needed = ("spearman",) if row["kind"] == "full" else ("proxy_cosine", "proxy_spearman")
        assert all(_score(row[n]) or row[n] is None for n in needed)
    for row in SWEEP_ROWS:
        if json.dumps(row).encode() in data.split(b"\n"):
            assert rows[row["key"]] == _value(row)


def test_an_edited_line_is_skipped_with_one_warning_and_a_cut_line_silently(tmp_path):
    path = tmp_path / "sweep_cache.jsonl"
    edited = {**SWEEP_ROWS[0], "spearman": "0.8"}  # text where a number belongs: would break the ranking
    path.write_text("\n".join([json.dumps(SWEEP_ROWS[1]), json.dumps(edited), '{"key": "cut-by-an-inter']) + "\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rows = dict(sweep_log(path).values)
    assert rows == {SWEEP_ROWS[1]["key"]: _value(SWEEP_ROWS[1])}
    assert [str(w.message).split(" in the")[0] for w in caught] == ["1 damaged line(s)"]
