"""``<model>.mxq.recipe.json``: what a ``.mxq`` was compiled from and what it returns, written beside it.

Holds the recipe as simulated, the 16-bit activations in both vocabularies (``sites_16bit``: bertnpu's
site names, as in the recipe; ``operators_16bit``: the qbcompiler operator names given to
``BitConfig.LayerOverrides(activation_16bits=...)``), the other knobs exactly as passed to qbcompiler
(and which recipe knobs the installed qbcompiler lacked), and what the ``.mxq`` returns for the
pooling. ``bertnpu eval --mxq`` reads it for the three-way check.

Schema 1 kept the operator names as ``passed["activation_16bits"]`` (qbcompiler's keyword, while a
recipe's ``activation_16bits`` holds site names) and the site -> operator map as ``operators``;
:func:`read_compile_record` migrates such a file on reading.
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

SCHEMA_VERSION = 2


def record_path_for(mxq: str | os.PathLike) -> Path:
    return Path(f"{mxq}.recipe.json")


def _names(value: Any, name: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{name} must be a list of names, not {value!r}")
    return tuple(value)


@dataclass(frozen=True)
class CompileRecord:
    """One compile: the recipe, its 16-bit sites and the operator names they became, the other qbcompiler arguments, the output."""

    recipe: Recipe
    output: CompiledOutput
    sites_16bit: tuple[str, ...] = ()  # bertnpu site names compiled at 16 bits (none where bit_config was dropped)
    operators_16bit: tuple[str, ...] = ()  # qbcompiler operator names passed as bit_config: one per site, in order, then the recipe's raw ones
    passed: dict = field(default_factory=dict)  # the other knobs as given to mxq_compile (calibration, transformations, target)
    knobs_dropped: tuple = ()  # recipe knobs the installed qbcompiler lacks (compiled with --allow-missing-knobs)
    qbcompiler_api: str = ""
    model: str = ""
    qbcompiler_version: str = ""  # the installed release's __version__ ("" where it has none)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sites_16bit", _names(self.sites_16bit, "sites_16bit"))
        object.__setattr__(self, "operators_16bit", _names(self.operators_16bit, "operators_16bit"))
        if len(self.operators_16bit) < len(self.sites_16bit):
            raise ValueError(f"operators_16bit has {len(self.operators_16bit)} name(s) for {len(self.sites_16bit)} site(s) in sites_16bit; "
                             "each site needs the operator it was compiled as")

    @property
    def operators(self) -> dict[str, str]:
        """bertnpu site -> the qbcompiler operator it was compiled as (16-bit sites only)."""
        return dict(zip(self.sites_16bit, self.operators_16bit))

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "tool": f"bertnpu {__version__}", "model": self.model, "recipe": self.recipe.to_dict(),
                "sites_16bit": list(self.sites_16bit), "operators_16bit": list(self.operators_16bit), "passed": self.passed,
                "knobs_dropped": list(self.knobs_dropped), "qbcompiler_api": self.qbcompiler_api, "qbcompiler_version": self.qbcompiler_version,
                "output": self.output.to_dict()}

    @classmethod
    def from_dict(cls, data: dict) -> "CompileRecord":
        """A record of this schema or an older one (migrated: see :func:`migrate`)."""
        data = migrate(data)
        return cls(Recipe.from_dict(data["recipe"]), CompiledOutput.from_dict(data["output"]),
                   sites_16bit=data.get("sites_16bit", ()), operators_16bit=data.get("operators_16bit", ()),
                   passed=dict(data.get("passed", {})), knobs_dropped=tuple(data.get("knobs_dropped", ())),
                   qbcompiler_api=str(data.get("qbcompiler_api", "")), model=str(data.get("model", "")),
                   qbcompiler_version=str(data.get("qbcompiler_version", "")))

    def save(self, path: str | os.PathLike) -> Path:
        return atomic_write_json(path, self.to_dict(), force=True)  # a companion: replaced with its .mxq


def migrate(data: dict) -> dict:
    """A record's JSON in this schema's fields; schema 1 (or none) moves ``passed["activation_16bits"]`` (operator
    names) to ``operators_16bit`` and the keys of ``operators`` (site -> operator) to ``sites_16bit``."""
    if int(data.get("schema_version", 1)) >= 2:
        return data
    data = dict(data)
    passed = dict(data.get("passed", {}))
    site_ops = dict(data.pop("operators", {}))
    data["sites_16bit"] = list(site_ops)
    # schema 1 passed the mapped names first (in site order), then the recipe's raw operator names
    data["operators_16bit"] = list(passed.pop("activation_16bits", site_ops.values()))
    data["passed"] = passed
    return data


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
