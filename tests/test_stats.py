"""Activation statistics: collection over a calibration set, bounded state, persistence (observers: test_observers.py)."""

import numpy as np
import pytest

from bertnpu.data.calibration import CalibrationSet, CalibrationSpec, build_calibration_set
from bertnpu.errors import BertnpuError
from bertnpu.quant.observers import TOPK
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.sites import list_sites, sites_of
from bertnpu.quant.stats import collect_activation_stats, load_stats
from bertnpu.quant.thresholds import clip_thresholds


def test_every_site_is_observed(tiny_model, tiny_stats):
    assert [s.name for s in tiny_stats.sites] == [s.name for s in sites_of(tiny_model)] == [s.name for s in list_sites(tiny_model)]
    assert all(tiny_stats[s.name].count > 0 for s in tiny_stats.sites)


def test_stats_equal_raw_values(tiny_stats, raw_values, tiny_calib):
    for name, values in raw_values.items():
        obs = tiny_stats[name]
        assert obs.count == values.size, name  # padding never counted
        assert np.isclose(obs.min, values.min(), atol=1e-5) and np.isclose(obs.max, values.max(), atol=1e-5), name
        assert np.allclose(obs.channel_absmax.numpy(), np.abs(values).max(0), atol=1e-5), name
        a = np.abs(values).ravel()
        assert np.abs(obs.abs_hist().sum() - a.size) == 0
        assert np.allclose(obs.top_abs()[:50], np.sort(a)[::-1][:50], atol=1e-5)


def test_batched_equals_one_sample_at_a_time(tiny_model, tiny_calib, tiny_stats):
    single = collect_activation_stats(tiny_model, tiny_calib, batch_size=1, progress=False)
    for s in tiny_stats.sites:
        a, b = tiny_stats[s.name], single[s.name]
        assert a.count == b.count
        assert np.isclose(a.max, b.max, atol=1e-5) and np.isclose(a.min, b.min, atol=1e-5)
        assert np.allclose(a.channel_absmax.numpy(), b.channel_absmax.numpy(), atol=1e-5)
        # float rounding may move a value across a bin edge; nothing else may differ
        assert np.abs(a.abs_hist() - b.abs_hist()).sum() <= 0.001 * a.count + 2
        assert np.allclose(a.replica_hist.sum(1), b.replica_hist.sum(1))  # same bootstrap weights per sample


def test_token_roles(tiny_stats, tiny_calib):
    obs = tiny_stats["layer.1.ffn.layernorm.out"]
    hidden = tiny_calib.hidden_size
    cls, sep, content = obs.role_hist.sum(1).numpy()
    assert cls == sep == len(tiny_calib) * hidden
    assert content == (tiny_calib.lengths.sum() - 2 * len(tiny_calib)) * hidden
    assert np.allclose(obs.role_hist.sum(0).numpy(), obs.abs_hist())


def test_state_is_bounded(tiny_model, tiny_calib):
    small = collect_activation_stats(tiny_model, CalibrationSet(tiny_calib.files[:8], tiny_calib.arrays[:8]), progress=False)
    big = collect_activation_stats(tiny_model, tiny_calib, progress=False)  # 4x the samples
    assert big.state_size() <= small.state_size() + len(small.sites) * 2 * TOPK
    per_site = max(o.state_size() for o in big.observers.values())
    assert per_site <= (2 + 3 + 16) * 2560 + 2 * TOPK + 3 + 1024


def test_save_load_round_trip(tiny_model, tiny_calib, tiny_stats, tmp_path, stsb_validation):
    path = tiny_stats.save(tmp_path / "stats.npz")
    loaded = load_stats(path, tiny_model, tiny_calib)
    cfg = QuantConfig()
    assert clip_thresholds(loaded, cfg) == clip_thresholds(tiny_stats, cfg)
    with pytest.raises(BertnpuError, match="already exists"):
        tiny_stats.save(path)
    other = build_calibration_set(tiny_model, tmp_path / "other", CalibrationSpec(count=5, seed=9), pairs=stsb_validation, progress=False)
    with pytest.raises(BertnpuError, match="another calibration set"):
        load_stats(path, tiny_model, other)


def test_load_rejects_other_model(tiny_stats, tmp_path):
    from conftest import build_tiny_bert
    from bertnpu.model.load import load_model

    path = tiny_stats.save(tmp_path / "s.npz")
    other = load_model(str(build_tiny_bert(tmp_path / "m", seed=5)))
    with pytest.raises(BertnpuError, match="other weights"):
        load_stats(path, other)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(BertnpuError, match="not a bertnpu stats file"):
        load_stats(tmp_path / "junk.npz")


def test_load_names_stats_from_an_older_bertnpu(tiny_stats, tmp_path):
    path = tiny_stats.save(tmp_path / "s.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files if not k.endswith(("/channel_min", "/channel_max"))}
    np.savez(tmp_path / "old.npz", **arrays)  # the layout of bertnpu 0.2 (no per-channel min/max)
    with pytest.raises(BertnpuError, match="older bertnpu .*recompute it with `bertnpu stats`"):
        load_stats(tmp_path / "old.npz")


def test_cli_sites_and_stats(tiny_model_dir, tiny_calib, tmp_path, capsys):
    import json
    from bertnpu.cli import main

    assert main(["sites", "--model", str(tiny_model_dir), "--json"]) == 0
    sites = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["sites"]
    assert len(sites) == 1 + 3 * 14 + 2
    calib_dir = tiny_calib.files[0].parent
    assert main(["stats", "--model", str(tiny_model_dir), "--calib", str(calib_dir), "--out", str(tmp_path / "s.npz")]) == 0
    assert load_stats(tmp_path / "s.npz")["pooler.out"].count == len(tiny_calib) * 36
