import hashlib
import json

import numpy as np
import pytest

from bertnpu.data.calibration import (
    LENGTH_BINS, CalibrationSpec, _quantile_bins, build_calibration_set, load_calibration_set,
)
from bertnpu.cli import main
from bertnpu.errors import BertnpuError
from bertnpu.model.load import load_model


def tutorial_embedding(model, sentence: str) -> np.ndarray:
    """The tutorial's arithmetic in numpy: one sentence alone, word + type + position, LayerNorm."""
    w = {k: v.detach().numpy().astype(np.float64) for k, v in model.bert.embeddings.state_dict().items()}
    enc = model.tokenizer(sentence, truncation=True, max_length=model.max_seq_length)
    ids, types = np.array(enc["input_ids"]), np.array(enc["token_type_ids"])
    x = w["word_embeddings.weight"][ids] + w["token_type_embeddings.weight"][types] + w["position_embeddings.weight"][: len(ids)]
    mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    y = (x - mu) / np.sqrt(var + model.config.layer_norm_eps) * w["LayerNorm.weight"] + w["LayerNorm.bias"]
    return y[None]  # float64: the comparison measures only bertnpu's float32 error


@pytest.mark.parametrize("which", ["default_model", "tiny_model"])
def test_files_equal_the_tutorial_arithmetic(request, which, stsb_validation, tmp_path):
    model = request.getfixturevalue(which)
    cs = build_calibration_set(model, tmp_path / "calib", CalibrationSpec(count=24, seed=3), pairs=stsb_validation, progress=False)
    manifest = json.loads((tmp_path / "calib" / "manifest.json").read_text())
    assert [s["file"] for s in manifest["samples"]] == [f.name for f in cs.files]
    for sample in manifest["samples"]:
        got = np.load(tmp_path / "calib" / sample["file"])
        want = tutorial_embedding(model, sample["sentence"])
        assert got.dtype == np.float32 and got.shape == want.shape == (1, sample["tokens"], model.config.hidden_size)
        assert np.abs(got - want).max() <= 1e-6
        assert sample["sentence"] in stsb_validation.sentence1


