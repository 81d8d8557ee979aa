"""ipywidgets for the notebooks. Notebooks only place these; every number comes from package functions."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional

import ipywidgets as W
from IPython.display import Image, display

from ..data.calibration import STRATEGIES, CalibrationSpec
from ..quant.config import MODES, QuantConfig
from .messages import label, message
from .report import esc, figure_png


def show_figure(fig, out: Optional[W.Output] = None) -> None:
    """Display a Figure as a static PNG (so a notebook rendered without a kernel still shows it)."""
    image = Image(data=figure_png(fig))
    if out is None:
        display(image)
    else:  # works in a kernel and outside one (tests)
        out.outputs = ()
        out.append_display_data(image)


def show_conclusion(text: str) -> None:
    """Display a computed conclusion under an analysis ("What it means: ...")."""
    import html

    from IPython.display import HTML

    display(HTML(f"<p class='bertnpu-conclusion-block'><b>{html.escape(message('conclusion.label'))}</b> "
                 f"<span class='bertnpu-conclusion'>{html.escape(text)}</span></p>"))


def show_table(rows, columns=None, units=None, digits: int = 4, max_height: Optional[int] = None) -> None:
    """Display rows as an HTML table (thousands separators, units in headers, scrollable with ``max_height``)."""
    from IPython.display import HTML

    from .range_tables import html_table

    display(HTML(html_table(rows, columns, units, digits, max_height)))


def sweep_like_run(ws, out: Optional[str | Path] = None, quick: bool = False, progress: bool = True):
    """The sweep ``bertnpu run`` does (same grid from :class:`~bertnpu.run_config.RunConfig`, same stage), on the
    project's validation pairs, into its ``sweep/`` (or ``out``); returns the stage's ``SweepResult``."""
    from ..run_config import RunConfig
    from ..stages import SweepInputs, run_sweep

    options = RunConfig.quick() if quick else RunConfig.full()
    grid = options.sweep_options  # every sweep knob the run's search and strategy read, as bertnpu run passes them
    out = Path(out) if out is not None else ws.at("sweep")
    with ws.writing(str(out.relative_to(ws.path)) if out.is_relative_to(ws.path) else "sweep", "recommended_config.json", "recommended_recipe.json"):
        return run_sweep(SweepInputs(ws.model, ws.stats, ws.pairs("validation"), out=out, recommended=ws.at("recommended_config"),
                                     progress=progress, **grid))


def npu_verification(ws, mxq: str | Path, split: str = "test") -> str:
    """STS-B Spearman of a compiled ``.mxq`` on the NPU, or one sentence saying why it cannot run here."""
    from ..device.npu_runtime import QbruntimeEncoder
    from ..device.preflight import panel_answer
    from ..tune.evaluate import evaluate_sts

    def verify(path: Path) -> str:
        with QbruntimeEncoder(ws.model, path) as npu:
            return f"NPU {split} Spearman: {evaluate_sts(npu, ws.pairs(split))['spearman']:.4f}"

    return panel_answer(mxq, verify)


class ModelPicker:
    """Model name or folder (default: the bundled all-MiniLM-L6-v2) with a Load button."""

    def __init__(self, initial: Optional[str] = None, on_load: Optional[Callable] = None):
        from ..model.load import DEFAULT_MODEL_NAME, TUTORIAL_MODEL

        self.name = W.Combobox(value=initial or DEFAULT_MODEL_NAME, options=[DEFAULT_MODEL_NAME, TUTORIAL_MODEL], description=label("widget.model"), ensure_option=False,
                               layout=W.Layout(width="520px"))
        self.button = W.Button(description=label("widget.load"), button_style="primary")
        self.status = W.HTML()
        self.model = None
        self.on_load = on_load
        self.button.on_click(lambda _: self.load())
        self.widget = W.VBox([W.HBox([self.name, self.button]), self.status])

    def load(self):
        from ..errors import BertnpuError
        from ..model.load import DEFAULT_MODEL_NAME, load_model

        from ..model.load import quiet_loading

        try:
            with quiet_loading():
                self.model = load_model(None if self.name.value == DEFAULT_MODEL_NAME else self.name.value)
        except BertnpuError as exc:
            self.status.value = f"<span style='color:#b00'>{esc(exc)}</span>"  # values may hold markup (a folder name)
            return None
        cfg = self.model.config
        self.status.value = message("picker.loaded", name=esc(self.model.name), hidden=cfg.hidden_size, layers=cfg.num_hidden_layers,
                                    pooling=esc(self.model.pooling.mode))
        if self.on_load:
            self.on_load(self.model)
        return self.model


class CalibrationBuilder:
    """Count / seed / strategy controls, a Build button, a progress bar and the embedding-range figures."""

    def __init__(self, project, count: int = 128, seed: int = 0):
        self.ws = project
        self.count = W.IntSlider(value=count, min=8, max=1024, step=8, description=label("widget.samples"))
        self.seed = W.IntText(value=seed, description=label("widget.seed"), layout=W.Layout(width="160px"))
        self.strategy = W.Dropdown(options=STRATEGIES, value="random", description=label("widget.strategy"))
        self.button = W.Button(description=label("widget.build"), button_style="primary")
        self.progress = W.IntProgress(value=0, min=0, max=3, description=label("widget.progress"))
        self.status = W.HTML()
        self.figures = W.Output()
        self.button.on_click(lambda _: self.build())
        self.widget = W.VBox([W.HBox([self.count, self.seed, self.strategy, self.button]), self.progress, self.status, self.figures])

    def build(self):
        """Build with the calibrate stage; its figures compare with the validation tokens (as ``bertnpu run``)."""
        self.progress.layout.display = None  # shown while building, hidden once done (as tqdm's leave=False)
        self.progress.value = 1
        start = time.perf_counter()
        result = self.ws.rebuild_calibration(CalibrationSpec(count=self.count.value, seed=self.seed.value, strategy=self.strategy.value), progress=False)
        self.progress.value = 2
        self.figures.outputs = ()
        from .stage_figures import stage_figures

        self.pngs = [figure_png(fig) for fig in stage_figures(result).values()]
        for png in self.pngs:
            self.figures.append_display_data(Image(data=png))
        self.progress.value = 3
        self.progress.layout.display = "none"
        overall = result.eval_outside_fraction
        self.summary = {"samples": result.samples, "outlier_channels": [o["channel"] for o in result.outlier_channels],
                        f"{result.evaluation_split}_outside_fraction": overall}
        from ..data.embedding_ranges import channel_ranges
        from .conclusions import channel_conclusion

        self.conclusion = channel_conclusion(channel_ranges(result.calibration.tokens()).absmax)
        self.status.value = (message("builder.status", samples=result.samples, seconds=time.perf_counter() - start, split=esc(result.evaluation_split),
                                     outside=overall * 100) + "<br>"
                             f"<b>{esc(message('conclusion.label'))}</b> <span class='bertnpu-conclusion'>{esc(self.conclusion)}</span>")
        return result.calibration


class ThresholdExplorer:
    """Site picker + percentile / topk_ratio sliders; the histogram, threshold and clipped fraction follow at once."""

    def __init__(self, stats, config: QuantConfig = QuantConfig(), site: Optional[str] = None):
        self.stats = stats
        self.base = config  # bits and output are kept from it; the controls set the rest
        names = [s.name for s in stats.sites]
        self.site = W.Dropdown(options=names, value=site or next((n for n in names if n.endswith("ffn.output.out")), names[0]), description=label("widget.site"),
                               layout=W.Layout(width="420px"))
        self.percentile = W.FloatSlider(value=config.percentile, min=0.99, max=1.0, step=0.0001, readout_format=".4f", description="percentile",
                                        continuous_update=False)
        self.topk = W.FloatLogSlider(value=config.topk_ratio, base=10, min=-4, max=0, step=0.1, readout_format=".4f", description="topk_ratio",
                                     continuous_update=False)
        self.method = W.Dropdown(options=[(f"{k}", k) for k in (0, 1, 2, 3)], value=config.method, description="method")
        self.mode = W.Dropdown(options=[(f"{k} {v}", k) for k, v in MODES.items()], value=config.mode, description="mode")
        self.readout = W.HTML()
        self.plot = W.Output()
        self.last_seconds = 0.0
        self._range_cache: dict = {}
        for w in (self.site, self.percentile, self.topk, self.method, self.mode):
            w.observe(lambda change: self.update(), names="value")
        self.widget = W.VBox([W.HBox([self.site, self.method, self.mode]), W.HBox([self.percentile, self.topk]), self.readout, self.plot])
        self.update()

    @property
    def config(self) -> QuantConfig:
        return self.base.with_(method=self.method.value, mode=self.mode.value, percentile=self.percentile.value, topk_ratio=self.topk.value)

    def _ranges(self, cfg: QuantConfig):
        """clip_thresholds of a reference config, kept: Max and Histogram do not change while the sliders move."""
        from ..quant.thresholds import clip_thresholds

        if cfg not in self._range_cache:
            if len(self._range_cache) > 64:
                self._range_cache.clear()
            self._range_cache[cfg] = clip_thresholds(self.stats, cfg)
        return self._range_cache[cfg]

    def update(self) -> None:
        from ..quant.thresholds import clipped_share
        from .range_plots import plot_site_histogram
        from .range_tables import site_range_view

        start = time.perf_counter()
        cfg = self.config
        name = self.site.value
        view = site_range_view(self.stats, cfg, name, self._ranges(cfg))  # the qparams the simulator applies: readout, line and title
        refs = {f"{MODES[m]}{' (shared)' if view.shared else ''}": self._ranges(cfg.with_(mode=m))[name].threshold
                for m in MODES if m != cfg.mode}
        tail = clipped_share(cfg.percentile, cfg.topk_ratio)
        own = "" if not view.shared else message("explorer.own_threshold", threshold=view.own_threshold)
        applied = message("explorer.shared" if view.shared else "explorer.own") + (message("explorer.unsigned") if view.unsigned else "")
        self.readout.value = (
            f"<b>{esc(name)}</b>: {message('explorer.upper_clip' if cfg.zero_point else 'explorer.threshold')} "
            f"<span class='bertnpu-threshold'>{view.threshold:.6g}</span> ({applied}{own}); "
            + message("explorer.range", lo=view.lo, hi=view.hi, clipped=view.clipped_fraction * 100, count=view.count)
            + "<br>" + message("explorer.grid", bits=view.bits, scale=view.scale, zero_point=view.zero_point, qmin=view.qmin, qmax=view.qmax)
            + ("<br><small>" + message("explorer.tail", topk=cfg.topk_ratio, percentile=cfg.percentile, tail=tail, tail_pct=tail * 100)
               + "</small>" if cfg.mode == 1 else ""))
        fig = plot_site_histogram(self.stats[name], view, refs)
        self.view = view
        self.drawn_threshold = next(line.get_xdata()[0] for line in fig.axes[0].lines if line.get_gid() == "applied-threshold")
        self.png = figure_png(fig)
        fig.clear()  # break the figure's reference cycles now, not in a later garbage-collector pause
        self.plot.outputs = ()
        self.plot.append_display_data(Image(data=self.png))
        self.last_seconds = time.perf_counter() - start


SIMULATE_PAIRS = 500  # validation pairs the Simulate button scores (a seeded sample; 0 = the whole split)


class SimulatePanel:
    """A Simulate button: predicted INT8 STS-B Spearman next to FP32, embedding fidelity and per-site SQNR,
    for the explorer's config with the selected sites kept in FP32 (a diagnostic: the NPU has no FP32 activations).

    It scores a fixed, seeded sample of ``pairs`` pairs of the split (``0``: all), named in its
    output, so a press answers in seconds; the FP32 embeddings, the FP32 side of the per-site SQNR
    (:class:`~bertnpu.tune.error_analysis.SiteReference` of the probe sentences) and the
    weight-quantized NPU part (weights depend only on the bit width) are computed once and reused
    across presses. A press encodes each sentence once: the SQNR's forward over the probe (the
    first ``SQNR_SENTENCES``) also gives their INT8 embeddings, the other sentences follow in
    batches of ``ENCODE_BATCH`` (less padding than 64). A sentence batched with others of another
    padded width can come out different in the last float bits (the attention sums round in
    another order), and a value at a rounding boundary of the fake quantization then moves: with
    float Linears the Spearman agreed with an encode in batches of 64 to about 1e-5; with the
    integer GEMM (exact Linear sums) it was equal in the three configs checked. The sweep and
    ``bertnpu run`` still use the whole split.
    """

    STEPS = ("FP32 embeddings (once)", "build the simulated INT8 model", "per-site SQNR and INT8 embeddings of the probe sentences",
             "encode the other sentences with INT8")
    ENCODE_BATCH = 32

    def __init__(self, project, explorer: ThresholdExplorer, split: str = "validation", pairs: int = SIMULATE_PAIRS, seed: int = 0):
        self.ws, self.explorer, self.split = project, explorer, split
        self.sample_size, self.seed = pairs, seed
        self.button = W.Button(description=label("widget.simulate"), button_style="success")
        names = [s.name for s in project.stats.sites]
        self.a16 = W.SelectMultiple(options=names, rows=6, description=label("widget.a16"), layout=W.Layout(width="420px"))
        self.keep_fp32 = W.SelectMultiple(options=names, rows=6, description=label("widget.keep_fp32"), layout=W.Layout(width="420px"),
                                          tooltip="keep in FP32: a diagnostic with no device counterpart (the NPU has no FP32 activations)")
        from ..quant.precision import DEFAULT_PROFILE, PROFILES

        self.profile = W.Dropdown(options=list(PROFILES), value=DEFAULT_PROFILE, description=label("widget.profile"))
        self.progress = W.IntProgress(value=0, min=0, max=len(self.STEPS), description=label("widget.progress"))
        self.result = W.HTML(message("simulate.idle"))
        self._fp32 = None  # (embeddings, sentences, rows1, rows2, spearman), computed once
        self._sqnr_reference = None  # FP32 site values of the SQNR probe sentences, computed once
        self._embedding = None  # the FP32 CPU part, built (and checked) once
        self._pairs = None
        self._encoders: dict = {}  # weight bits -> the weight-quantized NPU part, built once
        self.button.on_click(lambda _: self.simulate())
        self.widget = W.VBox([W.HBox([self.button, self.profile]), W.HBox([self.a16, self.keep_fp32]), self.progress, self.result])

    def pairs(self):
        """The pairs a press scores: the seeded sample of the split (the same on every press)."""
        if self._pairs is None:
            self._pairs = self.ws.pairs(self.split).sample(self.sample_size, self.seed)
        return self._pairs

    def subset_label(self) -> str:
        """E.g. ``validation subset: 500 of 1,500 pairs (seeded sample, seed 0)``, or ``validation: all 1,500 pairs``."""
        total, used = len(self.ws.pairs(self.split)), len(self.pairs())
        if used == total:
            return message("simulate.all", split=self.split, total=total)
        return message("simulate.subset", split=self.split, used=used, total=total, seed=self.seed)

    def _fp32_embeddings(self):
        from ..model.sentence_encoder import SentenceEncoder
        from ..tune.evaluate import sts_scores, unique_sentences

        if self._fp32 is None:
            pairs = self.pairs()
            sentences, rows1, rows2 = unique_sentences(pairs)
            encoder = SentenceEncoder(self.ws.model, progress=False)
            self._embedding = encoder.embedding
            emb = encoder(sentences)
            self._fp32 = (emb, sentences, rows1, rows2, sts_scores(emb, rows1, rows2, pairs.scores)["spearman"])
        return self._fp32

    def _site_reference(self, sentences):
        from ..tune.error_analysis import SiteReference

        if self._sqnr_reference is None or self._sqnr_reference.sentences != list(sentences):
            self._sqnr_reference = SiteReference(self.ws.model, sentences)
        return self._sqnr_reference

    def _weight_quantized(self, bits: int):
        """The NPU part with per-channel fake-quantized weights at ``bits`` (no transformations), kept across presses."""
        import copy

        from ..model.npu_part import NpuEncoder
        from ..quant.simulate import quantize_weights_

        if bits not in self._encoders:
            self._encoders[bits] = quantize_weights_(copy.deepcopy(NpuEncoder(self.ws.model.bert)), bits)
        return self._encoders[bits]

    def _step(self, index: int, text: str) -> None:
        self.progress.layout.display = None  # shown while a press runs, hidden once done
        self.progress.value = index
        self.progress.description = f"{index}/{len(self.STEPS)}"
        self.result.value = f"{text}: {self.STEPS[index] if index < len(self.STEPS) else 'done'} ..."

    def simulate(self) -> dict:
        """One press; the first one decides the process's thread policy (:func:`bertnpu.quant.kernel_policy.decide_once`)."""
        from ..quant.kernel_policy import decide_once

        decide_once()
        return self._press()

    def _press(self) -> dict:
        import numpy as np

        from ..tune.error_analysis import SQNR_SENTENCES, fidelity_from_embeddings, site_sqnr
        from ..tune.evaluate import sts_scores
        from ..quant.simulate import simulate
        from .conclusions import GOOD, simulate_conclusion, sqnr_conclusion

        start = time.perf_counter()
        pairs = self.pairs()
        subset = self.subset_label()
        cfg = self.explorer.config
        keep = list(self.keep_fp32.value)
        a16 = list(self.a16.value)
        head = f"simulating {cfg.label()} [{self.profile.value}] on the {subset}"
        self._step(0, head)
        fp32_emb, sentences, rows1, rows2, fp32 = self._fp32_embeddings()
        probe = sentences[:SQNR_SENTENCES]
        reference = self._site_reference(probe)
        self._step(1, head)
        sim = simulate(self.ws.model, self.ws.stats, cfg, keep_fp32=keep, profile=self.profile.value, activation_16bits=a16,
                       encoder=self._weight_quantized(cfg.bits))
        self._step(2, head)
        int8_emb = np.zeros_like(fp32_emb)
        sqnr = {k: v for k, v in site_sqnr(self.ws.model, sim, probe, reference=reference, embeddings=int8_emb[: len(probe)]).items()
                if np.isfinite(v)}
        self._step(3, head)
        if len(sentences) > len(probe):
            int8_emb[len(probe):] = sim.encoder_for(embedding=self._embedding, batch_size=self.ENCODE_BATCH)(sentences[len(probe):])
        int8 = sts_scores(int8_emb, rows1, rows2, pairs.scores)["spearman"]
        fid = fidelity_from_embeddings(fp32_emb, int8_emb, sentences, rows1, rows2, pairs)
        from ..tune.bootstrap import interval_fields
        from ..tune.evaluate import pair_cosines

        noise = interval_fields(pair_cosines(int8_emb, rows1, rows2), pairs.scores, int8, pair_cosines(fp32_emb, rows1, rows2), fp32)
        lo, hi = noise["diff_to_fp32_ci"]
        self.progress.value = len(self.STEPS)
        self.progress.description = label("widget.done")
        self.progress.layout.display = "none"
        kept = (message("simulate.a16", n=len(a16)) if a16 else "") + (
            message("simulate.kept", n=len(keep)) if keep else "") + message("simulate.profile", profile=self.profile.value)
        verdict = simulate_conclusion(fp32, int8, fid["cosine_mean"], fid["recall@10"], diff_ci=noise["diff_to_fp32_ci"])
        self.conclusion = verdict + " " + sqnr_conclusion(sqnr)
        self.result.value = (
            "<div class='bertnpu-simulate'>"
            + message("simulate.scores", subset=f"<span class='bertnpu-subset'>{esc(subset)}</span>", fp32=fp32, label=esc(cfg.label() + kept),
                      int8=int8, delta=int8 - fp32, lo=lo, hi=hi) + "<br>"
            + message("simulate.fidelity", mean=fid["cosine_mean"], min=fid["cosine_min"], recall=fid["recall@10"], good_cosine=GOOD["cosine"],
                      good_recall=GOOD["recall@10"]) + "<br>"
            + (message("simulate.sqnr", mean=float(np.mean(list(sqnr.values()))), n=len(sqnr), low=min(sqnr.values()), good_sqnr=GOOD["sqnr_db"]) if sqnr
               else message("simulate.sqnr_none"))
            + f"<br><b>{esc(message('conclusion.label'))}</b> <span class='bertnpu-conclusion'>{esc(self.conclusion)}</span>"
            + "<br><small>" + message("simulate.timing", seconds=time.perf_counter() - start, subset=esc(subset)) + "</small></div>")
        self.last_seconds = time.perf_counter() - start
        return {"fp32": fp32, "int8": int8, "config": cfg.to_dict(), "keep_fp32": keep, "activation_16bits": a16, "profile": self.profile.value,
                "pairs": len(pairs), "subset": subset,
                "cosine_mean": fid["cosine_mean"],
                "recall@10": fid["recall@10"], "sqnr_db": sqnr, "conclusion": self.conclusion, **noise}


