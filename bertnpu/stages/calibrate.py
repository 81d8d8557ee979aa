"""Stage 3, calibrate: build the calibration set, then show which embedding ranges it covers.

The coverage figures compare the calibration tokens with the tokens of one evaluation split,
:data:`EVALUATION_SPLIT` (validation), everywhere: the CLI, ``bertnpu run`` and the widgets.
Test stays untouched until the final evaluation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from ..data.calibration import CalibrationSet, CalibrationSpec
from ..data.stsb import StsPairs
from ..errors import BertnpuError
from ..model.load import LoadedModel
from .result import StageResult, not_serialized

EVALUATION_SPLIT = "validation"


@dataclass(frozen=True)
class CalibrateInputs:
    """``source``: the pairs to sample from (split ``spec.split``); ``evaluation``: the pairs whose
    tokens the coverage is measured on (the validation split; None: no coverage). The figures are drawn from the
    result by :func:`bertnpu.ui.stage_figures.stage_figures`."""

    model: LoadedModel
    out: Path
    spec: CalibrationSpec
    source: StsPairs
    evaluation: Optional[StsPairs] = None
    force: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        if self.evaluation is not None:
            check_evaluation_split(self.evaluation)


@dataclass(frozen=True)
class CalibrationResult(StageResult):
    samples: int
    sha256: str
    tokens: int
    outlier_channels: tuple[Mapping[str, Any], ...]
    evaluation_split: Optional[str]
    eval_outside_fraction: Optional[float]
    coverage_curve: Optional[Mapping[str, Any]]
    files: tuple[Path, ...]
    calibration: CalibrationSet = not_serialized()
    channel_ranges: Any = not_serialized(default=None)  # ChannelRanges of the calibration tokens
    outside_per_channel: Any = not_serialized(default=None)  # per channel: fraction of validation values outside the calibration range


def check_evaluation_split(pairs: StsPairs) -> None:
    if pairs.split != EVALUATION_SPLIT:
        raise BertnpuError(f"Calibration coverage is measured on the {EVALUATION_SPLIT} split, not {pairs.split!r}; "
                           f"pass load_stsb({EVALUATION_SPLIT!r}) so test stays unseen until the final evaluation.")


def describe_calibration(model: LoadedModel, calibration: CalibrationSet, evaluation: Optional[StsPairs]) -> dict[str, Any]:
    """Numbers of a calibration set (and the arrays its figures draw); with ``evaluation`` (validation pairs) also its coverage of their tokens."""
    import numpy as np

    from ..data.calibration import embed_sentences
    from ..data.embedding_ranges import channel_ranges, coverage_curve, outlier_channels, outside_fraction
    from ..tune.evaluate import unique_sentences

    tokens = calibration.tokens()
    ranges = channel_ranges(tokens)
    outliers = outlier_channels(ranges)
    described = {"tokens": int(len(tokens)), "outlier_channels": tuple(outliers), "evaluation_split": None, "eval_outside_fraction": None,
                 "coverage_curve": None, "channel_ranges": ranges, "outside_per_channel": None}
    if evaluation is None:
        return described
    check_evaluation_split(evaluation)
    eval_tokens = np.concatenate([a[0] for a in embed_sentences(model, unique_sentences(evaluation)[0])])
    per_channel, overall = outside_fraction(tokens, eval_tokens)
    curve = coverage_curve(calibration.arrays, eval_tokens)
    return {**described, "evaluation_split": evaluation.split, "eval_outside_fraction": float(overall), "coverage_curve": curve,
            "outside_per_channel": per_channel}


def calibrate(inputs: CalibrateInputs) -> CalibrationResult:
    """Build the calibration folder for qbcompiler and measure its coverage of the validation tokens.

    Example:
        >>> r = calibrate(CalibrateInputs(model, Path("calib"), CalibrationSpec(count=128), load_stsb("validation"), load_stsb("validation")))
        >>> r.samples, r.eval_outside_fraction  # doctest: +SKIP
    """
    from ..data.calibration import build_calibration_set
    from ..quant.stats import calibration_hash

    cs = build_calibration_set(inputs.model, inputs.out, inputs.spec, pairs=inputs.source, force=inputs.force, progress=inputs.progress)
    described = describe_calibration(inputs.model, cs, inputs.evaluation)
    return CalibrationResult(samples=len(cs), sha256=calibration_hash(cs)[:16], files=(Path(inputs.out),),
                             calibration=cs, **described)
