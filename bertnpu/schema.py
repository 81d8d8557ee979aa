"""Validation at the boundary: bounded JSON parsing and one small declarative schema per file type.

Every reader of a user file parses it with :func:`parse_json` (size, nesting depth, duplicate
keys, integer strings too long for Python, non-UTF-8 bytes: each one sentence) and checks the
parsed value against a :class:`Schema` before any other code sees it, so a hand-edited file
ends in one :class:`~bertnpu.errors.BertnpuError` sentence naming the file and the field,
never in a traceback deep inside the pipeline and never in a silently wrong value.

Example:
    >>> MANIFEST = Schema({"model": Field(str), "hidden_size": Field(int, low=1)})
    >>> MANIFEST.check({"schema_version": 1, "model": "m", "hidden_size": 0}, "", "the manifest 'x'", "rebuild it.", version=1)
    Traceback (most recent call last):
    bertnpu.errors.BertnpuError: hidden_size=0 in the manifest 'x' is outside 1 to inf; rebuild it.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from .errors import BertnpuError

# The largest JSON file bertnpu reads: a manifest of 10 000 samples is about 2 MB, a recipe a few KB.
MAX_JSON_BYTES = 32 * 2**20
# The deepest nesting any bertnpu file has is 3 (a recipe's prediction table); model configs stay well below 20.
MAX_DEPTH = 32


def _size_text(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


def check_size(path: str | os.PathLike, what: str, fix: str, limit: int = MAX_JSON_BYTES) -> None:
    """Refuse a file larger than ``limit`` bytes before reading it."""
    try:
        size = Path(path).stat().st_size
    except OSError:
        return  # the read that follows names a missing or unreadable file in its own sentence
    if size > limit:
        raise BertnpuError(f"The {what} {str(path)!r} is {_size_text(size)}, larger than the {_size_text(limit)} bertnpu reads for it; {fix}")


class _DuplicateKey(Exception):
    def __init__(self, key: str):
        self.key = key


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def depth_of(value: Any) -> int:
    """Nesting depth of a parsed JSON value (a scalar is 0, ``[]`` is 1), without recursion."""
    deepest = 0
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()  # depth: containers around ``item``
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth + 1)
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json(text: str, where: str, fix: str, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse JSON ``text``; every failure is one sentence naming ``where`` and ending in ``fix``.

    Refused: broken JSON, duplicate keys (json would silently keep the last one), integers with
    more digits than Python converts, and nesting deeper than ``max_depth``.
    """
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise BertnpuError(f"{where} holds the key {exc.key[:80]!r} twice, so one value would be silently lost; {fix}") from None
    except RecursionError:  # json recurses once per nesting level
        raise BertnpuError(f"{where} is nested deeper than the {max_depth} levels bertnpu reads; {fix}") from None
    except json.JSONDecodeError as exc:
        raise BertnpuError(f"{where} is not valid JSON ({exc.msg} on line {exc.lineno}); {fix}") from None
    except ValueError:  # Python refuses to convert integer strings of more than 4300 digits
        raise BertnpuError(f"{where} holds a number with more digits than bertnpu reads; {fix}") from None
    if depth_of(data) > max_depth:
        raise BertnpuError(f"{where} is nested deeper than the {max_depth} levels bertnpu reads; {fix}")
    return data


def check_schema_version(data: Mapping, where: str, fix: str, reader: int, *, missing: Optional[int] = None) -> int:
    """``data["schema_version"]``: a positive integer no newer than ``reader``.

    ``missing`` is the version assumed when the key is absent; None refuses the file (for files
    whose writer has always stamped a version).
    """
    if "schema_version" not in data:
        if missing is None:
            raise BertnpuError(f"{where} has no schema_version, which bertnpu always writes; {fix}")
        return missing
    version = data["schema_version"]
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise BertnpuError(f"In {where[0].lower() + where[1:]}, schema_version={short_repr(version)} is invalid; it must be a whole number from 1 to {reader}; {fix}")
    if version > reader:
        from .version import __version__

        raise BertnpuError(f"{where} has schema_version {version}, newer than this bertnpu reads ({reader}); upgrade bertnpu ({__version__}), or {fix}")
    return version


def show_key(key: Any) -> str:
    """A key as a message can show it: plain when printable, else its repr (a newline must not split the sentence)."""
    text = key if isinstance(key, str) and key.isprintable() and key.strip() == key and key else repr(key)
    return text if len(text) <= 60 else text[:57] + "..."


def short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for a sentence that names a bad value."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _type_names(types: tuple[type, ...]) -> str:
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "a string", list: "a list", dict: "an object",
             type(None): "null"}
    return " or ".join(names.get(t, t.__name__) for t in types)


