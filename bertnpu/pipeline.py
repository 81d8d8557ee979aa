"""``bertnpu run``: orders the stages of :mod:`bertnpu.stages` and caches each by the hash of its inputs.

Stages: analysis -> embeddings -> calibration -> stats -> sweep -> evaluation -> compile
(or bundle) -> summary.json + report.html, all in one output folder. A finished stage
leaves ``stages/<name>.json`` with its input hash and its result (``StageResult.to_dict``);
a re-run with the same inputs reuses it and says so; ``force`` recomputes everything; an
interrupted run resumes (the sweep even within itself). This module holds no stage recipe:
only what feeds each stage, its cache key, and where its files go.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from .artifacts import atomic_write_json
from .run_config import RunConfig, RunOptions  # noqa: F401  (RunOptions: the earlier name, kept importable)
from .version import __version__

STAGES = ("analysis", "embeddings", "calibration", "stats", "sweep", "plan", "evaluation", "compile")
# Every name `bertnpu run` may write in its folder: a file a user put at one of these is never
# replaced or deleted without --force (the folder's .bertnpu-written.json says what bertnpu wrote).
OUTPUTS = ("stages", "analysis", "figures", "weight_dict.pth", "calib", "stats.npz", "sweep", "recommended_config.json",
           "recommended_recipe.json", "recipe.json", "plan-cache.jsonl", "model.mxq", "model.mxq.recipe.json", "model.mxq.config.json", "compile_bundle",
           "summary.json", "report.html", "report_data.json")
PLAN_SKIPPED = ("not run (--no-plan): no 16-bit sites or transformations were planned; the sweep's INT8-only recommendation "
                "was evaluated and compiled")
# Result fields that name files a stage wrote (besides ``files``).
_PATH_FIELDS = ("weight_dict", "mxq", "bundle")


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Pipeline:
    """Runs the stages in order; ``log`` receives one line per stage.

    The presentation is injected by the layer above (:func:`bertnpu.ui.run.run_pipeline`), so this store
    layer draws nothing itself: ``present(result, folder)`` returns a fresh stage result with its figures
    written into ``folder`` (and listed in its files); ``report(summary, out)`` writes report.html (and report_data.json) and returns the paths written.
    Without them the run writes the stages' data and summary.json only.
    """

    def __init__(self, options: RunConfig, log: Callable[[str], None] = print, *,
                 present: Optional[Callable[[Any, Path], Any]] = None, report: Optional[Callable[[dict, Path], Sequence[Path]]] = None):
        self.o = options
        self.present = present
        self.report = report
        self.out = Path(options.out)
        self.log = log
        self.summary: dict[str, Any] = {}
        self.reused: list[str] = []
        self.folder: Any = None  # the OutputFolder while running
        self.live: dict[str, Any] = {}  # stage results computed in this run (objects, not dicts): later stages reuse their arrays

    # -- stage bookkeeping ----------------------------------------------------------------
    def _stage(self, name: str, key: dict, work: Callable[[], Any]) -> dict:
        """The stage's summary entry: reused from ``stages/<name>.json`` when ``key`` matches, else ``work()``'s result."""
        step = f"[{STAGES.index(name) + 1}/{len(STAGES)}] {name}"
        marker = self.out / "stages" / f"{name}.json"
        key_hash = _sha({**key, "bertnpu": __version__})  # a new version may compute differently
        if marker.exists() and not self.o.force:
            saved, why = _read_marker(marker)
            if saved is not None and saved.get("key") != key_hash:
                why = None  # inputs changed: the usual recompute, nothing to explain
            elif saved is not None:
                why = self.folder.differs(saved["files"])  # a reused stage verifies its files first
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
            self.live[name] = self.present(self.live[name], self.out / "figures")
        result = self.live[name].to_dict(relative_to=self.out)
        result["seconds"] = round(time.perf_counter() - start, 2)
        written = _written(result)
        self.folder.record(*written)
        atomic_write_json(marker, {"key": key_hash, "files": self.folder.digests(written), "result": result}, force=True)
        self.folder.record(f"stages/{name}.json")
        from .memory import memory_line, release_free_memory

        release_free_memory()  # what the stage freed goes back before the next one starts
        self.log(f"{step}: done in {result['seconds']:.1f} s, {memory_line()}")
        return result

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict:
        from .output_folder import OutputFolder
        from .quant.kernel_policy import decide_once

        policy = decide_once()  # the process's thread policy, unless its caller (the CLI) decided it already
        if policy is not None and policy.why:
            self.log(policy.why)

        # the lock keeps a second run out; the claim refuses (without --force) files bertnpu did not write
        with OutputFolder(self.out, force=self.o.force) as folder:
            self.folder = folder
            folder.claim(*OUTPUTS)
            summary = self._run()
            folder.settle()
        return summary

    def _run(self) -> dict:
        from . import stages as st
        from .data.calibration import CalibrationSpec, load_calibration_set
        from .data.stsb import load_stsb
        from .model.load import load_model
        from .quant.recipe import Recipe
        from .quant.stats import load_stats, model_hash
        from .tune.plan.spec import PlanSpec

        start = time.perf_counter()
        out, o = self.out, self.o
        model = load_model(o.model, trust_remote_code=o.trust_remote_code)
        mhash = model_hash(model)[:16]
        validation = load_stsb("validation", o.stsb_dir)
        test = load_stsb("test", o.stsb_dir)
        if o.validation_pairs:
            validation = validation.subset(o.validation_pairs)
        if o.test_pairs:
            test = test.subset(o.test_pairs)
        data_hash = _sha([validation.sentence1, validation.sentence2, validation.scores.tolist(), test.sentence1, test.sentence2, test.scores.tolist()])
        s = self.summary
        s["inputs"] = {"model": model.name, "model_sha256": mhash, "stsb": validation.source, "stsb_sha256": data_hash,
                       "validation_pairs": len(validation), "test_pairs": len(test), "quick": o.is_quick}
        s["versions"] = {"bertnpu": __version__, "python": platform.python_version(), **_package_versions()}

        s["analysis"] = self._stage("analysis", {"model": mhash}, lambda: st.analyze(
            st.AnalyzeInputs(model, out=out / "analysis", force=True)))
        s["embeddings"] = self._stage("embeddings", {"model": mhash}, lambda: st.export_embeddings(
            st.ExportInputs(model, out / "weight_dict.pth", force=True)))
        calib_key = {"model": mhash, "data": data_hash, "count": o.calib_count}
        s["calibration"] = self._stage("calibration", calib_key, lambda: st.calibrate(st.CalibrateInputs(
            model, out / "calib", CalibrationSpec(count=o.calib_count), source=validation, evaluation=validation, force=True)))
        calib = load_calibration_set(out / "calib", model)
        stats_key = {**calib_key, "calib": s["calibration"]["sha256"]}
        s["stats"] = self._stage("stats", stats_key, lambda: st.collect_stats(
            st.StatsInputs(model, calib, out=out / "stats.npz", force=True)))
        stats = load_stats(out / "stats.npz", model)
        sweep_key = {**stats_key, "methods": o.methods, "outputs": o.outputs, "search": o.search, "strategy": o.strategy, "confirm": o.confirm,
                     "intervals": 1}  # intervals: results from before the bootstrap are recomputed
        if o.search == "grid":  # the wide search scores its own cells: percentiles and topk ratios never enter its key
            sweep_key.update(p=o.percentiles, k=o.topk_ratios)
        if o.is_quick:
            sweep_key["proxy_sentences"] = o.proxy_sentences
        s["sweep"] = self._stage("sweep", sweep_key, lambda: st.run_sweep(st.SweepInputs(
            model, stats, validation, percentiles=o.percentiles, topk_ratios=o.topk_ratios, methods=o.methods, outputs=o.outputs,
            search=o.search, strategy=o.strategy, confirm=o.confirm, proxy_sentences=o.proxy_sentences,
            out=out / "sweep", recommended=out / "recommended_config.json")))
        chosen = Recipe.from_dict(s["sweep"]["recommended_recipe"])
        plan_key = {**stats_key, "profile": PlanSpec.profile, "tolerance": PlanSpec.tolerance, "min_cosine": PlanSpec.min_cosine,
                    "max_sites": o.plan_max_sites, "try_layernorm": PlanSpec.try_layernorm, "intervals": 1}
        if o.is_quick:
            plan_key.update(bracket=o.plan_bracket, **o.plan_options)
        if o.plan:
            s["plan"] = self._stage("plan", plan_key, lambda: st.plan(st.PlanInputs(
                model, calib, validation, test, stats=stats, max_sites=o.plan_max_sites, out=out / "recipe.json",
                cache=out / "plan-cache.jsonl", force=True, bracket=o.plan_bracket, **o.plan_options)))
            planned = Recipe.from_dict(s["plan"]["recipe"])  # the planned recipe is what gets compiled
        else:
            s["plan"] = {"skipped": PLAN_SKIPPED}
            self.log(f"[{STAGES.index('plan') + 1}/{len(STAGES)}] plan: skipped (--no-plan)")
            planned = None
        compiled = planned or chosen
        if o.target_device:  # the device the bundle (or .mxq) is compiled for; the simulation does not depend on it
            compiled = compiled.with_(target_device=o.target_device)
        confirmed = getattr(self.live.get("plan"), "plan", None)  # the plan's test embeddings when it ran now (same numbers, not encoded twice)
        s["evaluation"] = self._stage("evaluation", {**sweep_key, "planned": planned.to_dict() if planned else None}, lambda: st.evaluate(st.EvaluateInputs(
            model, stats, test, recommended=chosen, planned=planned, calib=calib, known_embeddings=getattr(confirmed, "test_embeddings", {}),
            known_sentences=tuple(getattr(confirmed, "test_sentences", ())))))
        compile_key = {**stats_key, "config": s["sweep"]["recommended"], "recipe": compiled.to_dict()}
        s["compile"] = self._stage("compile", compile_key, lambda: st.compile_or_bundle(st.CompileInputs(
            model, calib, compiled, mxq=out / "model.mxq", bundle=out / "compile_bundle", force=True)))
        s["reused_stages"] = self.reused
        s["seconds"] = round(time.perf_counter() - start, 1)
        atomic_write_json(out / "summary.json", s, force=True)
        if self.report is None:
            self.folder.record("summary.json")
            self.log(f"wrote {out}/summary.json in {s['seconds']:.0f} s")
            return s
        written = self.report(s, out)
        self.folder.record("summary.json", *(Path(p).name for p in written))
        self.log(f"wrote {out}/summary.json and {out}/report.html in {s['seconds']:.0f} s")
        return s


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
    """The run-folder paths a stage result names as written (relative; absolute ones lie outside the run)."""
    paths = list(result.get("files") or []) + [result[k] for k in _PATH_FIELDS if result.get(k)]
    return list(dict.fromkeys(str(p) for p in paths if not Path(str(p)).is_absolute() and ".." not in Path(str(p)).parts))


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "numpy", "qbcompiler", "mobilint-qb-runtime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def run_pipeline(options: RunConfig, log: Callable[[str], None] = print, *, present: Optional[Callable[[Any, Path], Any]] = None,
                 report: Optional[Callable[[dict, Path], Sequence[Path]]] = None) -> dict:
    """Run every stage into ``options.out`` and return the summary (also written as summary.json).

    With no ``present`` / ``report`` no figures and no report.html are written; :func:`bertnpu.ui.run.run_pipeline`
    runs the same with the figures and the report (what ``bertnpu run`` does).
    """
    return Pipeline(options, log, present=present, report=report).run()
