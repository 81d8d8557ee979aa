"""``bertnpu run``: orders the stages of :mod:`bertnpu.stages` and caches each by the hash of its inputs.

Stages: analysis -> embeddings -> calibration -> stats -> sweep -> evaluation -> compile
(or bundle) -> summary.json + report.html, all in one output folder. A finished stage
leaves ``stages/<name>.json`` with its input hash and its result (``StageResult.to_dict``);
a re-run with the same inputs reuses it and says so; ``force`` recomputes everything; an
interrupted run resumes (the sweep even within itself). This module holds no stage recipe:
only what feeds each stage, its cache key, and where its files go.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

from .artifacts import atomic_write_json, atomic_write_text
from .version import __version__

STAGES = ("analysis", "embeddings", "calibration", "stats", "sweep", "plan", "evaluation", "compile")
# Every name `bertnpu run` may write in its folder: a file a user put at one of these is never
# replaced or deleted without --force (the folder's .bertnpu-written.json says what bertnpu wrote).
OUTPUTS = ("stages", "analysis", "figures", "weight_dict.pth", "calib", "stats.npz", "sweep", "recommended_config.json",
           "recommended_recipe.json", "recipe.json", "plan-cache.jsonl", "model.mxq", "model.mxq.recipe.json", "model.mxq.config.json", "compile_bundle",
           "summary.json", "report.html")
PLAN_SKIPPED = ("not run (--no-plan): no 16-bit sites or transformations were planned; the sweep's INT8-only recommendation "
                "was evaluated and compiled")
# Result fields that name files a stage wrote (besides ``files``).
_PATH_FIELDS = ("weight_dict", "mxq", "bundle")


@dataclass(frozen=True)
class RunOptions:
    """What ``bertnpu run`` does; ``quick`` shrinks the calibration set, the sweep, the plan and the evaluation.

    ``--quick`` is a smoke run (target: about 20 s on 2 cores for the default model): 32 calibration
    samples, a 4-cell sweep ranked on 64 proxy sentences (128 earlier: the same two cells
    confirmed, the same recommendation), 200 validation and 125 test pairs (250 before; the held-out
    split changes neither the recommendation nor the plan), and a plan over 2 calibration configs,
    no transformations, at most one 16-bit site tried among the residual sums, 16 proxy sentences (48 before: the same planned
    recipe on the default model; the traffic share is measured on them) and no profile bracket.
    Its summary says ``quick``; its numbers are not the full run's.
    """

    model: Optional[str] = None
    stsb_dir: Optional[str] = None
    out: str = "bertnpu-out"
    quick: bool = False
    force: bool = False
    trust_remote_code: bool = False
    plan: bool = True  # False (--no-plan): no 16-bit planning; the sweep's INT8-only recommendation is evaluated and compiled

    @property
    def calib_count(self) -> int:
        return 32 if self.quick else 256

    @property
    def percentiles(self) -> tuple[float, ...]:
        return (0.999, 1.0) if self.quick else (0.99, 0.999, 0.9999, 1.0)

    @property
    def topk_ratios(self) -> tuple[float, ...]:
        return (0.01,) if self.quick else (0.001, 0.01, 0.1)

    @property
    def methods(self) -> tuple[int, ...]:
        return (0, 1) if self.quick else (0, 1, 2, 3)

    @property
    def outputs(self) -> tuple[int, ...]:
        return (0,) if self.quick else (0, 1)

    @property
    def search(self) -> str:
        """The full run searches the wide space (methods 0-3, outputs 0/1, modes 0-2); quick the small grid."""
        return "grid" if self.quick else "wide"

    @property
    def strategy(self) -> str:
        return "fast"

    @property
    def confirm(self) -> int:
        return 2 if self.quick else 4

    @property
    def proxy_sentences(self) -> int:
        """Validation sentences the sweep's proxy encodes per candidate."""
        from .tune.sweep import PROXY_SENTENCES

        return 64 if self.quick else PROXY_SENTENCES

    @property
    def validation_pairs(self) -> int:
        return 200 if self.quick else 0  # 0 = all

    @property
    def test_pairs(self) -> int:
        return 125 if self.quick else 0

    @property
    def plan_max_sites(self) -> int:
        return 1 if self.quick else 8

    @property
    def plan_options(self) -> dict:
        """PlanInputs fields beyond the defaults: the quick plan's smaller search (empty for the full run)."""
        if not self.quick:
            return {}
        from .quant.config import QuantConfig

        configs = (QuantConfig(method=1, mode=1, percentile=0.999, topk_ratio=0.01), QuantConfig(method=0, mode=1, percentile=0.999, topk_ratio=0.01))
        return {"proxy_sentences": 16, "configs": configs, "transforms": (), "candidate_roles": ("attention.residual", "ffn.residual")}

    @property
    def plan_bracket(self) -> bool:
        """The profile bracket (every recipe under every profile on test): the full run only."""
        return not self.quick


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Pipeline:
    """Runs the stages in order; ``log`` receives one line per stage."""

    def __init__(self, options: RunOptions, log: Callable[[str], None] = print):
        self.o = options
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
        with fewer_threads_when_busy(lambda line: self.log(f"{step}: {line}")):
            self.live[name] = work()
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

        start = time.perf_counter()
        out, o = self.out, self.o
        figures = out / "figures"
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
                       "validation_pairs": len(validation), "test_pairs": len(test), "quick": o.quick}
        s["versions"] = {"bertnpu": __version__, "python": platform.python_version(), **_package_versions()}

        s["analysis"] = self._stage("analysis", {"model": mhash}, lambda: st.analyze(
            st.AnalyzeInputs(model, out=out / "analysis", figures=figures, force=True)))
        s["embeddings"] = self._stage("embeddings", {"model": mhash}, lambda: st.export_embeddings(
            st.ExportInputs(model, out / "weight_dict.pth", force=True)))
        calib_key = {"model": mhash, "data": data_hash, "count": o.calib_count}
        s["calibration"] = self._stage("calibration", calib_key, lambda: st.calibrate(st.CalibrateInputs(
            model, out / "calib", CalibrationSpec(count=o.calib_count), source=validation, evaluation=validation, figures=figures, force=True)))
        calib = load_calibration_set(out / "calib", model)
        stats_key = {**calib_key, "calib": s["calibration"]["sha256"]}
        s["stats"] = self._stage("stats", stats_key, lambda: st.collect_stats(
            st.StatsInputs(model, calib, out=out / "stats.npz", figures=figures, force=True)))
        stats = load_stats(out / "stats.npz", model)
        sweep_key = {**stats_key, "p": o.percentiles, "k": o.topk_ratios, "methods": o.methods, "outputs": o.outputs, "search": o.search,
                     "strategy": o.strategy, "confirm": o.confirm}
        if o.quick:
            sweep_key["proxy_sentences"] = o.proxy_sentences
        s["sweep"] = self._stage("sweep", sweep_key, lambda: st.run_sweep(st.SweepInputs(
            model, stats, validation, percentiles=o.percentiles, topk_ratios=o.topk_ratios, methods=o.methods, outputs=o.outputs,
            search=o.search, strategy=o.strategy, confirm=o.confirm, proxy_sentences=o.proxy_sentences,
            out=out / "sweep", figures=figures, recommended=out / "recommended_config.json")))
        chosen = Recipe.from_dict(s["sweep"]["recommended_recipe"])
        plan_key = {**stats_key, "profile": "aries", "tolerance": 0.005, "min_cosine": 0.99, "max_sites": o.plan_max_sites,
                    "try_layernorm": False}
        if o.quick:
            plan_key.update(bracket=o.plan_bracket, **o.plan_options)
        if o.plan:
            s["plan"] = self._stage("plan", plan_key, lambda: st.plan(st.PlanInputs(
                model, calib, validation, test, stats=stats, max_sites=o.plan_max_sites, out=out / "recipe.json",
                cache=out / "plan-cache.jsonl", figures=figures, force=True, bracket=o.plan_bracket, **o.plan_options)))
            planned = Recipe.from_dict(s["plan"]["recipe"])  # the planned recipe is what gets compiled
        else:
            s["plan"] = {"skipped": PLAN_SKIPPED}
            self.log(f"[{STAGES.index('plan') + 1}/{len(STAGES)}] plan: skipped (--no-plan)")
            planned = None
        compiled = planned or chosen
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
        atomic_write_text(out / "report.html", self._report(), force=True)
        self.folder.record("summary.json", "report.html")
        self.log(f"wrote {out}/summary.json and {out}/report.html in {s['seconds']:.0f} s")
        return s

    def _report(self) -> str:
        from .ui.run_report import run_report

        return run_report(self.summary, self.out)


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


