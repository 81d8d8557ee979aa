"""Stage 3, calibrate: coverage against Hugging Face's own embeddings, figures on validation only, the widget's number equals the stage's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bertnpu.data.calibration import CalibrationSpec, load_calibration_set
from bertnpu.errors import BertnpuError
from bertnpu import stages as st
from bertnpu.ui.stage_figures import present, stage_figures


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


def test_calibrate_coverage_against_hf_embeddings(tiny_model, val40, tmp_path):
    spec = CalibrationSpec(count=12, seed=1)
    r = present(st.calibrate(st.CalibrateInputs(tiny_model, tmp_path / "calib", spec, source=val40, evaluation=val40)), tmp_path / "figs")
    figures = stage_figures(r)
    assert r.samples == 12 and r.evaluation_split == "validation"
    assert set(figures) == {"calibration_ranges", "calibration_lengths", "calibration_coverage"}
    assert all((tmp_path / "figs" / f"{n}.png").is_file() for n in figures)
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
    from bertnpu.ui.project import open_project

    ws = open_project(tmp_path / "w", model=str(tiny_model_dir), stsb_dir=str(stsb_dir), eval_pairs=30)
    builder = CalibrationBuilder(ws, count=16, seed=2)
    builder.build()
    validation = load_stsb("validation", stsb_dir).subset(30)
    # the set is drawn from the whole split and its coverage measured on the project's (cut) evaluation pairs, as the run does
    r = st.calibrate(st.CalibrateInputs(ws.model, tmp_path / "c", CalibrationSpec(count=16, seed=2), source=load_stsb("validation", stsb_dir),
                                        evaluation=validation, progress=False))
    assert builder.summary["validation_outside_fraction"] == pytest.approx(r.eval_outside_fraction, abs=0)
    assert "validation values outside" in builder.status.value and len(builder.pngs) == len(stage_figures(r))
