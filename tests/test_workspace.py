"""Workspace: builds the calibration set and stats once, reuses them from its folder, rebuilds stats after a new set."""

import numpy as np
import pytest

from bertnpu.data.calibration import CalibrationSpec
from bertnpu.data.stsb import load_stsb
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.stats import collect_activation_stats
from bertnpu.quant.thresholds import clip_thresholds
from bertnpu.ui.workspace import Workspace


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("ws")


def test_pairs_are_the_first_eval_pairs_of_each_split(tiny_model_dir, stsb_dir, folder):
    ws = Workspace(folder, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    for split in ("validation", "test"):
        want = load_stsb(split, stsb_dir).subset(25)
        got = ws.pairs(split)
        assert got.sentence1 == want.sentence1 and np.array_equal(got.scores, want.scores) and got.split == split
    assert ws.pairs("test") is ws.pairs("test")


def test_calibration_and_stats_are_built_once_then_reused(tiny_model_dir, stsb_dir, folder):
    ws = Workspace(folder, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    calib = ws.calibration
    assert len(calib) == 12 and (folder / "calib" / "manifest.json").is_file()
    stats = ws.stats
    reference = collect_activation_stats(ws.model, calib, progress=False)
    cfg = QuantConfig()
    assert clip_thresholds(stats, cfg) == clip_thresholds(reference, cfg)
    stamp = (folder / "stats.npz").stat().st_mtime_ns, (folder / "calib" / "manifest.json").stat().st_mtime_ns

    again = Workspace(folder, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12)
    assert [a.tobytes() for a in again.calibration.arrays] == [a.tobytes() for a in calib.arrays]
    assert clip_thresholds(again.stats, cfg) == clip_thresholds(stats, cfg)
    assert ((folder / "stats.npz").stat().st_mtime_ns, (folder / "calib" / "manifest.json").stat().st_mtime_ns) == stamp


def test_a_new_calibration_set_drops_old_stats(tiny_model_dir, stsb_dir, folder):
    ws = Workspace(folder, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    old = ws.stats
    result = ws.calibrate(CalibrationSpec(count=8, seed=4))
    assert not (folder / "stats.npz").exists() and "stats" not in ws.__dict__
    assert len(ws.calibration) == 8 == result.samples and result.evaluation_split == "validation"
    new = ws.stats
    assert new is not old and new["embeddings.out"].count == int(ws.calibration.lengths.sum()) * ws.model.config.hidden_size
