"""A notebook's project: the same store, layout and cache keys as ``bertnpu run``, with the stage figures drawn."""

from __future__ import annotations

from typing import Optional

from ..project import ProjectStore
from ..run_config import RunConfig
from .run import present_into


def open_project(workdir: str, model: Optional[str] = None, stsb_dir: Optional[str] = None, calib_count: Optional[int] = None,
                 eval_pairs: Optional[int] = None, config: Optional[RunConfig] = None) -> ProjectStore:
    """The project in ``workdir`` for the notebooks: ``config`` (default :meth:`RunConfig.full`, what ``bertnpu run``
    does) with the notebook's parameters on top. ``eval_pairs`` cuts both STS-B splits (0: whole splits, as the run).

    A notebook opened on a ``bertnpu run`` folder with the run's parameters reuses its calibration set and statistics.
    """
    changes = {"model": model, "stsb_dir": stsb_dir, "calib_count": calib_count, "validation_pairs": eval_pairs, "test_pairs": eval_pairs}
    config = (config or RunConfig.full()).with_(out=str(workdir), **{k: v for k, v in changes.items() if v is not None})
    return ProjectStore(config, present=present_into)
