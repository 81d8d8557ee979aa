"""The stage layer: each stage's numbers against independent references, its files, and its JSON entry."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from scipy.stats import spearmanr

from bertnpu.data.calibration import CalibrationSpec, load_calibration_set
from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import Recipe
from bertnpu.quant.sites import list_sites
from bertnpu.quant.stats import load_stats
from bertnpu import stages as st


@pytest.fixture(scope="module")
def val40(stsb_validation):
    return stsb_validation.subset(40)


@pytest.fixture(scope="module")
def test40(stsb_test):
    return stsb_test.subset(40)


def _hf_embeddings(model, sentences):
    """Embedding output of Hugging Face's own BertEmbeddings (an implementation independent of bertnpu's CPU part)."""
    out = []
    with torch.no_grad():
        for s in sentences:
            ids = model.tokenizer(s, return_tensors="pt")
            out.append(model.bert.embeddings(input_ids=ids["input_ids"], token_type_ids=ids["token_type_ids"])[0].numpy())
    return np.concatenate(out)


def test_result_json_has_numbers_and_relative_paths_not_figures(tiny_model, tmp_path):
    r = st.analyze(st.AnalyzeInputs(tiny_model, out=tmp_path / "analysis", figures=tmp_path / "figures", mblt=False))
    assert isinstance(r.figures["placement"], Figure)
    d = r.to_dict(relative_to=tmp_path)
    json.dumps(d)  # JSON-ready
    assert "figures" not in d and "rows" not in d
    assert sorted(d["files"]) == ["analysis/ops.csv", "analysis/ops.json", "figures/placement.png"]
    ops = (tmp_path / "analysis" / "ops.csv").read_text().strip().splitlines()
    assert len(ops) - 1 == r.ops == len(json.loads((tmp_path / "analysis" / "ops.json").read_text()))
    with pytest.raises(BertnpuError, match="already exists"):
        st.analyze(st.AnalyzeInputs(tiny_model, out=tmp_path / "analysis", mblt=False))


def test_export_embeddings_hash_and_keys(tiny_model, tmp_path):
    r = st.export_embeddings(st.ExportInputs(tiny_model, tmp_path / "w.pth"))
    assert r.sha256 == hashlib.sha256((tmp_path / "w.pth").read_bytes()).hexdigest()[:16]
    weights = torch.load(tmp_path / "w.pth", weights_only=True)
    assert set(weights) == set(r.keys)
    assert torch.equal(weights["word_embeddings"], tiny_model.bert.embeddings.word_embeddings.weight.detach())


def test_calibrate_coverage_against_hf_embeddings(tiny_model, val40, tmp_path):
    spec = CalibrationSpec(count=12, seed=1)
    r = st.calibrate(st.CalibrateInputs(tiny_model, tmp_path / "calib", spec, source=val40, evaluation=val40, figures=tmp_path / "figs"))
    assert r.samples == 12 and r.evaluation_split == "validation"
    assert set(r.figures) == {"calibration_ranges", "calibration_lengths", "calibration_coverage"}
    assert all((tmp_path / "figs" / f"{n}.png").is_file() for n in r.figures)
    calib_tokens = _hf_embeddings(tiny_model, [s["sentence"] for s in r.calibration.manifest["samples"]])
    lo, hi = calib_tokens.min(axis=0), calib_tokens.max(axis=0)
    sentences = list(dict.fromkeys(val40.sentence1 + val40.sentence2))
    eval_tokens = _hf_embeddings(tiny_model, sentences)
    expected = float(((eval_tokens < lo) | (eval_tokens > hi)).mean())
    assert r.tokens == len(calib_tokens)
    assert r.eval_outside_fraction == pytest.approx(expected, abs=2e-4)  # float32 vs float64 at the boundary
    assert load_calibration_set(tmp_path / "calib", tiny_model).files == r.calibration.files


def test_calibration_figures_never_use_test(tiny_model, val40, test40, tmp_path):
    with pytest.raises(BertnpuError, match="validation split, not 'test'"):
        st.CalibrateInputs(tiny_model, tmp_path / "c", CalibrationSpec(count=4), source=val40, evaluation=test40)


def test_widget_and_stage_give_the_same_calibration_figures(tiny_model_dir, stsb_dir, tmp_path):
    """Same split everywhere: the widget's coverage number equals the stage's on validation."""
    from bertnpu.data.stsb import load_stsb
    from bertnpu.ui.widgets import CalibrationBuilder
    from bertnpu.ui.workspace import Workspace

    ws = Workspace(tmp_path / "w", model=str(tiny_model_dir), stsb_dir=str(stsb_dir), eval_pairs=30)
    builder = CalibrationBuilder(ws, count=16, seed=2)
    builder.build()
    validation = load_stsb("validation", stsb_dir).subset(30)
    r = st.calibrate(st.CalibrateInputs(ws.model, tmp_path / "c", CalibrationSpec(count=16, seed=2), source=load_stsb("validation", stsb_dir),
                                        evaluation=validation, progress=False))
    assert builder.summary["validation_outside_fraction"] == pytest.approx(r.eval_outside_fraction, abs=0)
    assert "validation values outside" in builder.status.value and len(builder.pngs) == len(r.figures)


def test_collect_stats_writes_what_it_returns(tiny_model, tiny_calib, tmp_path):
    r = st.collect_stats(st.StatsInputs(tiny_model, tiny_calib, out=tmp_path / "s.npz", figures=tmp_path / "f", batch_size=5, progress=False))
    assert r.sites == len(list_sites(tiny_model)) and r.samples == len(tiny_calib)
    again = load_stats(tmp_path / "s.npz", tiny_model)
    site = r.stats.sites[0].name
    assert again[site].max == pytest.approx(r.stats[site].max)
    # the observer's max is the plain max over the calibration tokens of the first site (embedding output after LayerNorm)
    assert {"site_ranges", "threshold_stability"} == set(r.figures)
    worst = r.outlier_sites[0]
    assert worst["site"] in {s.name for s in r.stats.sites}
    with pytest.raises(BertnpuError, match="already exists"):
        st.collect_stats(st.StatsInputs(tiny_model, tiny_calib, out=tmp_path / "s.npz", progress=False))


def test_simulate_with_every_site_fp32_and_16_bit_weights_matches_fp32(tiny_model, tiny_stats, val40):
    keep = tuple(s.name for s in tiny_stats.sites)
    r = st.simulate(st.SimulateInputs(tiny_model, tiny_stats, val40, Recipe(calibration=QuantConfig(bits=16)), keep_fp32=keep, progress=False))
    assert r.spearman == pytest.approx(r.fp32_spearman, abs=2e-3)
    coarse = st.simulate(st.SimulateInputs(tiny_model, tiny_stats, val40, Recipe(calibration=QuantConfig(bits=3)), progress=False))
    assert coarse.fp32_spearman == r.fp32_spearman and coarse.spearman != r.spearman
    d = coarse.to_dict()
    assert d["config"]["bits"] == 3 and Recipe.from_dict(d["recipe"]) == coarse.recipe and d["pairs"] == 40


def test_evaluate_fp32_against_sentence_transformers(tiny_model, tiny_stats, test40):
    from sentence_transformers import SentenceTransformer

    r = st.evaluate(st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(calibration=QuantConfig(method=0)), progress=False))
    model = SentenceTransformer(str(tiny_model.path), device="cpu")
    a = model.encode(test40.sentence1, convert_to_numpy=True)
    b = model.encode(test40.sentence2, convert_to_numpy=True)
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert r.fp32["spearman"] == pytest.approx(spearmanr(cos, test40.scores).statistic, abs=1e-4)
    # the tutorial entry is exactly what the simulate stage says for the default recipe
    sim = st.simulate(st.SimulateInputs(tiny_model, tiny_stats, test40, progress=False))
    assert r.tutorial_default["spearman"] == pytest.approx(sim.spearman, abs=1e-12)
    assert r.recommended["config"]["method"] == 0 and 0 < r.fidelity["cosine_mean"] <= 1
    # one encode per model gives the numbers of the separate paths (evaluate_sts; embedding_fidelity)
    from bertnpu.model.sentence_encoder import SentenceEncoder
    from bertnpu.quant.simulate import simulate_int8
    from bertnpu.tune.error_analysis import embedding_fidelity

    rec = simulate_int8(tiny_model, tiny_stats, QuantConfig(method=0))
    fid = embedding_fidelity(SentenceEncoder(tiny_model, progress=False), rec.encoder_for(), test40)
    assert r.fidelity["cosine_mean"] == pytest.approx(fid["cosine_mean"], abs=1e-12) and r.fidelity["recall@10"] == fid["recall@10"]
    assert r.recommended["cosine_mean"] == r.fidelity["cosine_mean"] and 0 < r.tutorial_default["cosine_mean"] <= 1



def _knn(e: np.ndarray, k: int) -> list[set]:
    """Each row's k nearest rows by cosine (itself excluded), by a full sort."""
    e = e.astype(np.float64) / np.linalg.norm(e.astype(np.float64), axis=1, keepdims=True)
    sim = e @ e.T
    return [set([j for j in np.argsort(-row) if j != i][:k]) for i, row in enumerate(sim)]


