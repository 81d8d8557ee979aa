"""The project store: one folder per model journey, shared by ``bertnpu run`` and the notebooks.

One layout (:mod:`.layout`), one lock and record of what bertnpu wrote (:class:`.folder.OutputFolder`),
one cache-key rule (:func:`bertnpu.results_log.cache_key`: the stage's inputs and the bertnpu version),
and the inputs every stage starts from (the model, the STS-B splits, the calibration set, the statistics),
loaded once per process. A finished stage leaves ``stages/<name>.json`` with its key, its files' digests and
its result; the next caller with the same inputs (a re-run, or a notebook opened on the run's folder)
reuses it after checking its files.
"""

from __future__ import annotations

import contextlib
import gc
import json
import time
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..artifacts import atomic_write_json
from ..results_log import cache_key
from ..run_config import RunConfig
from .folder import OutputFolder
from .layout import LAYOUT, STAGES


class ProjectStore:
    """The folder ``config.out`` and what has been computed for ``config``.

    ``present(result, folder)`` (injected by the presentation layer, :func:`bertnpu.ui.project.open_project`)
    returns a stage result with its figures written into ``folder``; without it no figures are drawn.

    Example:
        >>> store = ProjectStore(RunConfig.quick(out="work"))   # doctest: +SKIP
        >>> store.stats.sites[0].name                           # doctest: +SKIP
        'layer0.attention.query.out'
    """

    def __init__(self, config: RunConfig, log: Callable[[str], None] = print, *,
                 present: Optional[Callable[[Any, Path], Any]] = None):
        self.config = config
        self.path = Path(config.out)
        self.log = log
        self.present = present
        self.files = OutputFolder(self.path, force=config.force)
        self.reused: list[str] = []
        self.live: dict[str, Any] = {}  # stage results computed in this process (objects): later stages reuse their arrays
        self._depth = 0
        self._pairs: dict[tuple[str, bool], Any] = {}

    # -- the folder ---------------------------------------------------------------------------
    def at(self, artifact: str) -> Path:
        """Where ``artifact`` (a :data:`~.layout.LAYOUT` name) lives in this project."""
        return self.path / LAYOUT[artifact]

    @contextlib.contextmanager
    def writing(self, *claims: str) -> Iterator["ProjectStore"]:
        """Hold the folder's lock (re-entrant within this store) and claim ``claims`` (layout paths) before writing them."""
        if self._depth == 0:
            self.files.__enter__()
        self._depth += 1
        try:
            if claims:
                self.files.claim(*claims)
            yield self
        except BaseException as exc:
            self._depth -= 1
            if self._depth == 0:
                self.files.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._depth -= 1
        if self._depth == 0:
            self.files.settle()
            self.files.__exit__(None, None, None)

    def record(self, *rels: str) -> None:
        self.files.record(*rels)

    # -- stages -------------------------------------------------------------------------------
    def stage(self, name: str, key: dict, work: Callable[[], Any], *, force: bool = False) -> dict:
        """The stage's result as a dict: reused from ``stages/<name>.json`` when ``key`` matches and its files
        are as written, else ``work()``'s (then recorded). ``force``: compute even when a result is there."""
        step = f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name}" if name in STAGES else name
        marker = self.at("stages") / f"{name}.json"
        key = _plain(key)
        key_hash = cache_key(f"stage:{name}", key)
        with self.writing():
            if marker.exists() and not (force or self.config.force):
                saved, why = _read_marker(marker)
                if saved is not None and saved.get("key") != key_hash:
                    why = None  # inputs changed: the usual recompute, nothing to explain
                elif saved is not None:
                    why = self.files.differs(saved["files"])  # a reused stage verifies its files first
                    if why is None:
                        self.log(f"{step}: reused (inputs unchanged), files verified")
                        self.reused.append(name)
                        return saved["result"]
                if why:
                    self.log(f"{step}: recomputing ({why})")
            start = time.perf_counter()
            self.log(f"{step} ...")
            self.live[name] = work()
            if self.present is not None:
                self.live[name] = self.present(self.live[name], self.at("figures"))
            result = self.live[name].to_dict(relative_to=self.path)
            result["seconds"] = round(time.perf_counter() - start, 2)
            written = _written(result)
            self.files.record(*written)
            atomic_write_json(marker, {"key": key_hash, "inputs": key, "files": self.files.digests(written), "result": result}, force=True)
            self.files.record(f"{LAYOUT['stages']}/{name}.json")
        from ..memory import memory_line, release_free_memory

        release_free_memory()  # what the stage freed goes back before the next one starts
        self.log(f"{step}: done in {result['seconds']:.1f} s, {memory_line()}")
        return result

    # -- the inputs every stage starts from ----------------------------------------------------
    @cached_property
    def model(self):
        from ..model.load import load_model, quiet_loading

        with quiet_loading():
            return load_model(self.config.model, trust_remote_code=self.config.trust_remote_code)

    @cached_property
    def model_sha(self) -> str:
        from ..quant.stats import model_hash

        return model_hash(self.model)[:16]

    def pairs(self, split: str, *, whole: bool = False):
        """An STS-B split, cut to the configuration's ``validation_pairs`` / ``test_pairs`` (0: all);
        ``whole``: uncut (the calibration set draws from the whole split, whatever the evaluation's cut)."""
        if (split, whole) not in self._pairs:
            from ..data.stsb import load_stsb

            pairs = self._pairs[(split, True)] if (split, True) in self._pairs else load_stsb(split, self.config.stsb_dir)
            self._pairs[(split, True)] = pairs
            limit = 0 if whole else {"validation": self.config.validation_pairs, "test": self.config.test_pairs}.get(split, 0)
            self._pairs[(split, whole)] = pairs.subset(limit) if limit else pairs
        return self._pairs[(split, whole)]

    @cached_property
    def data_sha(self) -> str:
        """The contents of the validation and test pairs a result was measured on (part of every key after the model's)."""
        v, t = self.pairs("validation"), self.pairs("test")
        return cache_key("stsb", {"pairs": [v.sentence1, v.sentence2, v.scores.tolist(), t.sentence1, t.sentence2, t.scores.tolist()]})

    # -- calibration and statistics -------------------------------------------------------------
    def calibration_key(self, spec=None) -> dict:
        from ..data.calibration import CalibrationSpec

        spec = spec if spec is not None else CalibrationSpec(count=self.config.calib_count)
        return {"model": self.model_sha, "data": self.data_sha, "spec": spec.to_dict()}

    def rebuild_calibration(self, spec, *, progress: bool = True):
        """Build the calibration set for ``spec`` now (notebook 2's Build button); the stage's result object, figures included."""
        self.calibrate(spec, force=True, progress=progress)
        return self.live["calibration"]

    def calibrate(self, spec=None, *, force: bool = False, progress: bool = True) -> dict:
        """The calibration stage for ``spec`` (default: ``config.calib_count`` samples) into ``calib/``; its result dict.
        A changed calibration set makes the statistics' key change, so they are recomputed when next asked for."""
        from ..data.calibration import CalibrationSpec
        from ..stages import EVALUATION_SPLIT, CalibrateInputs, calibrate

        spec = spec if spec is not None else CalibrationSpec(count=self.config.calib_count)
        result = self.stage("calibration", self.calibration_key(spec), lambda: calibrate(CalibrateInputs(
            self.model, self.at("calib"), spec, source=self.pairs(spec.split, whole=True), evaluation=self.pairs(EVALUATION_SPLIT), force=True,
            progress=progress)), force=force)
        for name in ("calibration", "stats", "stats_result"):
            self.__dict__.pop(name, None)
        self.__dict__["_calibration_result"] = result
        return result

    @cached_property
    def _calibration_result(self) -> dict:
        marker = self.at("stages") / "calibration.json"
        saved, _ = _read_marker(marker) if marker.is_file() else (None, None)
        inputs = (saved or {}).get("inputs") or {}
        if (inputs.get("model"), inputs.get("data")) == (self.model_sha, self.data_sha) and not self.files.differs(saved["files"]):
            return saved["result"]  # the set last built here for this model and data (notebook 2 may have chosen another spec)
        return self.calibrate()

    @cached_property
    def calibration(self):
        """The calibration set (built with the default spec when the folder has none)."""
        from ..data.calibration import load_calibration_set

        self._calibration_result  # noqa: B018  (builds the set when missing)
        return load_calibration_set(self.at("calib"), self.model)

    def stats_key(self) -> dict:
        return {"calibration": self._calibration_result["sha256"], "model": self.model_sha}

    @cached_property
    def stats_result(self) -> dict:
        from ..stages import StatsInputs, collect_stats

        return self.stage("stats", self.stats_key(), lambda: collect_stats(StatsInputs(self.model, self.calibration, out=self.at("stats"), force=True)))

    @cached_property
    def stats(self):
        """The activation statistics of every site over the calibration set (computed once, then reused from ``stats.npz``)."""
        from ..quant.stats import load_stats

        self.stats_result  # noqa: B018
        stats = load_stats(self.at("stats"), self.model, self.calibration)
        # The model and stats live as long as the session; moving them out of the garbage
        # collector's view keeps full collections short, so a slider redraw never waits ~250 ms on one.
        gc.collect()
        gc.freeze()
        return stats

    # -- what gets compiled -----------------------------------------------------------------------
    def recipe_to_compile(self):
        """``(recipe, origin)``: the planned recipe (``recipe.json``, from ``bertnpu run`` or notebook 4's Plan panel),
        else the sweep's INT8-only recommendation (``recommended_recipe.json``), else the tutorial's config."""
        from ..quant.recipe import Recipe

        if self.at("recipe").is_file():
            return Recipe.load(self.at("recipe")), "planned (notebook 4's Plan panel or `bertnpu run`), the recipe `bertnpu run` compiles"
        if self.at("recommended_recipe").is_file():
            return Recipe.load(self.at("recommended_recipe")), ("recommended by the sweep (INT8 only; press Plan in notebook 4 "
                                                                "for the planned recipe)")
        return Recipe(), "the tutorial's config; run notebook 4 for a plan"


def _plain(key: dict) -> dict:
    """A stage's inputs as JSON data (a config object as its ``to_dict``), the form :func:`cache_key` hashes and the marker keeps."""
    def convert(value: Any) -> Any:
        if hasattr(value, "to_dict"):
            return value.to_dict()
        raise TypeError(f"a stage key holds {type(value).__name__}, which has no JSON form")

    return json.loads(json.dumps(key, default=convert))


def _read_marker(marker: Path) -> tuple[Optional[dict], Optional[str]]:
    """A stage marker, or None and why it cannot be trusted (half-written, edited, from an older bertnpu)."""
    try:
        saved = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None, f"its marker {marker.name} is unreadable"
    if not isinstance(saved, dict) or not isinstance(saved.get("result"), dict) or not isinstance(saved.get("files"), dict):
        return None, f"its marker {marker.name} lacks the record of its files"
    return saved, None


def _written(result: dict) -> list[str]:
    """The project paths a stage result names as written (relative; absolute ones lie outside the project)."""
    paths = list(result.get("files") or []) + [result[k] for k in ("weight_dict", "mxq", "bundle") if result.get(k)]
    return list(dict.fromkeys(str(p) for p in paths if not Path(str(p)).is_absolute() and ".." not in Path(str(p)).parts))
