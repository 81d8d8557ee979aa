"""What every stage returns: a frozen dataclass whose ``to_dict()`` is the stage's entry in ``summary.json``.

Live objects (the model, stats, arrays the figures draw) are kept but not serialized; figures are
drawn from a result on the presentation side (:mod:`bertnpu.ui.stage_figures`). The files a stage
wrote are listed in ``files`` and serialize as paths, relative to a run folder when
``to_dict(relative_to=...)`` gets one.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Mapping, Optional

import numpy as np

def not_serialized(**kwargs: Any) -> Any:
    """A dataclass field that ``to_dict`` leaves out (live objects: the model, stats, figures)."""
    return dataclasses.field(metadata={"json": False}, compare=False, repr=False, **kwargs)


def encode(value: Any, relative_to: Optional[Path] = None) -> Any:
    """``value`` as JSON-ready data: dataclasses by field, numpy scalars as numbers, paths as strings."""
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return value.to_dict()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name), relative_to) for f in dataclasses.fields(value) if f.metadata.get("json", True)}
    if isinstance(value, os.PathLike):
        path = Path(value)
        if relative_to is not None:
            try:
                return path.resolve().relative_to(Path(relative_to).resolve()).as_posix()
            except ValueError:
                pass
        return str(path)
    if isinstance(value, Mapping):
        return {str(k): encode(v, relative_to) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [encode(v, relative_to) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


class StageResult:
    """Mixin for the frozen result dataclasses of the stages."""

    def to_dict(self, relative_to: Optional[str | os.PathLike] = None) -> dict[str, Any]:
        root = Path(relative_to) if relative_to is not None else None
        return {f.name: encode(getattr(self, f.name), root) for f in dataclasses.fields(self) if f.metadata.get("json", True)}
