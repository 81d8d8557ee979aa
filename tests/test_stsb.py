import pytest

from bertnpu.errors import BertnpuError
from bertnpu.data.stsb import load_stsb


@pytest.mark.parametrize("split,count", [("train", 5749), ("validation", 1500), ("test", 1379)])
def test_release_folder_counts(stsb_dir, split, count):
    pairs = load_stsb(split, stsb_dir)
    assert len(pairs) == len(pairs.sentence1) == len(pairs.sentence2) == count
    assert pairs.scores.min() >= 0 and pairs.scores.max() <= 5


def test_lines_with_license_fields(stsb_dir):
    lines = (stsb_dir / "sts-train.csv").read_text(encoding="utf-8").splitlines()
    extra = [i for i, line in enumerate(lines) if line.count("\t") > 6]
    assert extra, "the release has lines with extra fields"
    pairs = load_stsb("train", stsb_dir)
    for i in extra[:20]:
        fields = lines[i].split("\t")
        assert pairs.sentence2[i] == fields[6]
        assert pairs.scores[i] == float(fields[4])
        assert "\t" not in pairs.sentence2[i]


def test_env_var(stsb_dir, monkeypatch):
    monkeypatch.setenv("BERTNPU_STSB_DIR", str(stsb_dir))
    assert len(load_stsb("validation")) == 1500


def test_missing_split_file(tmp_path, stsb_dir):
    (tmp_path / "sts-train.csv").write_text((stsb_dir / "sts-train.csv").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(BertnpuError, match="has no sts-test.csv for split 'test'"):
        load_stsb("test", tmp_path)


def test_unknown_split(stsb_dir):
    with pytest.raises(BertnpuError, match="Unknown split 'dev'; use one of train, validation, test"):
        load_stsb("dev", stsb_dir)


def test_offline_without_folder_names_both_ways(monkeypatch):
    import bertnpu.model.hub

    monkeypatch.delenv("BERTNPU_STSB_DIR", raising=False)
    monkeypatch.setattr(bertnpu.model.hub, "hub_reachable", lambda: False)
    with pytest.raises(BertnpuError) as info:
        load_stsb("test")
    msg = str(info.value)
    assert "mteb/stsbenchmark-sts" in msg and "--stsb-dir" in msg and "BERTNPU_STSB_DIR" in msg
    assert msg.count(". ") == 0  # one sentence


@pytest.mark.parametrize("score,phrase", [("nan", "outside"), ("inf", "outside"), ("-7", "outside STS-B's 0-5 range"), ("5.01", "outside"), ("x", "not a number")])
def test_bad_scores_name_file_and_line(tmp_path, stsb_dir, score, phrase):
    lines = (stsb_dir / "sts-dev.csv").read_text(encoding="utf-8").split("\n")
    fields = lines[41].split("\t")
    fields[4] = score
    lines[41] = "\t".join(fields)
    (tmp_path / "sts-dev.csv").write_text("\n".join(lines), encoding="utf-8")
    with pytest.raises(BertnpuError, match=f"Line 42 of '.*sts-dev.csv' has score '{score}'.*{phrase}"):
        load_stsb("validation", tmp_path)


def test_empty_and_non_utf8_files(tmp_path):
    (tmp_path / "sts-test.csv").write_bytes(b"")
    with pytest.raises(BertnpuError, match="holds no sentence pairs"):
        load_stsb("test", tmp_path)
    (tmp_path / "sts-test.csv").write_bytes("main\tf\t2012\t1\t2.5\tcaf\u00e9\tb\n".encode("latin-1"))
    with pytest.raises(BertnpuError, match="not UTF-8 text \\(bad byte on line 1\\)"):
        load_stsb("test", tmp_path)


def test_sentences_may_hold_unicode_line_separators(tmp_path):
    (tmp_path / "sts-test.csv").write_text("main\tf\t2012\t1\t0.0\ta\u2028b\tc\x1cd\r\nmain\tf\t2012\t2\t5.0\te\tf\n", encoding="utf-8")
    pairs = load_stsb("test", tmp_path)
    assert pairs.sentence1 == ["a\u2028b", "e"] and pairs.sentence2 == ["c\x1cd", "f"] and pairs.scores.tolist() == [0.0, 5.0]


def test_sample_is_seeded_in_file_order_and_keeps_pairs_aligned(stsb_dir):
    """The one sampler (sweep proxy, Simulate panel): n distinct pairs, in file order, each row's two sentences and score together."""
    from bertnpu.data.stsb import load_stsb

    pairs = load_stsb("validation", stsb_dir)
    a, b = pairs.sample(50, seed=3), pairs.sample(50, seed=3)
    assert a.sentence1 == b.sentence1 and len(a) == 50
    rows = [next(i for i in range(len(pairs)) if (pairs.sentence1[i], pairs.sentence2[i]) == (s1, s2)) for s1, s2 in zip(a.sentence1, a.sentence2)]
    assert rows == sorted(set(rows)) and [float(pairs.scores[i]) for i in rows] == [float(x) for x in a.scores]
    assert pairs.sample(50, seed=4).sentence1 != a.sentence1
    assert pairs.sample(0) is pairs and pairs.sample(len(pairs) + 1) is pairs
