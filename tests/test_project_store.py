"""The project store as the notebooks open it: builds the calibration set and stats once, reuses them from its folder
(same inputs, same cache key as `bertnpu run`), recomputes stats after a new set."""

import numpy as np
import pytest

from bertnpu.data.calibration import CalibrationSpec
from bertnpu.data.stsb import load_stsb
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.stats import collect_activation_stats
from bertnpu.quant.thresholds import clip_thresholds
from bertnpu.ui.project import open_project


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("ws")


def test_pairs_are_the_first_eval_pairs_of_each_split(tiny_model_dir, stsb_dir, folder):
    ws = open_project(folder, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    for split in ("validation", "test"):
        want = load_stsb(split, stsb_dir).subset(25)
        got = ws.pairs(split)
        assert got.sentence1 == want.sentence1 and np.array_equal(got.scores, want.scores) and got.split == split
    assert ws.pairs("test") is ws.pairs("test")


def test_calibration_and_stats_are_built_once_then_reused(tiny_model_dir, stsb_dir, folder):
    ws = open_project(folder, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    calib = ws.calibration
    assert len(calib) == 12 and (folder / "calib" / "manifest.json").is_file()
    stats = ws.stats
    reference = collect_activation_stats(ws.model, calib, progress=False)
    cfg = QuantConfig()
    assert clip_thresholds(stats, cfg) == clip_thresholds(reference, cfg)
    stamp = (folder / "stats.npz").stat().st_mtime_ns, (folder / "calib" / "manifest.json").stat().st_mtime_ns

    again = open_project(folder, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    assert [a.tobytes() for a in again.calibration.arrays] == [a.tobytes() for a in calib.arrays]
    assert clip_thresholds(again.stats, cfg) == clip_thresholds(stats, cfg)
    assert ((folder / "stats.npz").stat().st_mtime_ns, (folder / "calib" / "manifest.json").stat().st_mtime_ns) == stamp


def test_a_new_calibration_set_drops_old_stats(tiny_model_dir, stsb_dir, folder):
    ws = open_project(folder, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    old = ws.stats
    result = ws.rebuild_calibration(CalibrationSpec(count=8, seed=4))
    assert "stats" not in ws.__dict__ and ws.stats_key()["calibration"] == result.sha256
    assert len(ws.calibration) == 8 == result.samples and result.evaluation_split == "validation"
    new = ws.stats
    assert new is not old and new["embeddings.out"].count == int(ws.calibration.lengths.sum()) * ws.model.config.hidden_size


def test_recipe_to_compile_follows_bertnpu_run(tiny_model_dir, stsb_dir, tmp_path):
    """Notebook 5 compiles the planned recipe when notebook 4 made one, else the sweep's, else the tutorial's."""
    from bertnpu.quant.recipe import Recipe

    ws = open_project(tmp_path, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    recipe, origin = ws.recipe_to_compile()
    assert recipe == Recipe() and "tutorial" in origin
    recommended = Recipe(calibration=QuantConfig(method=2, mode=2))
    recommended.save(tmp_path / "recommended_recipe.json")  # where `bertnpu run` and notebook 4's sweep put it
    recipe, origin = ws.recipe_to_compile()
    assert recipe == recommended and "sweep" in origin
    planned = recommended.with_(activation_16bits=("layer.0.ffn.residual",))
    planned.save(tmp_path / "recipe.json")
    recipe, origin = ws.recipe_to_compile()
    assert recipe == planned and "planned" in origin


def test_stats_changed_on_disk_are_recomputed(tiny_model_dir, stsb_dir, tmp_path, capsys):
    ws = open_project(tmp_path, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    fresh = ws.stats
    with np.load(tmp_path / "stats.npz") as z:
        arrays = {k: z[k] for k in z.files if not k.endswith(("/channel_min", "/channel_max"))}
    with open(tmp_path / "stats.npz", "wb") as fh:
        np.savez(fh, **arrays)
    again = open_project(tmp_path, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25).stats
    assert "stats: recomputing (stats.npz changed" in capsys.readouterr().out
    assert np.array_equal(again["layer.0.ffn.output.out"].channel_min.numpy(), fresh["layer.0.ffn.output.out"].channel_min.numpy())


def test_a_notebook_opened_on_a_run_folder_reuses_its_calibration_and_stats(tiny_model_dir, stsb_dir, tmp_path, capsys):
    """One layout and one cache key: the stages `bertnpu run` wrote are what the notebooks' store finds (no recompute)."""
    from bertnpu.project import ProjectStore
    from bertnpu.run_config import RunConfig

    config = RunConfig.quick(model=str(tiny_model_dir), stsb_dir=str(stsb_dir), out=str(tmp_path), calib_count=12, validation_pairs=25, test_pairs=25)
    run_side = ProjectStore(config, log=print)
    with run_side.writing("stages", "calib", "stats.npz"):
        run_side.calibrate()
        run_side.stats_result
    stamp = (tmp_path / "stats.npz").stat().st_mtime_ns
    capsys.readouterr()
    ws = open_project(tmp_path, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=12, eval_pairs=25)
    assert clip_thresholds(ws.stats, QuantConfig()) == clip_thresholds(run_side.stats, QuantConfig())
    assert "stats: reused (inputs unchanged), files verified" in capsys.readouterr().out
    assert (tmp_path / "stats.npz").stat().st_mtime_ns == stamp


def test_calibration_draws_from_the_whole_split_whatever_the_evaluation_cut(tiny_model_dir, stsb_dir, tmp_path):
    """5 evaluation pairs hold fewer than 20 unique sentences: the set still has 20, drawn from the whole split
    exactly as the calibration builder draws them from the uncut release."""
    from bertnpu.data.calibration import select_samples
    from bertnpu.model.sentence_encoder import tokenize

    ws = open_project(tmp_path, model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=20, eval_pairs=5)
    spec = CalibrationSpec(count=20)
    want, _ = select_samples(load_stsb(spec.split, stsb_dir), spec, lambda s: [len(x) for x in tokenize(ws.model, s, spec.max_length)])
    assert len(ws.pairs("validation")) == 5 and len(ws.calibration) == 20
    assert list(ws.calibration.sentences) == list(want)
