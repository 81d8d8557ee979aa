"""Stage 1, analyze: the op inventory with CPU/NPU placement, per-block totals, and the MBLT where qbcompiler is installed."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Optional

from ..model.load import LoadedModel
from .result import StageResult, not_serialized


@dataclass(frozen=True)
class AnalyzeInputs:
    """``out``: folder for ``ops.csv`` / ``ops.json`` and the ``.mblt`` (None: write nothing but the MBLT in ``.``).
    The placement figure is drawn from the result by :func:`bertnpu.ui.stage_figures.stage_figures`."""

    model: LoadedModel
    out: Optional[Path] = None
    mblt: bool = True
    force: bool = False
    target_device: Optional[str] = None  # qbcompiler 1.3 builds the MBLT for a device (aries-rb, regulus-ra, ...)


@dataclass(frozen=True)
class AnalyzeResult(StageResult):
    summary: Mapping[str, Any]
    blocks: tuple[Mapping[str, Any], ...]
    ops: int
    sentence_tokens: int
    mblt: Optional[Path]
    files: tuple[Path, ...]
    rows: tuple[Mapping[str, Any], ...] = not_serialized()
    mblt_note: str = ""  # why no .mblt was written although qbcompiler is installed (1.3 without a target device)


def analyze(inputs: AnalyzeInputs) -> AnalyzeResult:
    """Inventory the model's ops (torch.export) and place each on the CPU or the NPU.

    Example:
        >>> r = analyze(AnalyzeInputs(load_model()))
        >>> r.ops, r.blocks[0]["block"]  # doctest: +SKIP
    """
    from ..artifacts import atomic_write_json, atomic_write_text
    from ..device.qbcompiler_adapter import compile_mblt, qbcompiler_available
    from ..model.analysis import block_summary, model_summary, op_inventory

    model = inputs.model
    rows = op_inventory(model)
    blocks = block_summary(model, rows)
    files: tuple[Path, ...] = ()
    if inputs.out is not None:
        out = Path(inputs.out)
        buf = io.StringIO()
        writer = csv.DictWriter(buf, ["index", "op", "module", "block", "placement", "shape", "flops"])
        writer.writeheader()
        writer.writerows(rows)
        files = (atomic_write_text(out / "ops.csv", buf.getvalue(), force=inputs.force),
                 atomic_write_json(out / "ops.json", rows, force=inputs.force))
    mblt, note = None, ""
    if inputs.mblt and qbcompiler_available():
        from ..device import qb_calls
        from ..device.qbcompiler_adapter import api_generation, load_qbcompiler

        try:  # the analysis graph is for Netron: 1.3 without a target device skips it with a sentence, the op inventory stands
            qb_calls.resolve_target_device(api_generation(load_qbcompiler()), None, inputs.target_device)
        except qb_calls.QbCallError as exc:
            if inputs.target_device is not None:
                raise
            note = f"no .mblt written: {exc}"
        if not note:
            mblt = compile_mblt(model, Path(inputs.out or ".") / f"{Path(str(model.name)).name}.mblt", force=inputs.force,
                                target_device=inputs.target_device)
            files += (mblt,)
    return AnalyzeResult(summary=model_summary(model), blocks=tuple(blocks), ops=len(rows), sentence_tokens=int(rows[0]["shape"][1]),
                         mblt=mblt, files=files, rows=tuple(rows), mblt_note=note)
