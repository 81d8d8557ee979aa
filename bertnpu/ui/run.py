"""``bertnpu run`` with its presentation: the project's stages, their figures in ``figures/`` and report.html.

The project store computes and caches the stages; the figures and the report are drawn here, on the
presentation side, and handed to it, so that no import runs from the store up to ``ui``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from ..project import run_project
from ..run_config import RunConfig
from .run_report import write_run_report
from .stage_figures import present


def present_into(result: Any, folder: Path) -> Any:
    """A project's presentation of one stage: its figures written into ``figures/`` (replacing earlier ones)."""
    return present(result, folder, force=True)


def run_pipeline(options: RunConfig, log: Callable[[str], None] = print) -> dict:
    """Run every stage into ``options.out`` with figures and report.html; returns the summary (also summary.json)."""
    return run_project(options, log, present=present_into, report=write_run_report)
