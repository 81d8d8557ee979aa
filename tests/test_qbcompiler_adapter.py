"""Contract tests: what bertnpu passes to qbcompiler, checked against the test double of both API generations."""

import json

import numpy as np
import pytest

from bertnpu.cli import main
from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.device.compile_record import read_compile_record, record_path_for
from bertnpu.device.qbcompiler_adapter import MISSING, compile_mblt, compile_mxq
from bertnpu.errors import BertnpuError
from bertnpu.model.load import load_model
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from conftest import QBCOMPILER_DOUBLE, _calls, _forget_qbcompiler

DOUBLE = QBCOMPILER_DOUBLE


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.fixture(scope="module")
def calib(tiny_model, stsb_validation, tmp_path_factory):
    return build_calibration_set(tiny_model, tmp_path_factory.mktemp("c") / "calib", CalibrationSpec(count=12), pairs=stsb_validation, progress=False)


CONFIG = QuantConfig(method=3, output=1, mode=1, percentile=0.9995, topk_ratio=0.02)
SITES = ("layer.2.ffn.residual", "layer.0.attention.scores", "layer.1.attention.softmax.out", "layer.0.attention.key.out")
# the double's operator names for SITES (its graph names ops by torch module path; bertnpu never reads them)
OPERATORS = ["/encoder/layer.2/output/Add", "/encoder/layer.0/attention/self/MatMul", "/encoder/layer.1/attention/self/Softmax",
             "/encoder/layer.0/attention/self/key/Conv"]
RECIPE = Recipe(calibration=CONFIG, activation_16bits=SITES, equivalent_transformation=EquivalentTransformations(qk=True, norm_conv=True),
                target_device="aries2", prediction={"spearman": {"aries": 0.81}})


@pytest.mark.parametrize("qbcompiler_double", [1, 2], indirect=True)
def test_compile_passes_what_mobilint_documents(qbcompiler_double, tiny_model, calib, tmp_path):
    out = tmp_path / "tiny.mxq"
    log = []
    compile_mxq(tiny_model, calib.files[0].parent, CONFIG, out, log=log.append)
    (call,) = _calls(qbcompiler_double)  # no site at 16 bits: no mapping pass
    assert call["call"] == "mxq_compile" and call["backend"] == "torch" and call["model_class"] == "PoolingReadyBert"
    assert call["returns"] == "last_hidden_state"  # mean pooling needs the token states
    assert call["config"] == (CONFIG.legacy_kwargs() if call["generation"] == 1 else
                              {"method": 3, "output": 1, "mode": 1, "percentile": 0.9995, "topk_ratio": 0.02})
    if call["generation"] == 2:  # every transformation switch given explicitly, none on
        assert call["equivalent_transformation"] == {"norm_conv": False, "qk": False, "ud": False, "vo": False}
        assert "activation_16bits" not in call and call["target_device"] is None
    assert call["calib_data_path"] == str(calib.files[0].parent.resolve())
    assert call["calib_shapes"] == [list(a.shape) for a in calib.arrays] and call["calib_dtype"] == "float32"
    assert set(call["feed"]) == {"input_ids", "token_type_ids", "attention_mask"}
    for key, f in call["feed"].items():
        assert f["dynamic"] == [False, True]  # sequence length dynamic
        assert f["mask"] == ("padding_mask" if key == "attention_mask" else None)
    assert call["save_path"] != str(out) and call["save_path"].endswith(".mxq")  # temp name, then renamed
    record = read_compile_record(out)
    assert out.is_file() and record.recipe == Recipe(calibration=CONFIG) and record.operators == {}
    assert record.output.returns == "last_hidden_state" and record.output.shape_text == "[1, seq_len, 36]"
    assert any("compiling" in line for line in log)  # the compiler's log is streamed
    assert _leftovers(tmp_path) == []


def test_two_pass_compile_passes_the_exact_operator_names(qbcompiler_double, tiny_model, calib, tmp_path):
    out = tmp_path / "tiny.mxq"
    compile_mxq(tiny_model, calib.files[0].parent, RECIPE, out)
    mblt, mxq = _calls(qbcompiler_double)
    assert mblt["call"] == "mblt_compile" and mblt["cpu_offload"] is True and mblt["target_device"] == "aries2"
    assert mblt["model_class"] == "PoolingReadyBert" and mblt["feed"] == mxq["feed"]
    assert mxq["activation_16bits"] == OPERATORS
    assert mxq["bit_config_not_found"] == []  # the double would have skipped them silently, as qbcompiler does
    assert mxq["equivalent_transformation"] == {"norm_conv": True, "qk": True, "ud": False, "vo": False}
    assert mxq["target_device"] == "aries2"
    data = json.loads(record_path_for(out).read_text())
    # site names and operator names in two fields: the recipe's vocabulary and qbcompiler's, never one key for both
    assert data["sites_16bit"] == list(SITES) and data["operators_16bit"] == OPERATORS
    assert "activation_16bits" not in data["passed"] and "operators" not in data
    assert read_compile_record(out).operators == dict(zip(SITES, OPERATORS))
    assert Recipe.from_dict(data["recipe"]) == RECIPE and data["knobs_dropped"] == [] and data["qbcompiler_api"] == "1.1+"
    assert data["output"]["returns"] == "last_hidden_state"
    assert _leftovers(tmp_path) == []  # the temp .mblt and its folder are gone


