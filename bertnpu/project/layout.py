"""The one folder layout: where every artifact of a project lives, for ``bertnpu run`` and the notebooks alike.

A notebook work folder and a ``bertnpu run --out`` folder are the same kind of folder: notebook 4's
plan goes where the run's plan goes, so notebook 5 compiles what the run would, and a notebook
opened on a run's folder reuses its calibration set and statistics (same inputs, same cache key).
"""

from __future__ import annotations

STAGES = ("analysis", "embeddings", "calibration", "stats", "sweep", "plan", "evaluation", "compile")

# artifact -> path relative to the project folder
LAYOUT = {
    "stages": "stages",  # one marker per finished stage: its cache key, its files' digests, its result
    "analysis": "analysis",
    "figures": "figures",
    "weight_dict": "weight_dict.pth",
    "calib": "calib",
    "stats": "stats.npz",
    "sweep": "sweep",  # sweep.csv, sweep.json and the sweep's result log
    "recommended_config": "recommended_config.json",
    "recommended_recipe": "recommended_recipe.json",  # the sweep's INT8-only recommendation (beside recommended_config.json)
    "recipe": "recipe.json",  # the planned recipe: what gets compiled
    "plan_log": "plan-cache.jsonl",  # the planner's result log (resumable)
    "evaluation": "evaluation.json",  # notebook 4's closing comparison (the run keeps its own in stages/evaluation.json)
    "mxq": "model.mxq",
    "mxq_recipe": "model.mxq.recipe.json",  # its compile record (device.compile_record.record_path_for), written with it
    "bundle": "compile_bundle",
    "summary": "summary.json",
    "report": "report.html",
    "report_data": "report_data.json",
}
# Every name a project may hold: a file a user put at one of these is never replaced or deleted without
# --force (the folder's .bertnpu-written.json says what bertnpu wrote).
OUTPUTS = tuple(LAYOUT.values())
