"""``bertnpu run``: the stages in order, each through the project store (cached by the hash of its inputs).

Stages: analysis -> embeddings -> calibration -> stats -> sweep -> plan -> evaluation -> compile (or bundle)
-> summary.json (+ report.html when the presentation layer passes ``report``), all in one project folder.
A re-run with the same inputs reuses each stage and says so; ``force`` recomputes everything; an
interrupted run resumes (the sweep and the plan even within themselves, from their result logs). This
module holds no stage recipe: only what feeds each stage and its cache key.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from ..artifacts import atomic_write_json
from ..run_config import RunConfig
from ..version import __version__
from .layout import OUTPUTS, STAGES
from .store import ProjectStore

PLAN_SKIPPED = ("not run (--no-plan): no 16-bit sites or transformations were planned; the sweep's INT8-only recommendation "
                "was evaluated and compiled")


def run_project(config: RunConfig, log: Callable[[str], None] = print, *, present: Optional[Callable[[Any, Path], Any]] = None,
                report: Optional[Callable[[dict, Path], Sequence[Path]]] = None) -> dict:
    """Run every stage into ``config.out`` and return the summary (also written as summary.json).

    With no ``present`` / ``report`` no figures and no report.html are written; :func:`bertnpu.ui.run.run_pipeline`
    runs the same with the figures and the report (what ``bertnpu run`` does).
    """
    from ..quant.kernel_policy import decide_once

    policy = decide_once()  # the process's thread policy, unless its caller (the CLI) decided it already
    if policy is not None and policy.why:
        log(policy.why)
    store = ProjectStore(config, log, present=present)
    # the lock keeps a second run out; the claim refuses (without --force) files bertnpu did not write
    with store.writing(*OUTPUTS):
        return _run(store, report)


def _run(store: ProjectStore, report: Optional[Callable[[dict, Path], Sequence[Path]]]) -> dict:
    from .. import stages as st
    from ..quant.recipe import Recipe
    from ..quant.stats import load_stats
    from ..tune.plan.spec import PlanSpec

    start = time.perf_counter()
    o, out = store.config, store.path
    model, mhash = store.model, store.model_sha
    validation, test = store.pairs("validation"), store.pairs("test")
    s: dict[str, Any] = {}
    s["inputs"] = {"model": model.name, "model_sha256": mhash, "stsb": validation.source, "stsb_sha256": store.data_sha,
                   "validation_pairs": len(validation), "test_pairs": len(test), "quick": o.is_quick}
    s["versions"] = {"bertnpu": __version__, "python": platform.python_version(), **_package_versions()}

    s["analysis"] = store.stage("analysis", {"model": mhash}, lambda: st.analyze(
        st.AnalyzeInputs(model, out=store.at("analysis"), force=True)))
    s["embeddings"] = store.stage("embeddings", {"model": mhash}, lambda: st.export_embeddings(
        st.ExportInputs(model, store.at("weight_dict"), force=True)))
    s["calibration"] = store.calibrate()
    calib = store.calibration
    stats_key = store.stats_key()
    s["stats"] = store.stats_result
    stats = load_stats(store.at("stats"), model)
    sweep_key = sweep_stage_key(o, stats_key, store.data_sha)
    s["sweep"] = store.stage("sweep", sweep_key, lambda: st.run_sweep(st.SweepInputs(
        model, stats, validation, **o.sweep_options, out=store.at("sweep"), recommended=store.at("recommended_config"))))
    chosen = Recipe.from_dict(s["sweep"]["recommended_recipe"])
    plan_key = {**stats_key, "data": store.data_sha, "profile": PlanSpec.profile, "tolerance": PlanSpec.tolerance, "min_cosine": PlanSpec.min_cosine,
                "max_sites": o.plan_max_sites, "try_layernorm": PlanSpec.try_layernorm, "intervals": 1,
                "bracket": o.plan_bracket, **o.plan_options}  # every plan knob the run sets, whatever the preset
    if o.plan:
        s["plan"] = store.stage("plan", plan_key, lambda: st.plan(st.PlanInputs(
            model, calib, validation, test, stats=stats, max_sites=o.plan_max_sites, out=store.at("recipe"),
            cache=store.at("plan_log"), force=True, bracket=o.plan_bracket, **o.plan_options)))
        planned = Recipe.from_dict(s["plan"]["recipe"])  # the planned recipe is what gets compiled
    else:
        s["plan"] = {"skipped": PLAN_SKIPPED}
        store.log(f"[{STAGES.index('plan') + 1}/{len(STAGES)}] plan: skipped (--no-plan)")
        planned = None
    compiled = planned or chosen
    if o.target_device:  # the device the bundle (or .mxq) is compiled for; the simulation does not depend on it
        compiled = compiled.with_(target_device=o.target_device)
    confirmed = getattr(store.live.get("plan"), "plan", None)  # the plan's test embeddings when it ran now (same numbers, not encoded twice)
    s["evaluation"] = store.stage("evaluation", {**sweep_key, "planned": planned.to_dict() if planned else None}, lambda: st.evaluate(st.EvaluateInputs(
        model, stats, test, recommended=chosen, planned=planned, calib=calib, known_embeddings=getattr(confirmed, "test_embeddings", {}),
        known_sentences=tuple(getattr(confirmed, "test_sentences", ())))))
    compile_key = {**stats_key, "config": s["sweep"]["recommended"], "recipe": compiled.to_dict()}
    s["compile"] = store.stage("compile", compile_key, lambda: st.compile_or_bundle(st.CompileInputs(
        model, calib, compiled, mxq=store.at("mxq"), bundle=store.at("bundle"), force=True)))
    s["reused_stages"] = store.reused
    s["seconds"] = round(time.perf_counter() - start, 1)
    atomic_write_json(store.at("summary"), s, force=True)
    if report is None:
        store.record("summary.json")
        store.log(f"wrote {out}/summary.json in {s['seconds']:.0f} s")
        return s
    written = report(s, out)
    store.record("summary.json", *(Path(p).name for p in written))
    store.log(f"wrote {out}/summary.json and {out}/report.html in {s['seconds']:.0f} s")
    return s


def sweep_stage_key(config: RunConfig, stats_key: dict, data_sha: str) -> dict:
    """The sweep stage's inputs: the statistics, the STS-B contents and the knobs the run's search and strategy read
    (:attr:`RunConfig.sweep_options`), so a knob they ignore never changes the key."""
    return {**stats_key, "data": data_sha, **config.sweep_options, "intervals": 1}  # intervals: results from before the bootstrap are recomputed


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "numpy", "qbcompiler", "mobilint-qb-runtime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
