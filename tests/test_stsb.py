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
