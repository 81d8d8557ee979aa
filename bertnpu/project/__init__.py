"""The project store: one folder layout, one lock, one cache-key rule, and the run that fills it.

:class:`ProjectStore` serves both ``bertnpu run`` (:func:`run_project`) and the notebooks
(:func:`bertnpu.ui.project.open_project`): the same inputs give the same stage results in the same places.
"""

from .folder import LOCK, MARKER, OutputFolder
from .layout import LAYOUT, OUTPUTS, STAGES
from .run import PLAN_SKIPPED, run_project
from .store import ProjectStore

__all__ = ["LAYOUT", "LOCK", "MARKER", "OUTPUTS", "OutputFolder", "PLAN_SKIPPED", "ProjectStore", "STAGES", "run_project"]
