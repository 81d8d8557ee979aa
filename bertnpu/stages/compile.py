"""Stage 8, compile or bundle: the ``.mxq`` with qbcompiler where it is installed, else a portable compile bundle."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

from ..data.calibration import CalibrationSet
from ..errors import BertnpuError
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from .result import StageResult

TARGETS = ("auto", "mxq", "bundle")
BUNDLE_NOTE = "qbcompiler is not installed: compile_bundle/README.md has the docker commands for Mobilint's qbcompiler image"


@dataclass(frozen=True)
class CompileInputs:
    """``target``: ``mxq`` (needs qbcompiler), ``bundle``, or ``auto`` (mxq where qbcompiler is installed);
    ``mxq`` / ``bundle``: the paths to write for each; ``allow_missing_knobs``: compile with a qbcompiler
    that lacks a knob the recipe uses (see :func:`~bertnpu.device.qbcompiler_adapter.compile_mxq`)."""

    model: LoadedModel
    calibration: CalibrationSet
    recipe: Recipe = field(default_factory=Recipe)
    target: str = "auto"
    mxq: Optional[Path] = None
    bundle: Optional[Path] = None
    device: Optional[str] = None
    allow_missing_knobs: bool = False
    force: bool = False
    log: Optional[Callable[[str], None]] = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.target not in TARGETS:
            raise BertnpuError(f"Compile target {self.target!r} is unknown; use one of {', '.join(TARGETS)}.")
        if self.target in ("mxq", "auto") and self.mxq is None:
            raise BertnpuError("Pass --out model.mxq to compile, or --bundle DIR to export a compile bundle.")
        if self.target in ("bundle", "auto") and self.bundle is None:
            raise BertnpuError("Pass --bundle DIR to export a compile bundle.")


@dataclass(frozen=True)
class CompileResult(StageResult):
    mxq: Optional[Path]
    bundle: Optional[Path]
    recipe: Recipe
    note: Optional[str] = None


def compile_or_bundle(inputs: CompileInputs) -> CompileResult:
    """Compile ``inputs.recipe`` to ``.mxq``, or write the bundle that compiles it inside Mobilint's image.

    Example:
        >>> r = compile_or_bundle(CompileInputs(model, calibration, target="bundle", bundle=Path("compile_bundle")))
        >>> r.bundle  # doctest: +SKIP
        PosixPath('compile_bundle')
    """
    from ..device.bundle import write_compile_bundle
    from ..device.qbcompiler_adapter import compile_mxq, load_qbcompiler, qbcompiler_available

    target = inputs.target
    if target == "auto":
        target = "mxq" if qbcompiler_available() else "bundle"
    if target == "mxq":
        load_qbcompiler()  # one sentence naming the fix where it is missing
        out = compile_mxq(inputs.model, inputs.calibration, inputs.recipe, inputs.mxq, force=inputs.force, device=inputs.device,
                          allow_missing_knobs=inputs.allow_missing_knobs, log=inputs.log)
        return CompileResult(mxq=Path(out), bundle=None, recipe=inputs.recipe)
    out = write_compile_bundle(inputs.model, inputs.calibration, inputs.recipe, inputs.bundle, force=inputs.force)
    if inputs.log is not None:
        inputs.log(f"wrote compile bundle {out}; see {out}/README.md for the docker commands\n")
    return CompileResult(mxq=None, bundle=Path(out), recipe=inputs.recipe, note=BUNDLE_NOTE if inputs.target == "auto" else None)
