"""The compile bundle: carries the recipe, says it in words, refuses a site the model lacks (its script: test_compile_mxq.py)."""

import json

import pytest

from bertnpu.data.calibration import CalibrationSpec, build_calibration_set
from bertnpu.device.bundle import CPU_IMAGE, CUDA_IMAGE, write_compile_bundle
from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import EquivalentTransformations, Recipe
from bertnpu.quant.sites import list_sites

CONFIG = QuantConfig(method=3, output=1, mode=1, percentile=0.9995, topk_ratio=0.02)
SITES = ("layer.1.ffn.residual", "layer.2.attention.scores")
RECIPE = Recipe(calibration=CONFIG, activation_16bits=SITES, equivalent_transformation=EquivalentTransformations(vo=True),
                prediction={"spearman": {"aries": 0.8123, "all-int8": 0.7011}})


@pytest.fixture(scope="module")
def calib(tiny_model, stsb_validation, tmp_path_factory):
    return build_calibration_set(tiny_model, tmp_path_factory.mktemp("c") / "calib", CalibrationSpec(count=10), pairs=stsb_validation, progress=False)


def test_bundle_carries_the_recipe_and_says_it_in_words(tiny_model, calib, tmp_path):
    bundle = write_compile_bundle(tiny_model, calib, RECIPE, tmp_path / "bundle")
    assert {p.name for p in bundle.iterdir()} == {"model", "calib", "recipe.json", "quant_config.json", "sites.json", "weight_dict.pth",
                                                  "compile_mxq.py", "mblt_map.py", "README.md", "bundle.json"}
    assert Recipe.load(bundle / "recipe.json") == RECIPE
    assert QuantConfig.load(bundle / "quant_config.json") == CONFIG
    assert json.loads((bundle / "sites.json").read_text()) == [s.name for s in list_sites(tiny_model)]
    assert json.loads((bundle / "bundle.json").read_text())["output"]["returns"] == "last_hidden_state"
    readme = (bundle / "README.md").read_text()
    assert CPU_IMAGE in readme and CUDA_IMAGE in readme and "--gpus=all" in readme
    assert CONFIG.label() in readme and "percentile 0.9995, topk_ratio 0.02" in readme
    assert "`layer.1.ffn.residual`" in readme and "`layer.2.attention.scores`" in readme
    assert "Vo: rotate value and attention-output weights" in readme and "Qk:" not in readme
    assert "- spearman (aries): 0.8123" in readme and "- spearman (all-int8): 0.7011" in readme
    assert "profile `aries`" in readme
    assert "[1, seq_len, 36]" in readme and "mean-pools" in readme and "qbcompiler 1.1+" in readme


def test_bundle_refuses_a_site_the_model_lacks(tiny_model, calib, tmp_path):
    with pytest.raises(BertnpuError, match=r"Unknown site\(s\) layer\.5\.ffn\.residual"):
        write_compile_bundle(tiny_model, calib, Recipe(activation_16bits=("layer.5.ffn.residual",)), tmp_path / "b")
    assert not (tmp_path / "b").exists() and list(tmp_path.iterdir()) == []


def test_docker_command_names_the_image_of_the_recipes_release_and_the_missing_target_device():
    from bertnpu.device.bundle import docker_command
    from bertnpu.quant.recipe import Recipe

    cpu = docker_command(Recipe())
    assert "mobilint/qbcompiler:1.3-cpu-ubuntu22.04" in cpu and cpu.endswith('compile_mxq.py --target-device DEVICE"') and "--gpus" not in cpu
    gpu = docker_command(Recipe(target_device="regulus-rb", qbcompiler_version="1.2"), cuda=True)
    assert "mobilint/qbcompiler:1.2-cuda12.8.1-ubuntu22.04" in gpu and "--gpus=all" in gpu and gpu.endswith('compile_mxq.py --device gpu"')
