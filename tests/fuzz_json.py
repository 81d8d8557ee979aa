"""Hypothesis strategies shared by the fuzz tests (tests/test_fuzz_*.py).

``json_values``: arbitrary JSON values. ``mutated(valid)``: the bytes of a valid JSON file after
one fault a hand edit or another tool can make: a field dropped or retyped, a key written twice,
a huge number, string or list, nesting thousands of levels deep, non-UTF-8 bytes, or a cut.
``assert_one_sentence``: the property every refusal must meet.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from hypothesis import strategies as st

from bertnpu.errors import BertnpuError

scalars = (st.none() | st.booleans() | st.integers() | st.integers(min_value=-(10**30), max_value=10**30)
           | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0, -1, 1e-300, 1e308, 0.5, 2, "", "0.999"])
           | st.text(max_size=12))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=10)

_RAW = "\x00raw\x00"  # stands for raw JSON text spliced in after dumping (huge integers, deep nesting)
RAW_VALUES = ["1" * 5000, "-" + "9" * 4301, "[" * 5000 + "]" * 5000, '{"a":' * 3000 + "1" + "}" * 3000, "1e99999", "-1e400"]


def paths_of(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every path (keys and list indices) inside a JSON value, the root excluded."""
    out = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, child in items:
        out.append(prefix + (key,))
        out.extend(paths_of(child, prefix + (key,)))
    return out


def _replace(value: Any, path: tuple, new: Any, drop: bool = False) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    if len(path) == 1 and drop:
        del copy[path[0]]
    else:
        copy[path[0]] = _replace(copy[path[0]], path[1:], new, drop)
    return copy


def dumps(value: Any, raw: str = "") -> bytes:
    text = json.dumps(value, ensure_ascii=False)
    return text.replace(json.dumps(_RAW), raw).encode("utf-8", "surrogatepass")  # a lone surrogate: bytes no UTF-8 reader takes


@st.composite
def mutated(draw, valid: Any) -> bytes:
    """One fault in the file ``valid`` would be written as (see the module docstring)."""
    paths = paths_of(valid)
    kind = draw(st.sampled_from(["drop", "retype", "edge", "raw", "duplicate", "non_utf8", "truncate", "whole", "extra"]))
    path = draw(st.sampled_from(paths)) if paths else ()
    if kind == "drop" and path:
        return dumps(_replace(valid, path, None, drop=True))
    if kind == "retype":
        return dumps(_replace(valid, path, draw(json_values)))
    if kind == "edge":
        return dumps(_replace(valid, path, draw(st.sampled_from([0, -1, 1e-300, -0.0, float("nan"), float("inf"), True, None, "", [], {},
                                                                  "x" * 100_000, list(range(2000)), 10**30]))))
    if kind == "raw":
        return dumps(_replace(valid, path, _RAW), draw(st.sampled_from(RAW_VALUES)))
    if kind == "duplicate" and isinstance(valid, dict) and valid:
        key = draw(st.sampled_from(sorted(valid)))
        text = dumps(valid).decode()
        return (text[:-1] + f", {json.dumps(key)}: {json.dumps(draw(json_values))}}}").encode()
    if kind == "non_utf8":
        data = dumps(valid)
        at = draw(st.integers(0, len(data)))
        return data[:at] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80\x80"])) + data[at:]
    if kind == "truncate":
        data = dumps(valid)
        return data[: draw(st.integers(0, max(len(data) - 1, 0)))]
    if kind == "extra" and isinstance(valid, dict):
        return dumps({**valid, draw(st.text(max_size=8)): draw(json_values)})
    return dumps(draw(json_values))


def strict_loads(data: bytes) -> Any:
    """The JSON a file holds, read independently of bertnpu (duplicate keys raise)."""
    def no_dupes(pairs):
        keys = [k for k, _ in pairs]
        assert len(keys) == len(set(keys)), "a file with a duplicate key was accepted"
        return dict(pairs)

    return json.loads(data.decode("utf-8"), object_pairs_hook=no_dupes)


def assert_one_sentence(exc: BertnpuError, names: Iterable[str]) -> None:
    """A refusal is one line, ends with a full stop, and names the file or one of its fields."""
    text = str(exc)
    assert text and "\n" not in text and text.rstrip().endswith("."), text
    assert any(n in text for n in names), (text, list(names))