def test_evaluate_gives_every_row_its_cosine_and_recall(tiny_model, tiny_calib, tiny_stats, test40):
    """FP32 / tutorial / recommended / planned each carry Spearman, cosine to FP32 and recall@10; a planned
    recipe with transformations is simulated on stats of its transformed encoder."""
    from bertnpu.model.sentence_encoder import SentenceEncoder
    from bertnpu.quant.recipe import EquivalentTransformations
    from bertnpu.quant.simulate import simulate
    from bertnpu.quant.transforms import collect_transformed_stats

    planned = Recipe(calibration=QuantConfig(method=0, percentile=0.99), equivalent_transformation=EquivalentTransformations(qk=True, vo=True),
                     activation_16bits=("layer.2.ffn.residual",))
    inputs = st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(calibration=QuantConfig(method=0)), planned=planned, progress=False)
    with pytest.raises(BertnpuError, match=r"transformation\(s\) qk, vo"):
        st.evaluate(inputs)  # the transformed recipe needs the calibration set
    r = st.evaluate(dataclasses.replace(inputs, calib=tiny_calib))
    sentences = list(dict.fromkeys(test40.sentence1 + test40.sentence2))
    index = {s: i for i, s in enumerate(sentences)}
    rows1, rows2 = [index[s] for s in test40.sentence1], [index[s] for s in test40.sentence2]
    fp32 = np.asarray(SentenceEncoder(tiny_model, progress=False)(sentences), dtype=np.float64)
    transformed = collect_transformed_stats(tiny_model, tiny_calib, tiny_stats, ["qk", "vo"])
    want_recipes = {"tutorial_default": (Recipe(), tiny_stats), "recommended": (Recipe(calibration=QuantConfig(method=0)), tiny_stats),
                    "planned": (planned, transformed)}
    assert r.fp32["cosine_mean"] == 1.0 and r.fp32["recall@10"] == 1.0
    fp32_knn = _knn(fp32, 10)
    for name, (recipe, stats) in want_recipes.items():
        entry = getattr(r, name)
        emb = np.asarray(simulate(tiny_model, stats, recipe).encoder_for()(sentences), dtype=np.float64)
        a, b = emb[rows1], emb[rows2]
        pair_cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
        assert entry["spearman"] == pytest.approx(spearmanr(pair_cos, test40.scores).statistic, abs=1e-9), name
        to_fp32 = (emb * fp32).sum(1) / np.linalg.norm(emb, axis=1) / np.linalg.norm(fp32, axis=1)
        assert entry["cosine_mean"] == pytest.approx(to_fp32.mean(), abs=1e-9), name
        recall = np.mean([len(x & y) / 10 for x, y in zip(fp32_knn, _knn(emb, 10))])
        assert entry["recall@10"] == pytest.approx(recall, abs=1e-12), name
        assert Recipe.from_dict(entry["recipe"]) == recipe
    assert r.planned["cosine_mean"] != r.tutorial_default["cosine_mean"]
    assert r.to_dict()["planned"]["recipe"]["activation_16bits"] == ["layer.2.ffn.residual"]
    without = st.evaluate(st.EvaluateInputs(tiny_model, tiny_stats, test40, recommended=Recipe(), progress=False))
    assert without.planned is None and without.to_dict()["planned"] is None