def _busy_elsewhere(samples: int = 2, pause: float = 0.02) -> Optional[int]:
    """Processes other than this one running on a CPU now (the fewest over a few looks), or None where /proc is missing."""
    import os

    me, counts = os.getpid(), []
    for i in range(samples):
        try:
            names = os.listdir("/proc")
        except OSError:
            return None
        running = 0
        for pid in names:
            if not pid.isdigit() or int(pid) == me:
                continue
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    running += fh.read().rsplit(b")", 1)[1].split()[0] == b"R"
            except (OSError, IndexError):
                continue  # ended meanwhile
        counts.append(running)
        if i + 1 < samples:
            time.sleep(pause)
    return min(counts)


def stage_threads() -> Optional[tuple[int, str]]:
    """Lower torch's threads for one stage when other processes already run on the cores: returns (threads to restore,
    a line saying why), or None when nothing changes.

    Why: every torch op is an OpenMP region whose threads wait for each other; with a core taken by another
    process, two threads on 2 cores measured a simulated encode at 13-23 s against 2.0 s on one thread, and a
    quick run at 139 s against about 22 s. Results are the same on any thread count (GEMM splits its outputs, not
    its sums; checked bit for bit on the default model).
    """
    import torch

    from .quant.fake_quant import usable_cores

    threads = torch.get_num_threads()
    busy = _busy_elsewhere()
    cores = usable_cores()
    if busy is None or threads <= 1:
        return None
    use = max(1, min(threads, cores - busy))
    if use >= threads:
        return None
    torch.set_num_threads(use)
    return threads, f"{busy} other process(es) running on {cores} cores: {use} torch thread(s) for this stage (same results, less waiting)"


@contextlib.contextmanager
def fewer_threads_when_busy(log: Optional[Callable[[str], None]] = None):
    """Run the block under :func:`stage_threads` (``log`` gets its line when it lowers the threads), restoring them after."""
    threads = stage_threads()
    if threads is not None and log is not None:
        log(threads[1])
    try:
        yield
    finally:
        if threads is not None:
            import torch

            torch.set_num_threads(threads[0])


def run_pipeline(options: RunOptions, log: Callable[[str], None] = print) -> dict:
    """Run every stage into ``options.out`` and return the summary (also written as summary.json)."""
    return Pipeline(options, log).run()
