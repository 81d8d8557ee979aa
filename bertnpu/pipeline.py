"""``bertnpu run``: the whole pipeline headless, each stage cached by the hash of its inputs.

Stages: analysis -> embeddings -> calibration -> stats -> sweep -> evaluation -> compile
(or bundle) -> summary.json + report.html, all in one output folder. A finished stage
leaves ``stages/<name>.json`` with its input hash; a re-run with the same inputs reuses
it and says so; ``force`` recomputes everything; an interrupted run resumes (the sweep
even within itself).
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from .version import __version__
from .artifacts import atomic_write, atomic_write_json, atomic_write_text
from .quant.config import QuantConfig


@dataclass(frozen=True)
class RunOptions:
    """What ``bertnpu run`` does; ``quick`` shrinks the calibration set, the sweep and the evaluation."""

    model: Optional[str] = None
    stsb_dir: Optional[str] = None
    out: str = "bertnpu-out"
    quick: bool = False
    force: bool = False
    trust_remote_code: bool = False

    @property
    def calib_count(self) -> int:
        return 64 if self.quick else 256

    @property
    def percentiles(self) -> tuple[float, ...]:
        return (0.999, 1.0) if self.quick else (0.99, 0.999, 0.9999, 1.0)

    @property
    def topk_ratios(self) -> tuple[float, ...]:
        return (0.01, 0.1) if self.quick else (0.001, 0.01, 0.1)

    @property
    def validation_pairs(self) -> int:
        return 300 if self.quick else 0  # 0 = all

    @property
    def test_pairs(self) -> int:
        return 500 if self.quick else 0


def _sha(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_sha(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:16]


class Pipeline:
    """Runs the stages in order; ``log`` receives one line per stage."""

    def __init__(self, options: RunOptions, log: Callable[[str], None] = print):
        self.o = options
        self.out = Path(options.out)
        self.log = log
        self.summary: dict[str, Any] = {}
        self.reused: list[str] = []

    # -- stage bookkeeping ----------------------------------------------------------------
    def _stage(self, index: int, name: str, key: dict, work: Callable[[], dict]) -> dict:
        marker = self.out / "stages" / f"{name}.json"
        key_hash = _sha(key)
        if marker.is_file() and not self.o.force:
            saved = json.loads(marker.read_text())
            if saved.get("key") == key_hash:
                self.log(f"[{index}/7] {name}: reused (inputs unchanged)")
                self.reused.append(name)
                return saved["result"]
        start = time.perf_counter()
        self.log(f"[{index}/7] {name} ...")
        result = work()
        result["seconds"] = round(time.perf_counter() - start, 2)
        atomic_write_json(marker, {"key": key_hash, "result": result}, force=True)
        self.log(f"[{index}/7] {name}: done in {result['seconds']:.1f} s")
        return result

    # -- the run ----------------------------------------------------------------------------
    def run(self) -> dict:
        from .model.load import load_model
        from .quant.stats import model_hash
        from .data.stsb import load_stsb

        start = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        model = load_model(self.o.model, trust_remote_code=self.o.trust_remote_code)
        mhash = model_hash(model)[:16]
        validation = load_stsb("validation", self.o.stsb_dir)
        test = load_stsb("test", self.o.stsb_dir)
        if self.o.validation_pairs:
            validation = validation.subset(self.o.validation_pairs)
        if self.o.test_pairs:
            test = test.subset(self.o.test_pairs)
        data_hash = _sha([validation.sentence1, validation.sentence2, validation.scores.tolist(), test.sentence1, test.sentence2, test.scores.tolist()])
        s = self.summary
        s["inputs"] = {"model": model.name, "model_sha256": mhash, "stsb": validation.source, "stsb_sha256": data_hash,
                       "validation_pairs": len(validation), "test_pairs": len(test), "quick": self.o.quick}
        s["versions"] = {"bertnpu": __version__, "python": platform.python_version(), **_package_versions()}

        s["analysis"] = self._stage(1, "analysis", {"model": mhash}, lambda: self._analysis(model))
        s["embeddings"] = self._stage(2, "embeddings", {"model": mhash}, lambda: self._embeddings(model))
        calib_key = {"model": mhash, "data": data_hash, "count": self.o.calib_count}
        s["calibration"] = self._stage(3, "calibration", calib_key, lambda: self._calibration(model, validation))
        calib = self._load_calib(model)
        stats_key = {**calib_key, "calib": s["calibration"]["sha256"]}
        s["stats"] = self._stage(4, "stats", stats_key, lambda: self._stats(model, calib))
        stats = self._load_stats(model)
        sweep_key = {**stats_key, "p": self.o.percentiles, "k": self.o.topk_ratios}
        s["sweep"] = self._stage(5, "sweep", sweep_key, lambda: self._sweep(model, stats, validation))
        s["evaluation"] = self._stage(6, "evaluation", sweep_key, lambda: self._evaluation(model, stats, test))
        compile_key = {**stats_key, "config": s["sweep"]["recommended"]}
        s["compile"] = self._stage(7, "compile", compile_key, lambda: self._compile(model, calib))
        s["reused_stages"] = self.reused
        s["seconds"] = round(time.perf_counter() - start, 1)
        atomic_write_json(self.out / "summary.json", s, force=True)
        atomic_write_text(self.out / "report.html", self._report(), force=True)
        self.log(f"wrote {self.out}/summary.json and {self.out}/report.html in {s['seconds']:.0f} s")
        return s

    # -- stages -----------------------------------------------------------------------------
    def _fig(self, name: str, fig) -> str:
        atomic_write(self.out / "figures" / f"{name}.png", lambda p: fig.savefig(p, format="png", dpi=100), force=True)
        return f"figures/{name}.png"

    def _analysis(self, model) -> dict:
        from .model.analysis import block_summary, model_summary, op_inventory
        from .ui.plots import plot_block_placement

        rows = op_inventory(model)
        blocks = block_summary(model, rows)
        atomic_write_json(self.out / "analysis" / "ops.json", rows, force=True)
        from .device.qbcompiler_adapter import compile_mblt, qbcompiler_available

        mblt = str(compile_mblt(model, self.out / "analysis" / "model.mblt", force=True)) if qbcompiler_available() else None
        return {"summary": model_summary(model), "blocks": blocks, "ops": len(rows), "mblt": mblt,
                "figure": self._fig("placement", plot_block_placement(blocks))}

    def _embeddings(self, model) -> dict:
        from .model.cpu_part import export_weight_dict

        path = export_weight_dict(model.bert, self.out / "weight_dict.pth", force=True)
        return {"weight_dict": path.name, "sha256": _file_sha(path)}

    def _calibration(self, model, validation) -> dict:
        from .data.calibration import CalibrationSpec, build_calibration_set, embed_sentences
        from .data.embedding_ranges import channel_ranges, coverage_curve, outlier_channels, outside_fraction
        from .tune.evaluate import unique_sentences
        from .ui.plots import plot_channel_ranges, plot_coverage

        cs = build_calibration_set(model, self.out / "calib", CalibrationSpec(count=self.o.calib_count), pairs=validation, force=True)
        tokens = cs.tokens()
        ranges = channel_ranges(tokens)
        outliers = outlier_channels(ranges)
        eval_sentences = unique_sentences(validation)[0]
        eval_tokens = np.concatenate([a[0] for a in embed_sentences(model, eval_sentences)])
        per_channel, overall = outside_fraction(tokens, eval_tokens)
        curve = coverage_curve(cs.arrays, eval_tokens)
        from .quant.stats import calibration_hash

        return {"samples": len(cs), "sha256": calibration_hash(cs)[:16], "tokens": int(len(tokens)), "outlier_channels": outliers[:10],
                "eval_outside_fraction": overall, "coverage_curve": curve,
                "figures": [self._fig("calibration_ranges", plot_channel_ranges(ranges, outliers)), self._fig("calibration_coverage", plot_coverage(per_channel, curve))]}

    def _load_calib(self, model):
        from .data.calibration import load_calibration_set

        return load_calibration_set(self.out / "calib", model)

    def _stats(self, model, calib) -> dict:
        from .ui.range_plots import plot_site_ranges, plot_threshold_stability
        from .ui.range_tables import outlier_table
        from .quant.stats import collect_activation_stats
        from .quant.thresholds import clip_thresholds, threshold_stability

        stats = collect_activation_stats(model, calib)
        stats.save(self.out / "stats.npz", force=True)
        cfg = QuantConfig()
        return {"sites": len(stats.sites), "outlier_sites": outlier_table(stats, 8),
                "figures": [self._fig("site_ranges", plot_site_ranges(stats, clip_thresholds(stats, cfg))),
                            self._fig("threshold_stability", plot_threshold_stability(threshold_stability(stats, cfg)))]}

    def _load_stats(self, model):
        from .quant.stats import load_stats

        return load_stats(self.out / "stats.npz", model)

    def _sweep(self, model, stats, validation) -> dict:
        from .ui.range_plots import plot_sweep_heatmap
        from .tune.sweep import best_config, config_grid, sweep, write_sweep_table

        configs = config_grid(QuantConfig(), self.o.percentiles, self.o.topk_ratios, modes=(1,), methods=(0, 1))
        rows = sweep(model, stats, validation, configs, cache=self.out / "sweep" / "sweep_cache.jsonl")
        write_sweep_table(rows, self.out / "sweep", force=True)
        chosen = best_config(rows)
        chosen.save(self.out / "recommended_config.json", force=True)
        return {"configs": len(rows), "rows": [{k: r[k] for k in ("method", "percentile", "topk_ratio", "spearman", "pearson", "mean_sqnr_db")} for r in rows],
                "recommended": chosen.to_dict(), "validation_spearman": max(r["spearman"] for r in rows),
                "figure": self._fig("sweep_heatmap", plot_sweep_heatmap(rows, chosen.to_dict()))}

    def _evaluation(self, model, stats, test) -> dict:
        from .model.sentence_encoder import SentenceEncoder
        from .tune.error_analysis import embedding_fidelity
        from .tune.evaluate import evaluate_sts
        from .quant.simulate import simulate_int8

        chosen = QuantConfig.from_dict(self.summary["sweep"]["recommended"])
        fp32_enc = SentenceEncoder(model)
        fp32 = evaluate_sts(fp32_enc, test)
        tutorial = evaluate_sts(simulate_int8(model, stats, QuantConfig()).encoder_for(progress=True), test)
        rec_enc = simulate_int8(model, stats, chosen).encoder_for(progress=True)
        recommended = evaluate_sts(rec_enc, test)
        fidelity = embedding_fidelity(fp32_enc, rec_enc, test)
        fidelity.pop("cosine")
        return {"split": "test", "pairs": len(test),
                "fp32": {"spearman": fp32["spearman"], "pearson": fp32["pearson"]},
                "tutorial_default": {"config": QuantConfig().to_dict(), "spearman": tutorial["spearman"], "pearson": tutorial["pearson"]},
                "recommended": {"config": chosen.to_dict(), "spearman": recommended["spearman"], "pearson": recommended["pearson"]},
                "fidelity": fidelity}

    def _compile(self, model, calib) -> dict:
        from .device.bundle import write_compile_bundle
        from .device.qbcompiler_adapter import compile_mxq, qbcompiler_available

        config = QuantConfig.from_dict(self.summary["sweep"]["recommended"])
        if qbcompiler_available():
            out = compile_mxq(model, self.out / "calib", config, self.out / "model.mxq", force=True)
            return {"mxq": out.name, "bundle": None}
        bundle = write_compile_bundle(model, calib, config, self.out / "compile_bundle", force=True)
        return {"mxq": None, "bundle": bundle.name,
                "note": "qbcompiler is not installed: compile_bundle/README.md has the docker commands for Mobilint's qbcompiler image"}

    # -- report -------------------------------------------------------------------------------
    def _report(self) -> str:
        from .ui.report import render_report, table

        s = self.summary

        def figs(*paths: str) -> dict[str, bytes]:
            return {p: (self.out / p).read_bytes() for p in paths}

        ev = s["evaluation"]
        a = s["analysis"]["summary"]
        comp = s["compile"]
        sections = [
            ("Model and placement", f"<p><b>{a['model']}</b>: hidden {a['hidden_size']}, {a['layers']} layers, {a['heads']} heads, pooling {a['pooling']}. "
             "Embeddings and mask preparation run on the CPU; the encoder runs on the NPU.</p>" + table(s["analysis"]["blocks"]), figs(s["analysis"]["figure"])),
            ("Calibration data", f"<p>{s['calibration']['samples']} samples ({s['calibration']['tokens']} tokens); "
             f"{s['calibration']['eval_outside_fraction'] * 100:.4f}% of validation embedding values fall outside the calibration range.</p>"
             "<p>Outlier channels (abs-max above 4x the median channel's):</p>"
             + table(s["calibration"]["outlier_channels"]), figs(*s["calibration"]["figures"])),
            ("Activation ranges", "<p>Worst outlier sites (max / p99):</p>" + table(s["stats"]["outlier_sites"]), figs(*s["stats"]["figures"])),
            ("Sweep on validation", table(s["sweep"]["rows"]), figs(s["sweep"]["figure"])),
            ("Predicted accuracy on STS-B test (simulated INT8)", table([
                {"model": "FP32", **ev["fp32"]},
                {"model": "INT8, tutorial config (" + QuantConfig.from_dict(ev["tutorial_default"]["config"]).label() + ")", "spearman": ev["tutorial_default"]["spearman"], "pearson": ev["tutorial_default"]["pearson"]},
                {"model": "INT8, recommended (" + QuantConfig.from_dict(ev["recommended"]["config"]).label() + ")", "spearman": ev["recommended"]["spearman"], "pearson": ev["recommended"]["pearson"]},
            ]) + f"<p>Recommended config: cosine(FP32, INT8) mean {ev['fidelity']['cosine_mean']:.4f}, min {ev['fidelity']['cosine_min']:.4f}; "
               f"nearest-neighbour recall@10 {ev['fidelity']['recall@10']:.3f}.</p>" + table(ev["fidelity"]["worst_pairs"][:5]), {}),
            ("Compile", f"<p>{'Compiled <code>' + comp['mxq'] + '</code>.' if comp.get('mxq') else comp.get('note', '')}</p>", {}),
            ("Inputs and versions", f"<pre>{json.dumps({'inputs': s['inputs'], 'versions': s['versions'], 'reused_stages': s['reused_stages']}, indent=2)}</pre>", {}),
        ]
        return render_report(f"bertnpu report: {a['model']}", sections)


def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("torch", "transformers", "numpy", "qbcompiler", "mobilint-qb-runtime"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out


def run_pipeline(options: RunOptions, log: Callable[[str], None] = print) -> dict:
    """Run every stage into ``options.out`` and return the summary (also written as summary.json)."""
    return Pipeline(options, log).run()
