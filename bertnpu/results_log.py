"""Resumable results: one cache-key rule and one append-only JSON-lines log of computed results.

The sweep and the planner score many candidates, each for minutes; every result goes to a
:class:`ResultLog` as soon as it exists, so an interrupted run resumes where it stopped. A
result is found again by its :func:`cache_key`: a digest of *everything* that changes it
(the model, the calibration, the evaluated pairs, the candidate) and of the bertnpu version,
so a cached number is never served for other inputs or by another version's code.

Example:
    >>> from bertnpu.schema import Field, Schema
    >>> log = ResultLog(None, Schema({"spearman": Field(float)}), "example log")  # None: in memory only
    >>> key = cache_key("full", {"model": "ab12", "pairs": 1500})
    >>> len(key), key == cache_key("full", {"pairs": 1500, "model": "ab12"})
    (24, True)
    >>> log.put(key, {"spearman": 0.81})
    {'spearman': 0.81}
    >>> key in log, log.get(key)
    (True, {'spearman': 0.81})
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from collections.abc import Mapping
from types import MappingProxyType
from typing import Optional

from .artifacts import os_error_sentence
from .errors import BertnpuError, BertnpuWarning
from .schema import Field, Schema, read_json_lines
from .version import __version__

KEY_LENGTH = 24  # hex digits of the SHA-256 kept: 96 bits, no collision among the few thousand results of a cache
KEY_FIELD = "key"  # the one field every row has; the caller's schema describes the rest


def canonical_json(value) -> str:
    """``value`` as the one JSON text :func:`cache_key` hashes: keys sorted at every depth, no spaces.

    Tuples and lists give the same text (a recipe's site list may be either); ``1`` and ``1.0`` do not.
    Only JSON data is accepted (dicts with string keys, lists, tuples, strings, numbers, booleans, None):
    anything else raises ``TypeError``, since its ``str`` may hide what changed (a tensor's is abridged).
    """
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def cache_key(kind: str, ident: Mapping) -> str:
    """The key of a cached result: SHA-256 over the canonical JSON (:func:`canonical_json`) of
    ``{"kind": kind, "ident": ident, "bertnpu": <version>}``, its first :data:`KEY_LENGTH` hex digits.

    ``kind`` names what was computed (``"proxy"``, ``"full"``, ``"validation"``); ``ident`` holds every input
    that changes the result (content hashes, not file names). The order of ``ident``'s keys does not
    matter; any change of a value, of ``kind`` or of the bertnpu version gives another key (a new version
    may compute differently, so its results are computed again).

    Example:
        >>> cache_key("proxy", {"ranges": "9f3c", "seed": 0}) == cache_key("proxy", {"seed": 0, "ranges": "9f3c"})
        True
        >>> cache_key("proxy", {"ranges": "9f3c", "seed": 0}) == cache_key("proxy", {"ranges": "9f3c", "seed": 1})
        False
    """
    assert isinstance(kind, str) and isinstance(ident, Mapping), (kind, type(ident))
    text = canonical_json({"kind": kind, "ident": dict(ident), "bertnpu": __version__})
    return hashlib.sha256(text.encode("ascii")).hexdigest()[:KEY_LENGTH]


class ResultLog:
    """Append-only JSON lines of ``{"key": ..., **value}`` rows: results read back on start, each new one appended at once.

    Args:
        path: the JSON-lines file (created with its folder on the first :meth:`put`); None keeps results in memory only.
        row: the :class:`~bertnpu.schema.Schema` of a value (the ``key`` field is added); a line it refuses is never used.
        what: the log's name in messages (``"sweep cache"``).

    On reading, a line cut by an interrupt is skipped silently; lines that are damaged otherwise (edited, wrong
    types, not UTF-8) are skipped with one :class:`~bertnpu.errors.BertnpuWarning` naming the file and their
    count. Either way that result is missing and its caller computes it again. When a key occurs twice, the later
    line wins (a result measured again replaces an older one). A new line never continues a cut one.
    """

    def __init__(self, path: Optional[str | os.PathLike], row: Schema, what: str = "result log"):
        assert KEY_FIELD not in row.fields, "the result log adds the key field itself"
        self.path = Path(path) if path is not None else None
        self.what = what
        self.row = Schema({KEY_FIELD: Field(str, max_len=64), **row.fields}, strict=row.strict, rule=row.rule, max_len=row.max_len)
        self._values: dict[str, dict] = {}
        if self.path is not None and self.path.is_file():
            try:
                rows, damaged = read_json_lines(self.path, self.row, what)
            except OSError as exc:
                raise BertnpuError(f"Cannot read the {what} {str(self.path)!r} ({exc.strerror or exc.__class__.__name__}); "
                                   "make it readable, or delete it and its results are computed again.") from None
            for found in rows:
                self._values[found.pop(KEY_FIELD)] = found
            if damaged:
                warnings.warn(f"{damaged} damaged line(s) in the {what} {str(self.path)!r} were skipped; those results are computed again.",
                              BertnpuWarning, stacklevel=2)

    def __contains__(self, key: str) -> bool:
        return key in self._values

    def __len__(self) -> int:
        return len(self._values)

    @property
    def values(self) -> Mapping[str, dict]:
        """Every result, key to value (read-only; add with :meth:`put`)."""
        return MappingProxyType(self._values)

    def get(self, key: str) -> Optional[dict]:
        """The value stored under ``key``, or None."""
        return self._values.get(key)

    def put(self, key: str, value: Mapping) -> dict:
        """Store ``value`` under ``key``: appended to the file as one complete line, then kept; returns the value.

        A full disk or a read-only folder is one :class:`~bertnpu.errors.BertnpuError` sentence; the lines
        already written stay valid.
        """
        assert KEY_FIELD not in value, "the key is the put's first argument"
        value = dict(value)
        if self.path is not None:
            line = json.dumps({KEY_FIELD: key, **value}, sort_keys=True).encode() + b"\n"
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a+b") as fh:
                    end = fh.seek(0, os.SEEK_END)
                    if end > 0:
                        fh.seek(end - 1)
                        if fh.read(1) != b"\n":  # the last line was cut by an interrupt: end it, never glue onto it
                            line = b"\n" + line
                    fh.write(line)  # append mode: at the end, in one write
            except OSError as exc:
                raise BertnpuError(os_error_sentence(exc, self.path)) from None
        self._values[key] = value
        return value
