"""A cached result is served only for the exact inputs it was computed from."""

import dataclasses

import pytest

from bertnpu.quant.config import QuantConfig
from bertnpu.tune.sweep import config_grid, sweep


def _flipped(pairs):
    return dataclasses.replace(pairs, scores=5.0 - pairs.scores)


def test_content_hash_sees_every_score_and_sentence(stsb_validation):
    pairs = stsb_validation.subset(40)
    base = pairs.content_hash()
    assert _flipped(pairs).content_hash() != base
    nudged = pairs.scores.copy()
    nudged[17] += 0.2
    assert dataclasses.replace(pairs, scores=nudged).content_hash() != base
    s1 = list(pairs.sentence1)
    s1[3] = s1[3] + " "
    assert dataclasses.replace(pairs, sentence1=s1).content_hash() != base
    assert dataclasses.replace(pairs, source="elsewhere").content_hash() == base  # the contents, not the file name


def test_sweep_cache_gives_fresh_results_for_flipped_scores(tiny_model, tiny_stats, stsb_validation, tmp_path):
    pairs = stsb_validation.subset(60)
    configs = config_grid(QuantConfig(method=0), [1.0], [0.1])
    cache = tmp_path / "cache.jsonl"
    first = sweep(tiny_model, tiny_stats, pairs, configs, cache=cache, progress=False, strategy="exhaustive")[0]
    flipped = _flipped(pairs)
    again = sweep(tiny_model, tiny_stats, flipped, configs, cache=cache, progress=False, strategy="exhaustive")[0]
    # Spearman is rank-based: 5 - score reverses every rank, so the fresh result is exactly the negation
    assert again["spearman"] == pytest.approx(-first["spearman"], abs=1e-12)
    assert first["spearman"] != pytest.approx(0.0, abs=1e-3)
    assert len(cache.read_text().splitlines()) == 2  # one entry per distinct input, none overwritten
    # and the original inputs are still served from the cache, unchanged
    assert sweep(tiny_model, tiny_stats, pairs, configs, cache=cache, progress=False, strategy="exhaustive")[0]["spearman"] == first["spearman"]


def test_a_cache_that_cannot_be_written_is_one_sentence(tiny_model, tiny_stats, stsb_validation, tmp_path):
    from bertnpu.errors import BertnpuError

    (tmp_path / "afile").write_text("user")
    configs = config_grid(QuantConfig(method=0), [1.0], [0.1])
    with pytest.raises(BertnpuError, match="a part of its path is a file, not a folder"):
        sweep(tiny_model, tiny_stats, stsb_validation.subset(30), configs, cache=tmp_path / "afile" / "cache.jsonl", progress=False, strategy="exhaustive")
    assert (tmp_path / "afile").read_text() == "user"


def test_knobs_the_search_or_strategy_ignores_never_enter_the_sweep_stage_key():
    """Two runs whose sweep knobs differ only in ones their search or strategy ignores share the sweep stage's key (the
    quick preset's proxy size and confirm count are ignored by the exhaustive strategy, its grid cells by the wide search);
    a knob that is read changes it."""
    from bertnpu.project.run import sweep_stage_key
    from bertnpu.results_log import cache_key
    from bertnpu.run_config import QUICK, RunConfig

    def key(config):
        return cache_key("stage:sweep", sweep_stage_key(config, {"stats": "ab12"}, "cd34"))

    same_grid = {k: QUICK[k] for k in ("percentiles", "topk_ratios", "methods", "outputs")}
    exhaustive_quick, exhaustive_full = RunConfig.quick(strategy="exhaustive"), RunConfig.full(strategy="exhaustive", search="grid", **same_grid)
    assert (exhaustive_quick.confirm, exhaustive_quick.proxy_sentences) != (exhaustive_full.confirm, exhaustive_full.proxy_sentences)
    assert key(exhaustive_quick) == key(exhaustive_full)
    wide_quick = RunConfig.quick(search="wide")
    assert key(wide_quick) == key(RunConfig.full(search="wide", methods=QUICK["methods"], outputs=QUICK["outputs"], confirm=QUICK["confirm"],
                                                 proxy_sentences=QUICK["proxy_sentences"]))
    assert key(RunConfig.full(proxy_sentences=128)) != key(RunConfig.full())  # the fast strategy reads it
    assert key(RunConfig.full(search="grid")) != key(RunConfig.full(search="grid", percentiles=(0.99,)))


def test_calibration_knobs_a_mode_ignores_never_enter_the_sweep_cache_key(tiny_model, tiny_stats, stsb_validation, tmp_path):
    """Max (mode 0) reads neither percentile nor topk_ratio: cells differing only in them share one cached result."""
    pairs = stsb_validation.subset(40)
    configs = [QuantConfig(method=0, mode=0, percentile=0.99, topk_ratio=0.1), QuantConfig(method=0, mode=0, percentile=0.9999, topk_ratio=0.001)]
    cache = tmp_path / "cache.jsonl"
    rows = sweep(tiny_model, tiny_stats, pairs, configs, cache=cache, progress=False, strategy="exhaustive")
    assert rows[0]["key"] == rows[1]["key"] and len(cache.read_text().splitlines()) == 1
