"""A notebook's working folder: builds the calibration set and statistics once, then reuses them."""

from __future__ import annotations

import gc
import os
from functools import cached_property
from pathlib import Path
from typing import Optional

from ..data.calibration import CalibrationSet, CalibrationSpec, load_calibration_set
from ..model.load import LoadedModel, load_model, quiet_loading
from ..data.stsb import StsPairs, load_stsb


class Workspace:
    """Model, STS-B splits, calibration set and activation stats under one folder.

    Each notebook creates one with its parameters and asks for what it needs; anything
    missing is built (and saved) on first use, so the notebooks also run on their own.
    """

    def __init__(self, folder: str | os.PathLike, model: Optional[str] = None, stsb_dir: Optional[str] = None,
                 calib_count: int = 128, eval_pairs: int = 0):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.model_name, self.stsb_dir = model, stsb_dir
        self.calib_count, self.eval_pairs = calib_count, eval_pairs
        self._pairs: dict[str, StsPairs] = {}

    @cached_property
    def model(self) -> LoadedModel:
        with quiet_loading():
            return load_model(self.model_name)

    def pairs(self, split: str) -> StsPairs:
        if split not in self._pairs:
            p = load_stsb(split, self.stsb_dir)
            self._pairs[split] = p.subset(self.eval_pairs) if self.eval_pairs else p
        return self._pairs[split]

    @property
    def calib_dir(self) -> Path:
        return self.folder / "calib"

    def calibrate(self, spec: CalibrationSpec, *, describe: bool = True, progress: bool = True):
        """(Re)build the calibration set with the calibrate stage and drop stats computed from an older one.

        ``describe``: also measure its coverage of the validation tokens (the stage's figures).
        Returns the stage's :class:`~bertnpu.stages.CalibrationResult`.
        """
        from ..stages import EVALUATION_SPLIT, CalibrateInputs, calibrate

        result = calibrate(CalibrateInputs(self.model, self.calib_dir, spec, source=load_stsb(spec.split, self.stsb_dir),
                                           evaluation=self.pairs(EVALUATION_SPLIT) if describe else None, force=True, progress=progress))
        (self.folder / "stats.npz").unlink(missing_ok=True)
        self.__dict__.pop("stats", None)
        self.__dict__["calibration"] = result.calibration
        return result

    def build_calibration(self, spec: CalibrationSpec, progress: bool = True) -> CalibrationSet:
        """(Re)build the calibration set (no coverage figures) and drop stats computed from an older one."""
        return self.calibrate(spec, describe=False, progress=progress).calibration

    @cached_property
    def calibration(self) -> CalibrationSet:
        if (self.calib_dir / "manifest.json").is_file():
            return load_calibration_set(self.calib_dir, self.model)
        return self.build_calibration(CalibrationSpec(count=self.calib_count))

    @cached_property
    def stats(self):
        from ..errors import BertnpuError
        from ..quant.stats import load_stats
        from ..stages import StatsInputs, collect_stats

        path = self.folder / "stats.npz"
        stats = None
        if path.is_file():
            try:
                stats = load_stats(path, self.model, self.calibration)
            except BertnpuError as exc:  # e.g. written by an older bertnpu: this folder's own cache, so recompute
                print(f"{exc} Recomputing it in this work folder.")
        if stats is None:
            stats = collect_stats(StatsInputs(self.model, self.calibration, out=path, force=True, describe=False)).stats
        # The model and stats live as long as the session; moving them out of the garbage
        # collector's view keeps full collections short, so a slider redraw never waits ~250 ms on one.
        gc.collect()
        gc.freeze()
        return stats

    def recipe_to_compile(self):
        """``(recipe, origin)``: what notebook 5 compiles, the same choice as ``bertnpu run``.

        The planned recipe (``plan/recipe.json``, written by notebook 4's Plan panel), else the
        sweep's INT8-only recommendation (``sweep/recommended_recipe.json``), else the tutorial's config.
        """
        from ..quant.recipe import Recipe

        planned, recommended = self.folder / "plan" / "recipe.json", self.folder / "sweep" / "recommended_recipe.json"
        if planned.is_file():
            return Recipe.load(planned), "planned by notebook 4's Plan panel, the recipe `bertnpu run` compiles"
        if recommended.is_file():
            return Recipe.load(recommended), "recommended by notebook 4's sweep (INT8 only; press Plan in notebook 4 for the planned recipe)"
        return Recipe(), "the tutorial's config; run notebook 4 for a plan"
