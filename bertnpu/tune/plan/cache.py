"""The planner's resumable cache of simulated results."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Optional

from ...errors import BertnpuError, BertnpuWarning
from ...schema import Field, Schema, read_json_lines
from ...quant.recipe import Recipe


# One line: a result key and what the planner stored under it (cosines and Spearman correlations, -1 to 1;
# Spearman is NaN for constant embeddings).
_SCORE = Field(float, required=False, low=-1.0, high=1.0, finite=False)
VALUE = Schema({"cosine": Field(float, low=-1.0, high=1.0), "spearman": _SCORE})
ROW = Schema({"key": Field(str, max_len=64), "value": Field(dict, items=VALUE)})


class ResultCache:
    """Append-only JSON lines ``{key, value}``; a line cut by an interrupt is ignored on reload."""

    def __init__(self, path: Optional[str | os.PathLike], ident: dict):
        self.path = Path(path) if path is not None else None
        self.ident = ident
        self.values: dict[str, dict] = {}
        if self.path is not None and self.path.is_file():
            rows, damaged = read_json_lines(self.path, ROW, "plan cache")
            self.values = {row["key"]: row["value"] for row in rows}
            if damaged:
                warnings.warn(f"{damaged} damaged line(s) in the plan cache {str(self.path)!r} were skipped; those results are simulated again.",
                              BertnpuWarning, stacklevel=2)

    def key(self, kind: str, recipe: Recipe) -> str:
        body = {k: v for k, v in recipe.to_dict().items() if k not in ("prediction", "target_device")}
        body["activation_16bits"] = sorted(body["activation_16bits"])
        text = json.dumps({"kind": kind, "recipe": body, **self.ident}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def get(self, kind: str, recipe: Recipe) -> Optional[dict]:
        return self.values.get(self.key(kind, recipe))

    def put(self, kind: str, recipe: Recipe, value: dict) -> dict:
        k = self.key(kind, recipe)
        self.values[k] = value
        if self.path is not None:
            from ...artifacts import os_error_sentence

            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": k, "value": value}, sort_keys=True) + "\n")
            except OSError as exc:  # a full disk or a read-only folder: one sentence
                raise BertnpuError(os_error_sentence(exc, self.path)) from None
        return value
