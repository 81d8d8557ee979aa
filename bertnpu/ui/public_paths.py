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
_HTML_WIDGETS = ("HTMLModel", "HTMLMathModel")
ELLIPSIS = "\u2026"
_MIN_TRUNCATED = 8  # shorter cut-off starts ("/tmp/") name nothing private


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

    def _ordered(self, in_html: bool) -> list[tuple[str, str]]:
        # in HTML a placeholder must be escaped too, or a browser would take <work folder> for a tag and hide it
        shown = html.escape if in_html else str
        pairs = [(a, shown(b)) for a, b in self._pairs.items()]
        pairs += [(html.escape(a), html.escape(b)) for a, b in self._pairs.items() if html.escape(a) != a]
        return sorted(pairs, key=lambda p: -len(p[0]))  # the longest first: a work folder before the folder holding it

    def text(self, value: str, in_html: bool = False) -> str:
        """``value`` with every spelling of the paths rewritten; ``in_html``: ``value`` is HTML (placeholders escaped)."""
        for path, shown in self._ordered(in_html):
            if path in value:
                value = value.replace(path, shown)
        return self._truncated(value, in_html) if ELLIPSIS in value else value

    def _truncated(self, value: str, in_html: bool) -> str:
        """A path cut short by a repr (``Combobox(value='/home/alice/mod…``): its visible start goes too."""
        for path, shown in self._ordered(in_html):
            pos = value.find(ELLIPSIS)
            while pos >= 0:
                k = next((k for k in range(min(len(path) - 1, pos), _MIN_TRUNCATED - 1, -1) if value.endswith(path[:k], 0, pos)), 0)
                if k:
                    value = value[:pos - k] + shown + value[pos:]
                    pos -= k - len(shown)
                pos = value.find(ELLIPSIS, pos + 1)
        return value

    def value(self, value: Any, in_html: bool = False) -> Any:
        """``value`` (str, list, dict, nested notebook JSON) with every string rewritten; binary payloads are left alone.
        HTML is recognised as notebooks store it: ``text/html`` outputs and the ``value`` of HTML widgets."""
        if isinstance(value, str):
            return self.text(value, in_html)
        if isinstance(value, list):
            return [self.value(v, in_html) for v in value]
        if isinstance(value, dict):
            widget_html = value.get("model_name") in _HTML_WIDGETS and isinstance(value.get("state"), dict)
            for key in list(value):
                if isinstance(key, str) and key.startswith(_OPAQUE_KEYS):
                    continue
                if widget_html and key == "state":
                    state = value[key]
                    value[key] = {k: self.value(v, in_html or k == "value") for k, v in state.items()}
                else:
                    value[key] = self.value(value[key], in_html or key == "text/html")
            return value
        return value

    def notebook(self, nb):
        """Rewrite ``nb`` in place (cell sources, outputs, metadata with the saved widget state); returns it."""
        self.value(nb)
        return nb

    def paths(self) -> Iterable[str]:
        """The absolute spellings this redactor hides (for tests and checks)."""
        return list(self._pairs)


def report_redactor(summary: dict, out: str | os.PathLike) -> PathRedactor:
    """The redactor for a run's ``report.html``: the model folder, the STS-B folder and the output folder of ``summary``'s inputs."""
    inputs = summary.get("inputs", {})
    redactor = PathRedactor()
    model, stsb = inputs.get("model"), inputs.get("stsb")
    if model and Path(model).expanduser().exists():  # a folder (a hub id is no path)
        redactor.add(model, "model")
    if stsb and is_absolute(stsb):
        redactor.add(Path(stsb).parent, "stsb")  # the source is one split's file: hide its folder
    return redactor.add(out, "out").add_defaults()
