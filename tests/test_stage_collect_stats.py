"""Stage 4, collect stats: what it returns is what it writes; without a description it is the statistics alone."""

from __future__ import annotations

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.sites import list_sites
from bertnpu.quant.stats import load_stats
from bertnpu import stages as st
from bertnpu.ui.stage_figures import present, stage_figures


def test_collect_stats_writes_what_it_returns(tiny_model, tiny_calib, tmp_path):
    r = present(st.collect_stats(st.StatsInputs(tiny_model, tiny_calib, out=tmp_path / "s.npz", batch_size=5, progress=False)), tmp_path / "f")
    assert r.sites == len(list_sites(tiny_model)) and r.samples == len(tiny_calib)
    again = load_stats(tmp_path / "s.npz", tiny_model)
    site = r.stats.sites[0].name
    assert again[site].max == pytest.approx(r.stats[site].max)
    # the observer's max is the plain max over the calibration tokens of the first site (embedding output after LayerNorm)
    assert {"site_ranges", "threshold_stability"} == set(stage_figures(r))
    worst = r.outlier_sites[0]
    assert worst["site"] in {s.name for s in r.stats.sites}
    with pytest.raises(BertnpuError, match="already exists"):
        st.collect_stats(st.StatsInputs(tiny_model, tiny_calib, out=tmp_path / "s.npz", progress=False))


def test_collect_stats_without_description_is_the_statistics_alone(tiny_model, tiny_calib, tiny_stats):
    from bertnpu.quant.thresholds import clip_thresholds

    r = st.collect_stats(st.StatsInputs(tiny_model, tiny_calib, batch_size=7, progress=False, describe=False))
    assert stage_figures(r) == {} and r.outlier_sites == () and r.files == ()
    assert clip_thresholds(r.stats, QuantConfig()) == clip_thresholds(tiny_stats, QuantConfig())  # same batches, same numbers
