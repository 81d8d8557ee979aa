import pytest

from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.tune.evaluate import evaluate_sts
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.simulate import simulate
from bertnpu.quant.thresholds import clip_thresholds
from bertnpu.ui.widgets import CalibrationBuilder, CompilePanel, ModelPicker, SimulatePanel, ThresholdExplorer
from bertnpu.ui.project import open_project


@pytest.fixture(scope="module")
def ws(tiny_model_dir, stsb_dir, tmp_path_factory):
    w = open_project(tmp_path_factory.mktemp("ws"), model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=16, eval_pairs=60)
    w.stats  # builds the calibration set and the statistics
    return w


def test_model_picker(tiny_model_dir):
    picker = ModelPicker(str(tiny_model_dir))
    assert picker.load().config.hidden_size == 36 and "hidden 36" in picker.status.value
    picker.name.value = "./no/such/model"
    assert picker.load() is None and "does not exist" in picker.status.value


def test_threshold_explorer_follows_the_sliders(ws):
    ex = ThresholdExplorer(ws.stats, QuantConfig(method=0), site="layer.1.ffn.gelu.out")
    before = ex.readout.value
    want = clip_thresholds(ws.stats, QuantConfig(method=0))["layer.1.ffn.gelu.out"].threshold
    assert f"{want:.6g}" in before
    ex.percentile.value = 0.99
    ex.topk.value = 1.0
    after = ex.readout.value
    want_after = clip_thresholds(ws.stats, QuantConfig(method=0, percentile=0.99, topk_ratio=1.0))["layer.1.ffn.gelu.out"].threshold
    assert after != before and f"{want_after:.6g}" in after
    assert len(ex.plot.outputs) == 1 and "image/png" in ex.plot.outputs[0]["data"]


def _readout_threshold(html: str) -> float:
    import re

    return float(re.search(r"class='bertnpu-threshold'>([^<]+)<", html).group(1))


def test_explorer_draws_the_threshold_its_readout_states(ws):
    """One truth per panel: whatever the controls say, the drawn line is the readout's threshold,
    which is the range the simulator applies (shared across layers under methods 1/3)."""
    ex = ThresholdExplorer(ws.stats, QuantConfig(), site="layer.0.ffn.output.out")
    moves = [("percentile", 0.991), ("topk", 0.1), ("method", 0), ("site", "layer.2.ffn.residual"), ("method", 3), ("mode", 2),
             ("mode", 0), ("method", 1), ("site", "layer.1.attention.softmax.out"), ("mode", 1), ("percentile", 0.9999)]
    for control, value in moves:
        getattr(ex, control).value = value
        cfg, site = ex.config, ex.site.value
        shown = _readout_threshold(ex.readout.value)
        applied = clip_thresholds(ws.stats, cfg)[site]
        assert shown == pytest.approx(ex.drawn_threshold, rel=1e-5), (control, value)
        want = applied.hi if cfg.zero_point or ws.stats[site].min >= 0 else applied.threshold
        assert ex.drawn_threshold == pytest.approx(want, rel=1e-9), (control, value)
        assert ex.view.lo == pytest.approx(applied.lo if cfg.zero_point else (0.0 if ws.stats[site].min >= 0 else -want)), (control, value)
        assert ("shared across layers" in ex.readout.value) == (cfg.method in (1, 3)), (control, value)
        assert len(ex.plot.outputs) == 1  # replaced, never appended
    assert ex.site.value.endswith("softmax.out") and "unsigned" in ex.readout.value


def test_simulate_panel_matches_direct_evaluation(ws):
    ex = ThresholdExplorer(ws.stats, QuantConfig(method=0, percentile=0.999))
    result = SimulatePanel(ws, ex).simulate()
    pairs = ws.pairs("validation")
    assert result["fp32"] == pytest.approx(evaluate_sts(SentenceEncoder(ws.model, progress=False), pairs)["spearman"])
    direct = evaluate_sts(simulate(ws.model, ws.stats, QuantConfig(method=0, percentile=0.999)).encoder_for(), pairs)["spearman"]
    assert result["int8"] == pytest.approx(direct)


