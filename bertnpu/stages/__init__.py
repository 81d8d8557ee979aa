"""The stage layer: one entry point per pipeline stage, shared by the CLI, ``bertnpu run``, the widgets and the notebooks.

Each stage takes one frozen inputs dataclass and returns one frozen result dataclass (numbers,
Figure objects, the paths it wrote) whose ``to_dict()`` is its entry in ``summary.json``::

    analyze            AnalyzeInputs    -> AnalyzeResult       op inventory, placement figure, .mblt
    export_embeddings  ExportInputs     -> EmbeddingsResult    weight_dict.pth (CPU part)
    calibrate          CalibrateInputs  -> CalibrationResult   calibration set + coverage of validation tokens
    collect_stats      StatsInputs      -> StatsResult         activation stats + range figures
    simulate           SimulateInputs   -> SimulateResult      simulated INT8 vs FP32 on one split
    run_sweep          SweepInputs      -> SweepResult         typed rows (SweepRow), heatmap, recommended recipe
    evaluate           EvaluateInputs   -> EvaluationResult    FP32 / tutorial / recommended (/ planned) on test: Spearman, cosine, recall@10
    compile_or_bundle  CompileInputs    -> CompileResult       .mxq with qbcompiler, else a compile bundle
    plan               PlanInputs       -> PlanResult          cheapest recipe within a tolerance, Pareto table, recipe.json
"""

from .analyze import AnalyzeInputs, AnalyzeResult, analyze
from .calibrate import EVALUATION_SPLIT, CalibrateInputs, CalibrationResult, calibrate, describe_calibration
from .collect_stats import StatsInputs, StatsResult, collect_stats
from .compile import CompileInputs, CompileResult, compile_or_bundle
from .embeddings import EmbeddingsResult, ExportInputs, export_embeddings
from .evaluate import EvaluateInputs, EvaluationResult, evaluate
from .plan import PlanInputs, PlanResult, plan
from .simulate import SimulateInputs, SimulateResult, simulate
from .sweep import SweepInputs, SweepResult, run_sweep

__all__ = [
    "EVALUATION_SPLIT",
    "AnalyzeInputs", "AnalyzeResult", "analyze",
    "CalibrateInputs", "CalibrationResult", "calibrate", "describe_calibration",
    "CompileInputs", "CompileResult", "compile_or_bundle",
    "EmbeddingsResult", "ExportInputs", "export_embeddings",
    "EvaluateInputs", "EvaluationResult", "evaluate",
    "PlanInputs", "PlanResult", "plan",
    "SimulateInputs", "SimulateResult", "simulate",
    "StatsInputs", "StatsResult", "collect_stats",
    "SweepInputs", "SweepResult", "run_sweep",
]
