"""``<model>.mxq.recipe.json``: what a ``.mxq`` was compiled from and what it returns, written beside it.

Holds the recipe as simulated, the operator name each 16-bit site resolved to, exactly what was
passed to qbcompiler (and which recipe knobs the installed qbcompiler lacked), and what the
``.mxq`` returns for the pooling. ``bertnpu eval --mxq`` reads it for the three-way check.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from ..artifacts import atomic_write_json
from ..errors import BertnpuError
from ..quant.recipe import Recipe
from ..version import __version__
from .compiled_output import CompiledOutput

SCHEMA_VERSION = 1


def record_path_for(mxq: str | os.PathLike) -> Path:
    return Path(f"{mxq}.recipe.json")


@dataclass(frozen=True)
class CompileRecord:
    """One compile: the recipe, the resolved operator names, the qbcompiler arguments, the output."""

    recipe: Recipe
    output: CompiledOutput
    operators: dict = field(default_factory=dict)  # bertnpu site -> qbcompiler operator name
    passed: dict = field(default_factory=dict)  # the knobs as given to mxq_compile
    knobs_dropped: tuple = ()  # recipe knobs the installed qbcompiler lacks (compiled with --allow-missing-knobs)
    qbcompiler_api: str = ""
    model: str = ""
    qbcompiler_version: str = ""  # the installed release's __version__ ("" where it has none)

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "tool": f"bertnpu {__version__}", "model": self.model, "recipe": self.recipe.to_dict(),
                "operators": dict(self.operators), "passed": self.passed, "knobs_dropped": list(self.knobs_dropped),
                "qbcompiler_api": self.qbcompiler_api, "qbcompiler_version": self.qbcompiler_version,
                "output": self.output.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "CompileRecord":
        return cls(Recipe.from_dict(data["recipe"]), CompiledOutput.from_dict(data["output"]), dict(data.get("operators", {})),
                   dict(data.get("passed", {})), tuple(data.get("knobs_dropped", ())), str(data.get("qbcompiler_api", "")),
                   str(data.get("model", "")), str(data.get("qbcompiler_version", "")))

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_dict(), force=True)  # a companion: replaced with its .mxq


def read_compile_record(mxq: str | os.PathLike) -> Optional[CompileRecord]:
    """The record beside ``mxq``, or None when there is none (e.g. a ``.mxq`` from Mobilint's tutorial)."""
    path = record_path_for(mxq)
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if int(data.get("schema_version", 0)) > SCHEMA_VERSION:
            raise BertnpuError(f"{str(path)!r} has schema_version {data['schema_version']}, newer than this bertnpu reads; upgrade bertnpu ({__version__}).")
        return CompileRecord.from_dict(data)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BertnpuError(f"{str(path)!r} is not a readable compile record ({exc.__class__.__name__}: {exc}); delete it or recompile with `bertnpu compile --recipe`.") from None