def test_simulate_panel_keep_fp32_toggles(ws):
    ex = ThresholdExplorer(ws.stats, QuantConfig(method=0, bits=4))
    panel = SimulatePanel(ws, ex)
    keep = ("layer.1.ffn.residual", "layer.2.ffn.residual")
    panel.keep_fp32.value = keep
    result = panel.simulate()
    pairs = ws.pairs("validation")
    direct = evaluate_sts(simulate(ws.model, ws.stats, QuantConfig(method=0, bits=4), keep_fp32=keep).encoder_for(), pairs)["spearman"]
    assert result["int8"] == pytest.approx(direct) and result["keep_fp32"] == list(keep)
    assert "2 site(s) kept in FP32" in panel.result.value
    from bertnpu.tune.error_analysis import site_sqnr
    from bertnpu.tune.evaluate import unique_sentences

    probe = unique_sentences(ws.pairs("validation"))[0][:64]  # the panel's probe
    direct_sqnr = site_sqnr(ws.model, simulate(ws.model, ws.stats, QuantConfig(method=0, bits=4), keep_fp32=keep), probe)
    assert result["sqnr_db"] == pytest.approx(direct_sqnr)
    from bertnpu.tune.error_analysis import embedding_fidelity

    sim = simulate(ws.model, ws.stats, QuantConfig(method=0, bits=4), keep_fp32=keep)
    fid = embedding_fidelity(SentenceEncoder(ws.model, progress=False), sim.encoder_for(), pairs)
    assert result["cosine_mean"] == pytest.approx(fid["cosine_mean"]) and result["recall@10"] == pytest.approx(fid["recall@10"])
    assert "recall@10" in panel.result.value and "SQNR" in panel.result.value
    from bertnpu.ui.conclusions import simulate_conclusion

    from bertnpu.tune.bootstrap import paired_difference_ci
    from bertnpu.tune.evaluate import pair_cosines, unique_sentences as _unique

    sentences, r1, r2 = _unique(pairs)
    want_ci = paired_difference_ci(pair_cosines(sim.encoder_for()(sentences), r1, r2), pair_cosines(SentenceEncoder(ws.model, progress=False)(sentences), r1, r2),
                                   pairs.scores)
    assert result["diff_to_fp32_ci"] == pytest.approx(want_ci, abs=1e-6)
    from bertnpu.ui.report import esc

    verdict = simulate_conclusion(result["fp32"], result["int8"], fid["cosine_mean"], fid["recall@10"], diff_ci=result["diff_to_fp32_ci"])
    assert esc(verdict) in panel.result.value  # shown as HTML text ("FP32's" escaped)
    assert panel.progress.value == panel.progress.max and panel.progress.layout.display == "none"  # finished: hidden


def test_calibration_builder(tiny_model_dir, stsb_dir, tmp_path):
    w = open_project(tmp_path / "w", model=str(tiny_model_dir), stsb_dir=str(stsb_dir), eval_pairs=30)
    b = CalibrationBuilder(w, count=24, seed=3)
    b.strategy.value = "length-stratified"
    b.button.click()
    assert b.progress.value == 3 and b.progress.layout.display == "none" and len(list((tmp_path / "w" / "calib").glob("*.npy"))) == 24
    assert w.calibration.manifest["strategy"] == "length-stratified"
    assert len(b.figures.outputs) == 3 and "built 24 samples" in b.status.value
    assert "Largest channels" in b.status.value


def test_compile_panel_exports_a_bundle_without_qbcompiler(ws, tmp_path):
    panel = CompilePanel(ws, QuantConfig(), tmp_path / "bundle")
    assert panel.button.description == "Export bundle" and "qbcompiler is not installed" in panel.log.value
    panel.button.click()
    assert (tmp_path / "bundle" / "compile_mxq.py").is_file() and "wrote compile bundle" in panel.log.value
    panel.button.click()
    assert "already exists" in panel.log.value


def test_verify_split(default_model):
    from bertnpu.model.analysis import verify_split

    assert verify_split(default_model, ["Hello, my dog is cute", "A", "Two men play chess in the park."]) <= 1e-5


def test_simulate_panel_scores_a_named_seeded_subset_and_reuses_its_encoders(ws):
    """The panel scores a seeded sample of the split (named in its text) and keeps the FP32 embeddings and the
    weight-quantized encoder across presses; every press still equals a fresh simulation on the same pairs."""
    import numpy as np

    from bertnpu.data.stsb import StsPairs

    full = ws.pairs("validation")
    idx = sorted(np.random.default_rng(1).choice(len(full), 20, replace=False))
    sample = StsPairs([full.sentence1[i] for i in idx], [full.sentence2[i] for i in idx], full.scores[idx], "validation", full.source)
    panel = SimulatePanel(ws, ThresholdExplorer(ws.stats, QuantConfig(method=0, percentile=0.999)), pairs=20, seed=1)
    first = panel.simulate()
    assert first["pairs"] == 20 and panel.pairs().sentence1 == sample.sentence1
    assert "validation subset: 20 of 60 pairs (seeded sample, seed 1)" in panel.result.value and first["subset"] in panel.result.value
    assert first["fp32"] == pytest.approx(evaluate_sts(SentenceEncoder(ws.model, progress=False), sample)["spearman"])
    assert first["int8"] == pytest.approx(evaluate_sts(simulate(ws.model, ws.stats, QuantConfig(method=0, percentile=0.999)).encoder_for(), sample)["spearman"])
    encoder8 = panel._encoders[8]
    panel.explorer = ThresholdExplorer(ws.stats, QuantConfig(method=0, bits=4))  # another weight width: another encoder
    second = panel.simulate()
    assert second["int8"] == pytest.approx(evaluate_sts(simulate(ws.model, ws.stats, QuantConfig(method=0, bits=4)).encoder_for(), sample)["spearman"])
    assert second["int8"] != pytest.approx(first["int8"])
    panel.explorer = ThresholdExplorer(ws.stats, QuantConfig(method=1, percentile=0.99))
    third = panel.simulate()
    assert panel._encoders[8] is encoder8  # reused, and still right:
    assert third["int8"] == pytest.approx(evaluate_sts(simulate(ws.model, ws.stats, QuantConfig(method=1, percentile=0.99)).encoder_for(), sample)["spearman"])
    assert "validation: all 60 pairs" in (SimulatePanel(ws, panel.explorer, pairs=0).subset_label())