def test_unmappable_site_stops_the_compile(qbcompiler_double, tiny_model, calib, tmp_path):
    # the tiny model has a pooler, but mean pooling compiles token states: the graph has no pooler
    recipe = Recipe(activation_16bits=("layer.1.ffn.residual", "pooler.dense.out", "embeddings.out"))
    out = tmp_path / "tiny.mxq"
    with pytest.raises(BertnpuError) as info:
        compile_mxq(tiny_model, calib.files[0].parent, recipe, out)
    msg = str(info.value)
    assert msg.startswith("Site(s) pooler.dense.out, embeddings.out map to no operator") and "\n" not in msg
    assert [c["call"] for c in _calls(qbcompiler_double)] == ["mblt_compile"]  # never compiled without them
    assert not out.exists() and not record_path_for(out).exists() and _leftovers(tmp_path) == []


def test_recipe_site_unknown_to_the_model(qbcompiler_double, tiny_model, calib, tmp_path):
    with pytest.raises(BertnpuError, match=r"^Unknown site\(s\) layer\.7\.ffn\.residual in the recipe's activation_16bits"):
        compile_mxq(tiny_model, calib.files[0].parent, Recipe(activation_16bits=("layer.7.ffn.residual",)), tmp_path / "m.mxq")
    assert _calls(qbcompiler_double) == [] and list(tmp_path.glob("m.mxq*")) == []


@pytest.mark.parametrize("qbcompiler_double", [1], indirect=True)
def test_older_generation_names_the_missing_knobs(qbcompiler_double, tiny_model, calib, tmp_path):
    out = tmp_path / "m.mxq"
    with pytest.raises(BertnpuError) as info:
        compile_mxq(tiny_model, calib.files[0].parent, RECIPE, out)
    msg = str(info.value)
    assert "(1.0.x API) lacks bit_config" in msg and "equivalent_transformation_config" in msg and "target_device" in msg
    assert "--allow-missing-knobs" in msg and _calls(qbcompiler_double) == [] and not out.exists()
    compile_mxq(tiny_model, calib.files[0].parent, RECIPE, out, allow_missing_knobs=True)
    (call,) = _calls(qbcompiler_double)
    assert "activation_16bits" not in call and "equivalent_transformation" not in call
    record = read_compile_record(out)
    assert record.knobs_dropped == ("bit_config", "equivalent_transformation_config", "target_device") and record.operators == {}
    assert record.qbcompiler_api == "1.0.x" and record.recipe == RECIPE


def test_pooler_pooling_compiles_the_pooler_output(qbcompiler_double, tiny_model_dir, calib, tmp_path):
    model = load_model(str(tiny_model_dir), pooling="pooler")
    out = tmp_path / "p.mxq"
    compile_mxq(model, calib.files[0].parent, Recipe(activation_16bits=("pooler.dense.out", "pooler.out")), out)
    mblt, mxq = _calls(qbcompiler_double)
    assert mblt["returns"] == mxq["returns"] == "pooler_output"
    assert mxq["activation_16bits"] == ["/pooler/dense/Conv", "/pooler/activation/Tanh"]
    record = read_compile_record(out)
    assert record.output.returns == "pooler_output" and record.output.shape_text == "[1, 36]"


def test_calibration_listing_works_from_another_directory(qbcompiler_double, tiny_model, calib, tmp_path, monkeypatch):
    listing = tmp_path / "list" / "npy_files.txt"
    listing.parent.mkdir()
    for i, f in enumerate(calib.files):
        (listing.parent / f"s{i}.npy").write_bytes(f.read_bytes())
    listing.write_text("".join(f"s{i}.npy\n" for i in range(len(calib.files))))  # relative to the listing's folder
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    import qbcompiler

    with pytest.raises(FileNotFoundError):  # the double opens listed paths as given, against the working directory
        qbcompiler._calib_files(listing)
    compile_mxq(tiny_model, listing, CONFIG, tmp_path / "m.mxq")
    (call,) = _calls(qbcompiler_double)
    assert call["calib_shapes"] == [list(a.shape) for a in calib.arrays]
    assert _leftovers(tmp_path) == []