def test_sweep_keeps_nested_knobs_and_recommends_the_best(tiny_model, tiny_stats, val40, tmp_path):
    site = list_sites(tiny_model)[3].name
    base = Recipe(activation_16bits=(site,), profile="all-int8", prediction={"note": "kept"})
    r = st.run_sweep(st.SweepInputs(tiny_model, tiny_stats, val40, base, percentiles=(0.99, 1.0), topk_ratios=(0.1,), methods=(0, 1),
                                    out=tmp_path / "sweep", progress=False))
    assert r.configs == 4 == len(r.rows)
    assert {(row.config.method, row.config.percentile) for row in r.rows} == {(0, 0.99), (0, 1.0), (1, 0.99), (1, 1.0)}
    spearmans = [row.spearman for row in r.rows]
    assert r.validation_spearman == max(spearmans) and r.recommended_recipe == r.rows[int(np.argmax(spearmans))].recipe
    assert r.recommended_recipe.activation_16bits == (site,) and r.recommended_recipe.profile == "all-int8"
    assert Recipe.load(tmp_path / "sweep" / "recommended_recipe.json") == r.recommended_recipe
    assert QuantConfig.load(tmp_path / "sweep" / "recommended_config.json") == r.recommended_recipe.calibration
    table = json.loads((tmp_path / "sweep" / "sweep.json").read_text())
    assert [Recipe.from_dict(row["recipe"]).activation_16bits for row in table] == [(site,)] * 4
    # a re-run reads every row from the cache and gives the same rows
    again = st.run_sweep(st.SweepInputs(tiny_model, tiny_stats, val40, base, percentiles=(0.99, 1.0), topk_ratios=(0.1,), methods=(0, 1),
                                        out=tmp_path / "sweep", progress=False))
    assert again.rows == r.rows


