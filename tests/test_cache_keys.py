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
