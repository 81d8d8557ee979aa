"""results_log: the one cache-key rule and the one resumable JSON-lines log of results."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import warnings

import pytest

import bertnpu.results_log as results_log
from bertnpu.errors import BertnpuError, BertnpuWarning
from bertnpu.results_log import KEY_LENGTH, ResultLog, cache_key
from bertnpu.schema import Field, Schema

SCORE = Schema({"spearman": Field(float, low=-1.0, high=1.0), "cosine": Field(float, required=False)})
IDENT = {"model": "ab12", "calibration": "cd34", "pairs_sha256": "ef56", "pairs": 1500, "ranges": "9f3c", "recipe": {"bits": 8, "sites": ["a", "b"]}}


def _caught(read):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        return read(), [w for w in caught if issubclass(w.category, BertnpuWarning)]


# -- the key rule ------------------------------------------------------------------------------

def test_the_key_is_sha256_of_canonical_json_with_the_version():
    text = json.dumps({"kind": "full", "ident": IDENT, "bertnpu": results_log.__version__}, sort_keys=True, separators=(",", ":"))
    assert cache_key("full", IDENT) == hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]
    assert len(cache_key("full", {})) == KEY_LENGTH


def test_the_key_ignores_dict_order_at_every_depth_and_tuple_versus_list():
    shuffled = dict(reversed(list(IDENT.items())))
    shuffled["recipe"] = {"sites": ("a", "b"), "bits": 8}
    assert cache_key("full", shuffled) == cache_key("full", IDENT)


@pytest.mark.parametrize("field", sorted(IDENT))
def test_the_key_changes_with_every_ident_field(field):
    changed = {**IDENT, field: {"other": 1} if isinstance(IDENT[field], dict) else IDENT[field] * 2}
    assert cache_key("full", changed) != cache_key("full", IDENT)
    assert cache_key("full", {k: v for k, v in IDENT.items() if k != field}) != cache_key("full", IDENT)


def test_the_key_changes_with_the_kind_and_the_version(monkeypatch):
    before = cache_key("full", IDENT)
    assert cache_key("proxy", IDENT) != before
    monkeypatch.setattr(results_log, "__version__", "99.0.0")
    assert cache_key("full", IDENT) != before


def test_a_value_json_cannot_write_is_refused_not_hashed_by_its_str():
    import numpy as np

    with pytest.raises(TypeError):
        cache_key("full", {"scores": np.zeros(3)})


# -- the log -------------------------------------------------------------------------------------

def test_put_appends_and_a_new_log_reads_it_back(tmp_path):
    path = tmp_path / "sub" / "results.jsonl"
    log = ResultLog(path, SCORE, "test log")
    k1, k2 = cache_key("full", IDENT), cache_key("proxy", IDENT)
    assert log.put(k1, {"spearman": 0.5}) == {"spearman": 0.5}
    log.put(k2, {"spearman": -0.25, "cosine": 0.99})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"key": k1, "spearman": 0.5}, {"key": k2, "cosine": 0.99, "spearman": -0.25}]
    again, caught = _caught(lambda: ResultLog(path, SCORE, "test log"))
    assert caught == [] and len(again) == 2 and k1 in again and "nope" not in again
    assert again.get(k2) == {"spearman": -0.25, "cosine": 0.99} and again.get("nope") is None
    assert dict(again.values) == {k1: {"spearman": 0.5}, k2: {"spearman": -0.25, "cosine": 0.99}}
    with pytest.raises(TypeError):
        again.values[k1] = {}  # read-only: results are added with put


def test_in_memory_only(tmp_path):
    log = ResultLog(None, SCORE)
    log.put("k", {"spearman": 0.1})
    assert log.get("k") == {"spearman": 0.1} and list(tmp_path.iterdir()) == []


def test_a_cut_last_line_resumes_silently_and_the_next_line_is_not_glued_to_it(tmp_path):
    path = tmp_path / "results.jsonl"
    log = ResultLog(path, SCORE)
    log.put("a", {"spearman": 0.5})
    log.put("b", {"spearman": 0.6})
    text = path.read_text()
    path.write_text(text[: -12])  # an interrupt cut the second line
    resumed, caught = _caught(lambda: ResultLog(path, SCORE))
    assert caught == [] and "a" in resumed and "b" not in resumed  # the cut result is computed again
    resumed.put("b", {"spearman": 0.6})
    lines = path.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[-1]) == {"key": "b", "spearman": 0.6}
    assert dict(ResultLog(path, SCORE).values) == {"a": {"spearman": 0.5}, "b": {"spearman": 0.6}}


def test_damaged_lines_warn_once_naming_the_file_and_count_and_are_recomputed(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text("\n".join([json.dumps({"key": "good", "spearman": 0.5}),
                               json.dumps({"key": "edited", "spearman": "0.5"}),  # text where a number belongs
                               json.dumps({"key": "out", "spearman": 7.0}),  # outside the schema's range
                               json.dumps({"spearman": 0.1}),  # no key
                               json.dumps([1, 2])]) + "\n")
    log, caught = _caught(lambda: ResultLog(path, SCORE, "test log"))
    assert len(caught) == 1
    message = str(caught[0].message)
    assert message.startswith("4 damaged line(s) in the test log") and repr(str(path)) in message and "\n" not in message
    assert dict(log.values) == {"good": {"spearman": 0.5}}
    log.put("edited", {"spearman": 0.5})  # the caller computes it again
    again, caught = _caught(lambda: ResultLog(path, SCORE, "test log"))
    assert again.get("edited") == {"spearman": 0.5} and len(caught) == 1  # append-only: the damaged lines stay, skipped


def test_a_later_line_replaces_an_earlier_one_of_the_same_key(tmp_path):
    path = tmp_path / "results.jsonl"
    log = ResultLog(path, SCORE)
    log.put("k", {"spearman": 0.1})
    log.put("k", {"spearman": 0.2, "cosine": 0.9})
    assert ResultLog(path, SCORE).get("k") == {"spearman": 0.2, "cosine": 0.9}


def test_a_read_only_folder_is_one_sentence(tmp_path, monkeypatch):
    folder = tmp_path / "ro"
    folder.mkdir()
    os.chmod(folder, 0o500)
    if os.access(folder, os.W_OK):  # root ignores the mode: give the error the kernel gives everyone else
        def refuse(*args, **kwargs):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

        monkeypatch.setattr(results_log, "open", refuse, raising=False)
    try:
        log = ResultLog(folder / "results.jsonl", SCORE)
        with pytest.raises(BertnpuError) as info:
            log.put("k", {"spearman": 0.1})
    finally:
        os.chmod(folder, 0o700)
    text = str(info.value)
    assert "\n" not in text and text.count(". ") == 0 and text.endswith(".") and "permission denied" in text and str(folder) in text
    assert "k" not in log and list(folder.iterdir()) == []


def test_a_path_below_a_file_is_one_sentence(tmp_path):
    (tmp_path / "afile").write_text("user")
    with pytest.raises(BertnpuError, match="a part of its path is a file, not a folder"):
        ResultLog(tmp_path / "afile" / "results.jsonl", SCORE).put("k", {"spearman": 0.1})
    assert (tmp_path / "afile").read_text() == "user"