def test_never_overwrites_an_mxq(qbcompiler_double, tiny_model, calib, tmp_path):
    out = tmp_path / "m.mxq"
    out.write_bytes(b"previous")
    with pytest.raises(BertnpuError, match="already exists; pass --force"):
        compile_mxq(tiny_model, calib.files[0].parent, CONFIG, out)
    assert out.read_bytes() == b"previous" and not qbcompiler_double.exists() and not record_path_for(out).exists()
    compile_mxq(tiny_model, calib.files[0].parent, CONFIG, out, force=True)
    assert out.read_bytes() != b"previous" and record_path_for(out).is_file()


def test_mblt(qbcompiler_double, tiny_model, tmp_path):
    compile_mblt(tiny_model, tmp_path / "m.mblt")
    (call,) = _calls(qbcompiler_double)
    assert call["call"] == "mblt_compile" and call["cpu_offload"] is True and call["backend"] == "torch"
    assert call["model_class"] == "PoolingReadyBert"


def test_without_qbcompiler_one_sentence(tiny_model_dir, calib, tmp_path, capsys):
    _forget_qbcompiler()
    assert main(["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--out", str(tmp_path / "m.mxq")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"bertnpu: error: {MISSING}" and "--bundle" in err


def test_cli_bundle(tiny_model_dir, calib, tmp_path, capsys):
    cfg = CONFIG.save(tmp_path / "cfg.json")
    out = tmp_path / "bundle"
    recipe = RECIPE.save(tmp_path / "recipe.json")
    assert main(["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--recipe", str(recipe), "--bundle", str(out)]) == 0
    assert Recipe.load(out / "recipe.json") == RECIPE and "`layer.0.attention.key.out`" in (out / "README.md").read_text()
    assert json.loads((out / "quant_config.json").read_text())["percentile"] == 0.9995
    assert main(["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--config", str(cfg), "--bundle", str(out), "--force"]) == 0
    assert Recipe.load(out / "recipe.json") == Recipe(calibration=CONFIG)
    lines = (out / "calib" / "npy_files.txt").read_text().split()
    assert len(lines) == 12 and all((out / "calib" / n).is_file() for n in lines)
    assert np.array_equal(np.load(out / "calib" / lines[0]), calib.arrays[0])
    assert main(["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--bundle", str(out)]) == 2


def test_cli_compile_recipe(qbcompiler_double, tiny_model_dir, calib, tmp_path, capsys):
    recipe = RECIPE.save(tmp_path / "recipe.json")
    out = tmp_path / "m.mxq"
    base = ["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--out", str(out)]
    assert main(base + ["--recipe", str(recipe)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out} and {out}.recipe.json" in printed and "layer.2.ffn.residual -> operator /encoder/layer.2/output/Add" in printed
    assert _calls(qbcompiler_double)[-1]["activation_16bits"] == OPERATORS
    bad = Recipe(activation_16bits=("layer.3.ffn.residual",)).save(tmp_path / "bad.json")  # the tiny model has 3 layers: 0-2
    assert main(base + ["--recipe", str(bad), "--force"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bertnpu: error: Unknown site(s) layer.3.ffn.residual") and "\n" not in err
    assert main(base + ["--recipe", str(recipe), "--config", str(recipe)]) == 2


@pytest.mark.parametrize("qbcompiler_double", [1], indirect=True)
def test_cli_compile_missing_knobs(qbcompiler_double, tiny_model_dir, calib, tmp_path, capsys):
    recipe = RECIPE.save(tmp_path / "recipe.json")
    out = tmp_path / "m.mxq"
    base = ["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--out", str(out), "--recipe", str(recipe)]
    assert main(base) == 2 and not out.exists()
    assert "lacks bit_config" in capsys.readouterr().err
    assert main(base + ["--allow-missing-knobs"]) == 0 and out.is_file()
    assert "compiled WITHOUT bit_config, equivalent_transformation_config, target_device" in capsys.readouterr().err


@pytest.mark.parametrize("qbcompiler_double", [3], indirect=True)
def test_qbcompiler_1_3_by_keyword_with_a_target_device(qbcompiler_double, tiny_model, calib, tmp_path):
    recipe = RECIPE.with_(target_device="aries-rb")
    out = tmp_path / "tiny.mxq"
    compile_mxq(tiny_model, calib.files[0].parent, recipe, out)
    mblt, mxq = _calls(qbcompiler_double)  # the 1.3 double takes positionals in its new order: keywords are what made this work
    assert mblt["target_device"] == mxq["target_device"] == "aries-rb" and mxq["generation"] == 3
    assert mxq["activation_16bits"] == OPERATORS and mxq["bit_config_not_found"] == []
    for key, f in mxq["feed"].items():  # wrap_tensor/set_attention_mask found under model_dict_legacy
        assert f["dynamic"] == [False, True] and f["mask"] == ("padding_mask" if key == "attention_mask" else None)
    record = read_compile_record(out)
    assert record.qbcompiler_api == "1.3" and record.qbcompiler_version == "1.3.0" and record.passed["target_device"] == "aries-rb"
    compile_mxq(tiny_model, calib.files[0].parent, recipe, out, force=True, target_device="regulus-rb")  # the override wins
    assert _calls(qbcompiler_double)[-1]["target_device"] == "regulus-rb"


@pytest.mark.parametrize("qbcompiler_double", [3], indirect=True)
def test_qbcompiler_1_3_refuses_a_missing_or_unknown_target_or_another_release(qbcompiler_double, tiny_model, calib, tmp_path):
    out = tmp_path / "m.mxq"
    allowed = "aries-rb, regulus-ra, regulus-rb, regulus-rb-usb"
    with pytest.raises(BertnpuError) as info:
        compile_mxq(tiny_model, calib.files[0].parent, CONFIG, out)  # an old recipe: no target_device
    assert str(info.value) == f"qbcompiler 1.3 needs a target_device: set \"target_device\" in the recipe or pass --target-device, one of {allowed}."
    with pytest.raises(BertnpuError, match=rf"target_device 'aries2' \(from the recipe\) is unknown to qbcompiler 1.3; use one of {allowed}\."):
        compile_mxq(tiny_model, calib.files[0].parent, RECIPE, out)
    with pytest.raises(BertnpuError, match=rf"^target_device 'aries9' is unknown; use one of {allowed}\.$"):
        compile_mxq(tiny_model, calib.files[0].parent, RECIPE, out, target_device="aries9")
    old = Recipe(calibration=CONFIG, target_device="aries-rb", qbcompiler_version="1.2")
    with pytest.raises(BertnpuError, match=r"made for qbcompiler 1.2, but the installed one is 1.3.0; compile inside mobilint/qbcompiler:1.2-cpu-ubuntu22.04"):
        compile_mxq(tiny_model, calib.files[0].parent, old, out)
    assert _calls(qbcompiler_double) == [] and list(tmp_path.glob("m.mxq*")) == []


@pytest.mark.parametrize("qbcompiler_double", [2], indirect=True)
def test_cli_target_device_and_raw_operators(qbcompiler_double, tiny_model_dir, calib, tmp_path, capsys):
    out = tmp_path / "m.mxq"
    base = ["compile", "--model", str(tiny_model_dir), "--calib", str(calib.files[0].parent), "--out", str(out)]
    assert main(base + ["--target-device", "aries9"]) == 2
    assert capsys.readouterr().err.strip() == ("bertnpu: error: target_device 'aries9' is unknown; use one of aries-rb, regulus-ra, "
                                               "regulus-rb, regulus-rb-usb.") and not out.exists()
    raw = Recipe(activation_16bits=("layer.0.attention.scores",), activation_16bits_operators=("/encoder/layer.1/output/Add",))
    assert main(base + ["--recipe", str(raw.save(tmp_path / "raw.json")), "--target-device", "regulus-ra"]) == 0
    call = _calls(qbcompiler_double)[-1]
    assert call["activation_16bits"] == ["/encoder/layer.0/attention/self/MatMul", "/encoder/layer.1/output/Add"]
    record = read_compile_record(out)  # the raw operator has no site: it follows the sites' operators
    assert record.sites_16bit == ("layer.0.attention.scores",) and record.operators_16bit == tuple(call["activation_16bits"])
    assert record.operators == {"layer.0.attention.scores": "/encoder/layer.0/attention/self/MatMul"}
    printed = capsys.readouterr().out
    assert "16-bit: layer.0.attention.scores -> operator /encoder/layer.0/attention/self/MatMul" in printed
    assert "16-bit: operator /encoder/layer.1/output/Add (from the recipe's activation_16bits_operators)" in printed
    assert call["target_device"] == "regulus-ra" and call["bit_config_not_found"] == []
    wrong = Recipe(activation_16bits_operators=("/encoder/layer.1/output/Addd",))
    assert main(base + ["--recipe", str(wrong.save(tmp_path / "wrong.json")), "--force"]) == 2
    err = capsys.readouterr().err
    assert "Operator(s) /encoder/layer.1/output/Addd in the recipe's activation_16bits_operators are not in the compiled MBLT graph" in err
    assert "bertnpu mblt-ops FILE.mblt" in err