class CompilePanel:
    """Compile (qbcompiler installed) or Export bundle (not installed), with a log area."""

    def __init__(self, project, config, out: str | Path):
        from ..device.qbcompiler_adapter import MISSING, qbcompiler_available
        from ..quant.recipe import Recipe

        self.ws, self.out = project, Path(out)
        self.recipe = config if isinstance(config, Recipe) else Recipe(calibration=config)  # a QuantConfig means no overrides
        self.config = self.recipe.calibration
        self.available = qbcompiler_available()
        self.button = W.Button(description=label("widget.compile" if self.available else "widget.export"), button_style="warning")
        self.force = W.Checkbox(value=False, description=label("widget.replace"))
        self.log = W.Textarea(value="" if self.available else MISSING + "\n", layout=W.Layout(width="100%", height="140px"))
        self.button.on_click(lambda _: self.run())
        self.widget = W.VBox([W.HBox([self.button, self.force]), self.log])

    def run(self) -> Optional[Path]:
        from ..errors import BertnpuError
        from ..stages import CompileInputs, compile_or_bundle

        def append(text: str) -> None:
            self.log.value += text

        target = "mxq" if self.available else "bundle"
        try:
            result = compile_or_bundle(CompileInputs(self.ws.model, self.ws.calibration, self.recipe, target=target, force=self.force.value, log=append,
                                                     **{target: self.out}))
        except BertnpuError as exc:
            append(f"error: {exc}\n")
            return None
        return result.mxq or result.bundle