def test_compile_stage_bundle_carries_the_recipe(tiny_model, tiny_calib, tmp_path):
    recipe = Recipe(calibration=QuantConfig(method=0, percentile=0.99))
    r = st.compile_or_bundle(st.CompileInputs(tiny_model, tiny_calib, recipe, mxq=tmp_path / "m.mxq", bundle=tmp_path / "b"))
    assert r.mxq is None and r.bundle == tmp_path / "b" and "qbcompiler is not installed" in r.note
    saved = json.loads((tmp_path / "b" / "quant_config.json").read_text())
    assert saved["schema_version"] == 1 and QuantConfig.load(tmp_path / "b" / "quant_config.json") == recipe.calibration
    with pytest.raises(BertnpuError, match="qbcompiler"):
        st.compile_or_bundle(st.CompileInputs(tiny_model, tiny_calib, recipe, target="mxq", mxq=tmp_path / "m.mxq"))
    with pytest.raises(BertnpuError, match="Compile target 'onnx'"):
        st.CompileInputs(tiny_model, tiny_calib, recipe, target="onnx")


def test_collect_stats_without_description_is_the_statistics_alone(tiny_model, tiny_calib, tiny_stats):
    from bertnpu.quant.thresholds import clip_thresholds

    r = st.collect_stats(st.StatsInputs(tiny_model, tiny_calib, batch_size=7, progress=False, describe=False))
    assert r.figures == {} and r.outlier_sites == () and r.files == ()
    assert clip_thresholds(r.stats, QuantConfig()) == clip_thresholds(tiny_stats, QuantConfig())  # same batches, same numbers