@dataclass(frozen=True)
class Field:
    """One field of a JSON object: its types, and for numbers, strings and lists their bounds.

    ``float`` accepts whole numbers too; ``bool`` is never taken for a number; numbers must be
    finite unless ``finite`` is False. ``items`` checks each element of a list (a Field, or a
    Schema for objects), or an object value itself (a Schema).
    """

    types: type | tuple[type, ...]
    required: bool = True
    low: Optional[float] = None
    high: Optional[float] = None
    max_len: Optional[int] = None
    items: Any = None
    choices: Optional[tuple] = None
    finite: bool = True

    def check(self, value: Any, name: str, where: str, fix: str) -> Any:
        """``value`` of field ``name`` (a dotted path) in ``where`` (the file), or one sentence."""
        types = self.types if isinstance(self.types, tuple) else (self.types,)
        accepted = types + ((int,) if float in types and int not in types else ())
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, accepted):
            raise BertnpuError(f"{name}={short_repr(value)} in {where} is invalid; give {_type_names(types)}; {fix}")
        if self.choices is not None and value not in self.choices:
            raise BertnpuError(f"{name}={short_repr(value)} in {where} is invalid; use one of {', '.join(map(repr, self.choices))}; {fix}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and self.finite and not math.isfinite(value):
                raise BertnpuError(f"{name}={short_repr(value)} in {where} is not a finite number; {fix}")
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                span = f"{self.low if self.low is not None else '-inf'} to {self.high if self.high is not None else 'inf'}"
                raise BertnpuError(f"{name}={short_repr(value)} in {where} is outside {span}; {fix}")
        if isinstance(value, (str, list, dict)) and self.max_len is not None and len(value) > self.max_len:
            raise BertnpuError(f"{name} in {where} holds {len(value)} entries or characters, more than the {self.max_len} bertnpu reads; {fix}")
        if isinstance(value, list) and self.items is not None:
            value = [self.items.check(v, f"{name}[{i}]", where, fix) for i, v in enumerate(value)]
        elif isinstance(value, dict) and self.items is not None:
            value = self.items.check(value, name, where, fix)
        return value


@dataclass(frozen=True)
class Schema:
    """A JSON object's fields; unknown keys are kept (``strict=False``) or refused.

    ``rule(checked, where, fix)`` checks relations between fields after each field passed.
    """

    fields: Mapping[str, Field]
    strict: bool = False
    rule: Optional[Callable[[dict, str, str], None]] = None
    max_len: Optional[int] = None

    def check(self, data: Any, name: str, where: str, fix: str, *, version: Optional[int] = None,
              missing_version: Optional[int] = None) -> dict:
        """``data`` (the object at ``name``, "" for the whole file) checked, as a new dict.

        ``version``: the reader's schema version, checked first (see :func:`check_schema_version`).
        """
        at = f"{name} in {where}" if name else where
        if not isinstance(data, dict):
            kind = {"list": "a JSON list", "str": "a string", "NoneType": "null", "bool": "true or false"}.get(type(data).__name__, "a number")
            raise BertnpuError(f"{at} holds {kind}, not a JSON object; {fix}")
        if self.max_len is not None and len(data) > self.max_len:
            raise BertnpuError(f"{at} holds {len(data)} keys, more than the {self.max_len} bertnpu reads; {fix}")
        if version is not None:
            check_schema_version(data, at, fix, version, missing=missing_version)
        if self.strict:
            unknown = sorted(set(data) - set(self.fields) - {"schema_version", "tool"})
            if unknown:
                raise BertnpuError(f"{at} has unknown field(s) {', '.join(map(show_key, unknown[:5]))}; allowed: {', '.join(sorted(self.fields))}; {fix}")
        out = dict(data)
        for key, spec in self.fields.items():
            if key not in data:
                if spec.required:
                    raise BertnpuError(f"{at} has no field {key!r}; {fix}")
                continue
            out[key] = spec.check(data[key], f"{name}.{key}" if name else key, where, fix)
        if self.rule is not None:
            self.rule(out, where, fix)
        return out


VERSION = Field(int, low=1)


def read_text_file(path: str | os.PathLike, what: str, fix: str) -> str:
    """Read a UTF-8 text file; unreadable or non-UTF-8 content is one sentence ending in ``fix``."""
    path = Path(path)
    if path.is_dir():
        raise BertnpuError(f"The {what} {str(path)!r} is a folder, not a file; {fix}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise BertnpuError(f"The {what} {str(path)!r} does not exist; {fix}") from None
    except OSError as exc:
        raise BertnpuError(f"Cannot read the {what} {str(path)!r} ({exc.strerror or exc.__class__.__name__}); {fix}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BertnpuError(f"The {what} {str(path)!r} is not UTF-8 text (bad byte on line {line}); {fix}") from None


def load_json_file(path: str | os.PathLike, what: str, fix: str, schema: Optional[Schema] = None, *,
                   version: Optional[int] = None, missing_version: Optional[int] = None, limit: int = MAX_JSON_BYTES) -> Any:
    """Read, parse and (with ``schema``) check a JSON file: every failure one sentence naming it."""
    where = f"the {what} {str(path)!r}"
    check_size(path, what, fix, limit)
    data = parse_json(read_text_file(path, what, fix), where[0].upper() + where[1:], fix)
    return data if schema is None else schema.check(data, "", where, fix, version=version, missing_version=missing_version)


# A cache of a few thousand results is a few MB; far beyond that it is no bertnpu cache.
MAX_CACHE_BYTES = 256 * 2**20


def read_json_lines(path: Path, row: Schema, what: str) -> tuple[list[dict], int]:
    """The valid rows of a JSON-lines cache, and how many lines were damaged.

    A cache is bertnpu's own resumable record: a bad line is skipped and its result computed
    again, never used. A line that is not JSON is what an interrupted write leaves (and is not
    counted); one that is JSON of the wrong shape, non-UTF-8 or too deep counts as damaged.
    """
    check_size(path, what, "delete it; its results are computed again.", MAX_CACHE_BYTES)
    rows, damaged = [], 0
    for raw in path.read_bytes().split(b"\n"):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
            json.loads(text)
        except UnicodeDecodeError:
            damaged += 1
            continue
        except json.JSONDecodeError:
            continue  # cut by an interrupt
        except (RecursionError, ValueError):
            pass  # too deep or a huge integer: parse_json names it below
        try:
            rows.append(row.check(parse_json(text, f"A line of the {what}", ""), "", f"the {what}", ""))
        except BertnpuError:
            damaged += 1
    return rows, damaged
