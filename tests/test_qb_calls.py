"""The one description of bertnpu's qbcompiler calls (bertnpu/device/qb_calls.py): versions, tags, target devices, helper layouts."""

import types

import pytest

from bertnpu.device import qb_calls
from bertnpu.errors import BertnpuError


def test_versions_and_docker_tags():
    assert [qb_calls.major_minor(v) for v in ("1.3.0", "v1.2.1rc1", "", None)] == ["1.3", "1.2", "", ""]
    assert qb_calls.docker_images("1.3.0") == ("mobilint/qbcompiler:1.3-cpu-ubuntu22.04", "mobilint/qbcompiler:1.3-cuda12.8.1-ubuntu22.04")
    assert qb_calls.docker_images(None)[0] == f"mobilint/qbcompiler:{qb_calls.CURRENT_VERSION}-cpu-ubuntu22.04"
    new = types.SimpleNamespace(__version__="1.3.0", CalibrationConfig=object)
    mid = types.SimpleNamespace(__version__="1.2.0", CalibrationConfig=object)
    old = types.SimpleNamespace(QuantizationConfig=object)
    assert [qb_calls.api_generation(q) for q in (new, mid, old)] == [3, 2, 1]
    qb_calls.check_version("1.3", new)
    with pytest.raises(BertnpuError, match=r"^The recipe was made for qbcompiler 1.2, but the installed one is 1.3.0"):
        qb_calls.check_version("1.2", new)


def test_target_device_rules():
    assert qb_calls.resolve_target_device(2, None) is None and qb_calls.resolve_target_device(2, "aries2") == "aries2"  # older material
    assert qb_calls.resolve_target_device(3, "aries-rb", "regulus-rb-usb") == "regulus-rb-usb"
    for generation, recipe_value in ((3, None), (3, "aries2")):
        with pytest.raises(BertnpuError, match="aries-rb, regulus-ra, regulus-rb, regulus-rb-usb"):
            qb_calls.resolve_target_device(generation, recipe_value)


def test_feed_helpers_under_either_layout_or_one_sentence():
    def wrap(name, value):
        return (name, value)

    modules = {"qbcompiler.model_dict_legacy.parser.backend.torch.util": types.SimpleNamespace(wrap_tensor=wrap),
               "qbcompiler.model_dict_legacy.parser.backend.torch.object_wrapper": types.SimpleNamespace(set_attention_mask=print)}

    def only_legacy(path):
        if path not in modules:
            raise ImportError(path)
        return modules[path]

    assert qb_calls.feed_helpers(only_legacy) == (wrap, print)

    def nothing(path):
        raise ImportError(path)

    with pytest.raises(BertnpuError) as info:
        qb_calls.feed_helpers(nothing)
    assert "neither under qbcompiler.model_dict.parser (1.0-1.2) nor under qbcompiler.model_dict_legacy.parser (1.3)" in str(info.value)
    assert "\n" not in str(info.value)
