"""One description of bertnpu's qbcompiler calls, for every release: the adapter imports it, and the compile bundle's
``compile_mxq.py`` is generated with this file's text inside it, so the package and the script cannot drift apart.

Standalone on purpose (no bertnpu import but the error type, no ``from __future__``): it runs inside Mobilint's
image. Facts (``mobilint_sdk_facts.md``, "Current releases" and "Two generations"): 1.0.x takes
``QuantizationConfig.from_kwargs``; 1.1+ ``CalibrationConfig``, ``BitConfig``, ``EquivalentTransformationConfig``
and ``target_device``; 1.3 reordered ``mblt_compile``'s positional arguments (so every argument goes by
keyword here), effectively requires ``target_device`` (values seen: aries-rb, regulus-ra, regulus-rb,
regulus-rb-usb), and moved the tutorial's parser to ``model_dict_legacy``. Where ``wrap_tensor`` /
``set_attention_mask`` / ``load_mblt_model`` live in 1.3 is not published: both layouts are tried.
"""

import importlib
import re

try:
    from ..errors import BertnpuError as QbCallError
except ImportError:  # inside a compile bundle's script, where bertnpu is not installed
    QbCallError = ValueError

TARGET_DEVICES = ("aries-rb", "regulus-ra", "regulus-rb", "regulus-rb-usb")
CURRENT_VERSION = "1.3"  # the release a recipe without qbcompiler_version is compiled for
API_LABELS = {1: "1.0.x", 2: "1.1+", 3: "1.3"}
# (module of wrap_tensor, module of set_attention_mask): the tutorial's layout (1.0-1.2), then 1.3's legacy parser
FEED_HELPERS = (
    ("qbcompiler.model_dict.parser.backend.torch.util", "qbcompiler.model_dict.parser.backend.torch.object_wrapper"),
    ("qbcompiler.model_dict_legacy.parser.backend.torch.util", "qbcompiler.model_dict_legacy.parser.backend.torch.object_wrapper"),
)
MBLT_READERS = ("qbcompiler.model_dict.serialize", "qbcompiler.model_dict_legacy.serialize")
KNOB_WHAT = {"bit_config": "16-bit activations per operator (BitConfig)",
             "equivalent_transformation_config": "equivalent transformations (EquivalentTransformationConfig)",
             "target_device": "target_device"}


def major_minor(version):
    """``"1.3"`` from ``"1.3.0"`` / ``"v1.3.0rc1"``; ``""`` when there is no version."""
    found = re.match(r"v?(\d+)\.(\d+)", str(version or "").strip())
    return f"{found.group(1)}.{found.group(2)}" if found else ""


def docker_images(version):
    """Mobilint's CPU and CUDA image tags of the release ``version`` (its major.minor)."""
    tag = major_minor(version) or CURRENT_VERSION
    return f"mobilint/qbcompiler:{tag}-cpu-ubuntu22.04", f"mobilint/qbcompiler:{tag}-cuda12.8.1-ubuntu22.04"


def installed_version(qb):
    return str(getattr(qb, "__version__", "") or "")


def api_generation(qb):
    """3 for qbcompiler 1.3+, 2 for 1.1/1.2 (``CalibrationConfig``), 1 for 1.0.x (``QuantizationConfig.from_kwargs``)."""
    mm = major_minor(installed_version(qb))
    if hasattr(qb, "CalibrationConfig"):
        newer = mm and tuple(int(x) for x in mm.split(".")) >= (1, 3)
        return 3 if newer or hasattr(qb, "mxq_compile_from_mblt") else 2
    if hasattr(qb, "QuantizationConfig"):
        return 1
    raise QbCallError("The installed qbcompiler has neither CalibrationConfig nor QuantizationConfig; install qbcompiler 1.0 or newer.")


def check_version(wanted, qb):
    """One sentence when the recipe names a compiler release other than the installed one (major.minor)."""
    have = major_minor(installed_version(qb))
    want = major_minor(wanted)
    if want and have and want != have:
        raise QbCallError(f"The recipe was made for qbcompiler {want}, but the installed one is {installed_version(qb)}; compile inside "
                          f"{docker_images(want)[0]} (or set qbcompiler_version to {have} in the recipe after checking it).")


def resolve_target_device(generation, from_recipe, override=None):
    """The ``target_device`` to pass: ``override`` (``--target-device``) or the recipe's; refused in one sentence where 1.3
    needs one and it is missing or unknown. Older releases get the recipe's value as it is (``aries2`` was seen there)."""
    allowed = ", ".join(TARGET_DEVICES)
    if override is not None and override not in TARGET_DEVICES:
        raise QbCallError(f"target_device {override!r} is unknown; use one of {allowed}.")
    value = override or from_recipe
    if generation >= 3:
        if not value:
            raise QbCallError(f"qbcompiler 1.3 needs a target_device: set \"target_device\" in the recipe or pass --target-device, one of {allowed}.")
        if value not in TARGET_DEVICES:
            raise QbCallError(f"target_device {value!r} (from the recipe) is unknown to qbcompiler 1.3; use one of {allowed}.")
    return value or None


def _first_module(paths, import_module):
    for path in paths:
        try:
            return import_module(path)
        except ImportError:
            continue
    return None


