"""`bertnpu doctor`: exit 0 and one screen, with the real qbruntime (no NPU here), the double, and no runtime at all."""

import json
import sys
from importlib import metadata

import pytest

from bertnpu.cli import main
from bertnpu.quant.recipe import Recipe
from test_preflight import real_qbruntime, runtime_double  # noqa: F401  (fixtures)


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_doctor_with_the_real_runtime(real_qbruntime, stsb_dir, capfd):  # noqa: F811
    assert main(["doctor", "--stsb-dir", str(stsb_dir)]) == 0
    out, err = capfd.readouterr()
    installed = metadata.version("mobilint-qb-runtime")  # the wheel's release (1.5.0 here); its module says "v1.5.0"
    assert f"qbruntime     {installed}; NPUs detected: none" in out and err == ""  # native lines captured
    assert f"torch         {metadata.version('torch')}" in out and f"transformers  {metadata.version('transformers')}" in out
    assert f"STS-B         found: {stsb_dir}" in out
    assert main(["doctor", "--json", "--stsb-dir", str(stsb_dir)]) == 0
    report = json.loads(capfd.readouterr().out.strip().splitlines()[-1])
    assert report["qbruntime"]["devices"] == [] and report["qbruntime"]["test_double"] is False
    rt = report["qbruntime"]
    assert rt["version"] == installed and rt["version_source"] == "package metadata (mobilint-qb-runtime)"
    assert rt["version_reported"] == real_qbruntime.__version__ and rt["module"] == real_qbruntime.__file__
    assert rt["version_reported"].removeprefix("v") == installed  # the module and the package agree on the release
    assert report["packages"]["qbruntime"] == installed
    assert report["python"].startswith(".".join(map(str, sys.version_info[:3])))


def test_doctor_with_the_double_and_without_a_runtime(runtime_double, tmp_path, capsys, monkeypatch):  # noqa: F811
    assert main(["doctor", "--stsb-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "qbruntime     v1.5.0-double (bertnpu TEST DOUBLE); NPUs detected: aries-rb" in out
    assert main(["doctor", "--json", "--stsb-dir", str(tmp_path)]) == 0
    rt = _json(capsys)["qbruntime"]  # the double is not the installed package: its version is what it says, and the report says so
    assert rt["version"] == rt["version_reported"] == "v1.5.0-double" and rt["version_source"].startswith("qbruntime.__version__ (")
    assert f"STS-B         not found: {tmp_path} lacks sts-*.csv" in out
    monkeypatch.setitem(sys.modules, "qbruntime", None)  # import fails
    monkeypatch.setitem(sys.modules, "qbcompiler", None)
    recipe = Recipe(qbcompiler_version="1.2").save(tmp_path / "r.json")
    assert main(["doctor", "--json", "--recipe", str(recipe)]) == 0
    report = _json(capsys)
    assert report["qbruntime"] == {"installed": False, "fix": "pip install 'bertnpu[npu]' (mobilint-qb-runtime, CPython 3.11 wheel)"}
    assert report["qbcompiler"]["installed"] is False and report["qbcompiler"]["docker_cpu"] == "mobilint/qbcompiler:1.2-cpu-ubuntu22.04"


@pytest.mark.parametrize("qbcompiler_double", [3], indirect=True)
def test_doctor_names_a_compiler_release_mismatch(qbcompiler_double, tmp_path, capsys):
    recipe = Recipe(qbcompiler_version="1.2").save(tmp_path / "r.json")
    assert main(["doctor", "--recipe", str(recipe)]) == 0
    out = capsys.readouterr().out
    assert "qbcompiler    1.3.0 (1.3 API) (bertnpu TEST DOUBLE); recipes for 1.2 need mobilint/qbcompiler:1.2-cpu-ubuntu22.04" in out


def test_doctor_names_a_module_that_says_another_release(real_qbruntime):  # noqa: F811
    from bertnpu.device.doctor import doctor_report, format_doctor

    report = doctor_report()
    assert "(the module says" not in format_doctor(report)  # "v1.5.0" from the 1.5.0 wheel is the same release
    report["qbruntime"]["version_reported"] = "v1.4.2"
    assert f"qbruntime     {report['qbruntime']['version']} (the module says v1.4.2); NPUs detected: none" in format_doctor(report)
