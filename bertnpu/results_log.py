"""PROVISIONAL (replaced at merge by the result-log branch): the one cache-key rule."""

from __future__ import annotations

import hashlib
import json
from typing import Mapping

from .version import __version__


def cache_key(kind: str, ident: Mapping) -> str:
    text = json.dumps({"kind": kind, "ident": ident, "bertnpu": __version__}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]