def feed_helpers(import_module=importlib.import_module):
    """``(wrap_tensor, set_attention_mask)`` from the 1.0-1.2 layout or 1.3's ``model_dict_legacy``."""
    for util_path, wrapper_path in FEED_HELPERS:
        util = _first_module([util_path], import_module)
        wrapper = _first_module([wrapper_path], import_module)
        if util is not None and wrapper is not None and hasattr(util, "wrap_tensor") and hasattr(wrapper, "set_attention_mask"):
            return util.wrap_tensor, wrapper.set_attention_mask
    raise QbCallError("The installed qbcompiler has wrap_tensor/set_attention_mask neither under qbcompiler.model_dict.parser (1.0-1.2) "
                      "nor under qbcompiler.model_dict_legacy.parser (1.3); compile inside a Mobilint qbcompiler image of 1.0 to 1.3.")


def mblt_reader(import_module=importlib.import_module):
    """``load_mblt_model`` from either layout, or None when the installed qbcompiler has neither."""
    module = _first_module(MBLT_READERS, import_module)
    return getattr(module, "load_mblt_model", None) if module is not None else None


def build_feed(tokenized, import_module=importlib.import_module):
    """Wrapped tensors of the tokenizer's output (a dict of ``[1, seq]`` tensors), sequence dimension dynamic, mask marked."""
    wrap_tensor, set_attention_mask = feed_helpers(import_module)
    feed = {}
    for key, value in tokenized.items():
        wrapped = wrap_tensor(key, value)
        wrapped.src_shape[1].set_dynamic()
        feed[key] = wrapped
    set_attention_mask(feed["attention_mask"], "padding_mask")
    return feed


def needed_knobs(recipe):
    """The ``mxq_compile`` keywords beyond the calibration config that a recipe (its JSON dict) needs."""
    knobs = []
    if recipe.get("activation_16bits") or recipe.get("activation_16bits_operators"):
        knobs.append("bit_config")
    if any(recipe.get("equivalent_transformation", {}).values()):
        knobs.append("equivalent_transformation_config")
    if recipe.get("target_device"):
        knobs.append("target_device")
    return knobs


def supported_knobs(qb, import_module=importlib.import_module):
    """Knobs the installed qbcompiler has: BitConfig needs the parsed-graph reader too (to find operator names)."""
    have = set()
    if hasattr(qb, "BitConfig") and mblt_reader(import_module) is not None:
        have.add("bit_config")
    if hasattr(qb, "EquivalentTransformationConfig"):
        have.add("equivalent_transformation_config")
    if api_generation(qb) >= 2:  # documented for mblt_compile/mxq_compile of 1.1+ only
        have.add("target_device")
    return have


def missing_knobs_sentence(qb, missing, what="the recipe"):
    return (f"The installed qbcompiler ({API_LABELS[api_generation(qb)]} API) lacks "
            f"{', '.join(f'{k} ({KNOB_WHAT[k]})' for k in missing)}, which {what} uses; "
            "install qbcompiler 1.1 or newer, or pass --allow-missing-knobs to compile without them.")


def calibration_kwargs(qb, cfg):
    """The keyword carrying the calibration config (``cfg``: method, output, mode, percentile, topk_ratio)."""
    if api_generation(qb) >= 2:
        cc = qb.CalibrationConfig
        return {"calibration_config": cc(method=cfg["method"], output=cfg["output"], mode=cfg["mode"],
                                         max_percentile=cc.MaxPercentile(percentile=cfg["percentile"], topk_ratio=cfg["topk_ratio"]))}
    return {"quantization_config": qb.QuantizationConfig.from_kwargs(
        quantization_method=cfg["method"], quantization_output=cfg["output"], quantization_mode=cfg["mode"],
        percentile=cfg["percentile"], topk_ratio=cfg["topk_ratio"])}


def transformation_kwargs(qb, switches):
    """``equivalent_transformation_config`` with every switch (norm_conv, qk, vo, ud) on or off explicitly."""
    etc = qb.EquivalentTransformationConfig
    t = {k: bool(switches.get(k, False)) for k in ("norm_conv", "qk", "vo", "ud")}
    return {"equivalent_transformation_config": etc(norm_conv=etc.NormConv(apply=t["norm_conv"]), qk=etc.Qk(apply=t["qk"]),
                                                    vo=etc.Vo(apply=t["vo"]), ud=etc.Ud(apply=t["ud"]))}, t


def bit_kwargs(qb, operator_names):
    return {"bit_config": qb.BitConfig(layer_overrides=qb.BitConfig.LayerOverrides(activation_16bits=list(operator_names)))}


def target_kwargs(target_device):
    return {"target_device": target_device} if target_device else {}


def mblt_compile_kwargs(module, mblt_path, feed, target_device):
    """Every argument of ``mblt_compile`` by keyword (1.3 reordered the positional ones)."""
    return {"model": module, "mblt_save_path": str(mblt_path), "backend": "torch", "feed_dict": feed, "cpu_offload": True,
            **target_kwargs(target_device)}


def mxq_compile_kwargs(module, save_path, calib_path, feed, knobs, target_device, device=None):
    """Every argument of ``mxq_compile`` by keyword."""
    return {"model": module, "save_path": str(save_path), "calib_data_path": str(calib_path), "backend": "torch", "feed_dict": feed,
            **knobs, **target_kwargs(target_device), **({"device": device} if device else {})}


def check_operator_names(names, known):
    """Raw operator names (``activation_16bits_operators``) the graph lacks, in one sentence: qbcompiler would skip them silently."""
    unknown = [n for n in names if n not in set(known)]
    if unknown:
        raise QbCallError(f"Operator(s) {', '.join(unknown)} in the recipe's activation_16bits_operators are not in the compiled MBLT graph; "
                          "list its operators with `bertnpu mblt-ops FILE.mblt` and correct the names.")
