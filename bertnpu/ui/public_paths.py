"""What a shareable page may show of a local path: relative paths as the user gave them, absolute ones
as a placeholder naming what they are, so a published page carries no home folder, user name or mount point.

Example:
    >>> public_path("../data/stsbenchmark", "stsb")
    '../data/stsbenchmark'
    >>> public_path("/home/alice/data/stsbenchmark", "stsb")
    '<STS-B folder>'
"""

from __future__ import annotations

import html
import os
import sys
from pathlib import Path
from typing import Any, Iterable, Optional

PLACEHOLDERS = {"stsb": "<STS-B folder>", "work": "<work folder>", "model": "<model folder>", "out": "<output folder>",
                "python": "<python environment>", "checkout": "<bertnpu checkout>", "home": "~"}

# dict keys whose values are binary payloads (base64 images, widget buffers): never rewritten
_OPAQUE_KEYS = ("image/", "buffers")


def is_absolute(path: str | os.PathLike) -> bool:
    return os.path.isabs(os.path.expanduser(str(path)))


def public_path(path: Optional[str | os.PathLike], kind: str, show_paths: bool = False) -> Optional[str]:
    """``path`` as a page may show it: as given when relative (or with ``show_paths``), else the placeholder of ``kind``."""
    if path is None:
        return None
    if kind not in PLACEHOLDERS:
        raise ValueError(f"unknown path kind {kind!r}")
    return str(path) if show_paths or not is_absolute(path) else PLACEHOLDERS[kind]


class PathRedactor:
    """Rewrites every spelling of some local paths (as given, absolute, symlink-resolved, HTML-escaped)
    into what a page may show, in text or in a whole notebook (sources, outputs, widget state)."""

    def __init__(self) -> None:
        self._pairs: dict[str, str] = {}

    def add(self, path: Optional[str | os.PathLike], kind: str, shown: Optional[str] = None) -> "PathRedactor":
        """Show every spelling of ``path`` as ``shown`` (default :func:`public_path`); a too-short path (``/``) is ignored."""
        if not path:
            return self
        shown = public_path(path, kind) if shown is None else shown
        raw = os.path.expanduser(str(path))
        for variant in {raw, os.path.abspath(raw), os.path.realpath(raw)}:
            variant = variant.rstrip(os.sep)
            if len(variant) > 1 and is_absolute(variant) and variant != shown:
                self._pairs.setdefault(variant, shown)
        return self

    def add_defaults(self) -> "PathRedactor":
        """The folders any output may name: the Python environment, the bertnpu checkout, the home folder and
        the current folder (absolute paths below it become relative)."""
        self.add(sys.prefix, "python")
        self.add(Path(__file__).resolve().parents[2], "checkout")
        home = os.path.expanduser("~")
        if len(home) > 1:
            self.add(home, "home")
        cwd = os.getcwd()
        if len(cwd) > 1:
            self.add(cwd, "out", shown=".")
        return self

    def _ordered(self) -> list[tuple[str, str]]:
        pairs = list(self._pairs.items())
        pairs += [(html.escape(a), html.escape(b)) for a, b in pairs if html.escape(a) != a]
        return sorted(pairs, key=lambda p: -len(p[0]))  # the longest first: a work folder before the folder holding it

    def text(self, value: str) -> str:
        for path, shown in self._ordered():
            if path in value:
                value = value.replace(path, shown)
        return value

    def value(self, value: Any) -> Any:
        """``value`` (str, list, dict, nested) with every string rewritten; binary payloads are left alone."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, list):
            return [self.value(v) for v in value]
        if isinstance(value, dict):
            for key in list(value):
                if not (isinstance(key, str) and key.startswith(_OPAQUE_KEYS)):
                    value[key] = self.value(value[key])
            return value
        return value

    def notebook(self, nb):
        """Rewrite ``nb`` in place (cell sources, outputs, metadata with the saved widget state); returns it."""
        self.value(nb)
        return nb

    def paths(self) -> Iterable[str]:
        """The absolute spellings this redactor hides (for tests and checks)."""
        return list(self._pairs)