def test_manifest_and_file_list(tiny_model, stsb_validation, tmp_path):
    out = tmp_path / "calib"
    build_calibration_set(tiny_model, out, CalibrationSpec(count=10), pairs=stsb_validation, progress=False)
    m = json.loads((out / "manifest.json").read_text())
    assert {"model", "embedding_sha256", "split", "column", "seed", "strategy", "tool", "samples"} <= set(m)
    assert (m["split"], m["column"], m["seed"], m["strategy"], m["count"]) == ("validation", "sentence1", 0, "random", 10)
    listed = (out / "npy_files.txt").read_text().splitlines()
    assert listed == [str((out / s["file"]).resolve()) for s in m["samples"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib"]  # no temp folders left


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes(tiny_model, stsb_validation, tmp_path):
    out = tmp_path / "calib"
    spec = CalibrationSpec(count=32, seed=7, strategy="score-stratified")
    build_calibration_set(tiny_model, out, spec, pairs=stsb_validation, progress=False)
    first = _digest(out)
    build_calibration_set(tiny_model, out, spec, pairs=stsb_validation, force=True, progress=False)
    assert _digest(out) == first
    other = build_calibration_set(tiny_model, tmp_path / "other", CalibrationSpec(count=32, seed=8), pairs=stsb_validation, progress=False)
    assert other.sentences != load_calibration_set(out).sentences


def test_length_stratified_spreads_over_length_bins(tiny_model, stsb_validation, tmp_path):
    cs = build_calibration_set(tiny_model, tmp_path / "c", CalibrationSpec(count=64, strategy="length-stratified"), pairs=stsb_validation, progress=False)
    pool = list(dict.fromkeys(stsb_validation.sentence1))
    lengths = np.array([len(x) for x in tiny_model.tokenizer(pool)["input_ids"]])
    bins = dict(zip(pool, _quantile_bins(lengths, LENGTH_BINS)))
    counts = np.bincount([bins[s] for s in cs.sentences], minlength=LENGTH_BINS)
    assert counts.tolist() == [64 // LENGTH_BINS] * LENGTH_BINS


def test_score_stratified_spreads_over_scores(tiny_model, stsb_validation, tmp_path):
    n = 100
    cs = build_calibration_set(tiny_model, tmp_path / "c", CalibrationSpec(count=n, strategy="score-stratified"), pairs=stsb_validation, progress=False)
    scores = np.array([s["pair_score"] for s in cs.manifest["samples"]])
    per_bin = np.bincount(np.minimum((scores).astype(int), 4), minlength=5)
    assert per_bin.min() >= n // 5 - 3  # every similarity band is represented about equally
    rnd = build_calibration_set(tiny_model, tmp_path / "r", CalibrationSpec(count=n), pairs=stsb_validation, progress=False)
    assert np.bincount(np.minimum(np.array([s["pair_score"] for s in rnd.manifest["samples"]]).astype(int), 4), minlength=5).std() > per_bin.std()


def test_never_overwrites_and_interrupt_leaves_nothing(tiny_model, stsb_validation, tmp_path, monkeypatch):
    out = tmp_path / "calib"
    build_calibration_set(tiny_model, out, CalibrationSpec(count=4), pairs=stsb_validation, progress=False)
    with pytest.raises(BertnpuError, match="already exists; pass --force"):
        build_calibration_set(tiny_model, out, CalibrationSpec(count=4), pairs=stsb_validation, progress=False)
    before = _digest(out)
    calls = {"n": 0}
    real_save = np.save

    def flaky_save(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_save(*args, **kwargs)

    monkeypatch.setattr(np, "save", flaky_save)
    with pytest.raises(KeyboardInterrupt):
        build_calibration_set(tiny_model, out, CalibrationSpec(count=8), pairs=stsb_validation, force=True, progress=False)
    calls["n"] = 0
    with pytest.raises(KeyboardInterrupt):
        build_calibration_set(tiny_model, tmp_path / "fresh", CalibrationSpec(count=8), pairs=stsb_validation, progress=False)
    assert _digest(out) == before  # the old set is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["calib"]  # no half-built set, no temp folder


def test_load_from_list_file(tiny_model, stsb_validation, tmp_path):
    build_calibration_set(tiny_model, tmp_path / "c", CalibrationSpec(count=5), pairs=stsb_validation, progress=False)
    a = load_calibration_set(tmp_path / "c", tiny_model)
    b = load_calibration_set(tmp_path / "c" / "npy_files.txt", tiny_model)
    assert len(a) == len(b) == 5 and all(np.array_equal(x, y) for x, y in zip(a.arrays, b.arrays))


@pytest.mark.parametrize("array,needle", [
    (np.zeros((1, 4, 36), np.float64), "dtype float64"),
    (np.zeros((4, 36), np.float32), "expected \\[1, seq_len, hidden\\]"),
    (np.zeros((1, 4, 40), np.float32), "hidden size 40, but the model's is 36"),
    (np.full((1, 4, 36), np.nan, np.float32), "NaN or inf"),
])
def test_load_rejects_bad_files(tiny_model, tmp_path, array, needle):
    np.save(tmp_path / "x.npy", array)
    with pytest.raises(BertnpuError, match=needle):
        load_calibration_set(tmp_path, tiny_model)


def test_load_rejects_empty_and_missing(tmp_path):
    with pytest.raises(BertnpuError, match="holds no .npy files"):
        load_calibration_set(tmp_path)
    with pytest.raises(BertnpuError, match="does not exist"):
        load_calibration_set(tmp_path / "nope")


def test_load_rejects_other_model(tiny_model, stsb_validation, tmp_path):
    from conftest import build_tiny_bert

    build_calibration_set(tiny_model, tmp_path / "c", CalibrationSpec(count=3), pairs=stsb_validation, progress=False)
    other = load_model(str(build_tiny_bert(tmp_path / "other", seed=1)))  # same sizes, other weights
    with pytest.raises(BertnpuError, match="other embedding weights"):
        load_calibration_set(tmp_path / "c", other)


@pytest.mark.parametrize("kwargs,needle", [
    ({"count": 0}, "count 0"), ({"strategy": "kmeans"}, "Unknown calibration strategy 'kmeans'"),
    ({"column": "s3"}, "Unknown column 's3'"), ({"split": "dev"}, "Unknown split 'dev'"),
])
def test_spec_validation(kwargs, needle):
    with pytest.raises(BertnpuError, match=needle):
        CalibrationSpec(**kwargs)


def test_too_many_samples(tiny_model, stsb_validation, tmp_path):
    with pytest.raises(BertnpuError, match="exceeds the .* unique sentences"):
        build_calibration_set(tiny_model, tmp_path / "c", CalibrationSpec(count=5000), pairs=stsb_validation, progress=False)


def test_cli_calib(tiny_model_dir, stsb_dir, tmp_path, capsys):
    out = tmp_path / "calib"
    rc = main(["calib", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--out", str(out), "--count", "12", "--max-length", "9"])
    assert rc == 0 and len(list(out.glob("*.npy"))) == 12
    assert max(np.load(f).shape[1] for f in out.glob("*.npy")) <= 9
    assert main(["calib", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--out", str(out), "--count", "12"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_identical_inputs_identical_files_in_any_folder(tiny_model, stsb_validation, tmp_path):
    spec = CalibrationSpec(count=16, seed=3, strategy="length-stratified")
    a = tmp_path / "a" / "calib"
    b = tmp_path / "b" / "calib"
    for out in (a, b):
        build_calibration_set(tiny_model, out, spec, pairs=stsb_validation, progress=False)
    da, db = _digest(a), _digest(b)
    assert da.pop("npy_files.txt") != db.pop("npy_files.txt")  # absolute paths, as qbcompiler reads them
    assert da == db and len(da) == 17  # 16 arrays + manifest, byte for byte
    assert (a / "npy_files.txt").read_text().replace(str(a.resolve()), "X") == (b / "npy_files.txt").read_text().replace(str(b.resolve()), "X")


def test_values_beyond_the_layernorm_bound_are_refused(tiny_model, stsb_validation, tmp_path):
    from bertnpu.data.calibration import embedding_bound

    out = tmp_path / "calib"
    cs = build_calibration_set(tiny_model, out, CalibrationSpec(count=8), pairs=stsb_validation, progress=False)
    ln = tiny_model.bert.embeddings.LayerNorm
    bound = float((36 - 1) ** 0.5 * ln.weight.detach().abs().max() + ln.bias.detach().abs().max())
    assert embedding_bound(tiny_model) == pytest.approx(bound)
    assert max(float(np.abs(x).max()) for x in cs.arrays) <= bound  # real LayerNorm outputs stay inside
    a = np.load(out / "calib_00002.npy")
    a[0, 0, 0] = 2 * bound
    np.save(out / "calib_00002.npy", a)
    with pytest.raises(BertnpuError, match="calib_00002.npy.*beyond the .* a LayerNorm output"):
        load_calibration_set(out, tiny_model)


def test_calib_sampling_option_and_its_deprecated_spelling(tiny_model_dir, stsb_dir, tmp_path, capsys):
    """`calib --sampling` draws the samples; the old `--strategy` (also the sweep's search strategy) still works, with one warning line."""
    import json

    from bertnpu.cli import main

    base = ["calib", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--count", "6"]
    assert main(base + ["--out", str(tmp_path / "new"), "--sampling", "length-stratified"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert main(base + ["--out", str(tmp_path / "old"), "--strategy", "length-stratified"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("bertnpu:")]
    assert err == ["bertnpu: warning: calib --strategy is deprecated (sweep's --strategy is its search strategy); use --sampling."]
    manifests = [json.loads((tmp_path / name / "manifest.json").read_text()) for name in ("new", "old")]
    assert manifests[0] == manifests[1] and "length-stratified" in json.dumps(manifests[0])
    assert main(base + ["--out", str(tmp_path / "both"), "--sampling", "random", "--strategy", "score-stratified"]) == 2
