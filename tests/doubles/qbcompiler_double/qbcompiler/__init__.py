"""TEST DOUBLE of Mobilint's qbcompiler (see tests/doubles/README.md): records calls, quantizes nothing."""

import json
import os
from pathlib import Path

import numpy as np

from ._double_graph import graph_of, inner_bert

# 1: qbcompiler 1.0.x, 2: 1.1/1.2, 3: 1.3 (new parser; the tutorial's wrap_tensor/set_attention_mask under model_dict_legacy,
# target_device required, mblt_compile's positional order changed)
GENERATION = int(os.environ.get("QBCOMPILER_DOUBLE_GENERATION", "2"))
__version__ = {1: "1.0.1", 2: "1.2.0", 3: "1.3.0"}[GENERATION]
IS_TEST_DOUBLE = True
TARGET_DEVICES = ("aries-rb", "regulus-ra", "regulus-rb", "regulus-rb-usb")


def _record(entry):
    path = os.environ.get("QBCOMPILER_DOUBLE_RECORD")
    if path:
        with open(path, "a") as fh:
            fh.write(json.dumps(entry, sort_keys=True) + "\n")


if GENERATION == 1:
    class QuantizationConfig:
        def __init__(self, **kwargs):
            self.kwargs = kwargs

        @classmethod
        def from_kwargs(cls, *, quantization_method, quantization_output, quantization_mode, percentile, topk_ratio):
            return cls(quantization_method=quantization_method, quantization_output=quantization_output,
                       quantization_mode=quantization_mode, percentile=percentile, topk_ratio=topk_ratio)
else:
    class CalibrationConfig:
        class MaxPercentile:
            def __init__(self, *, percentile, topk_ratio):
                self.percentile, self.topk_ratio = percentile, topk_ratio

        def __init__(self, *, method, output, mode, max_percentile=None):
            if max_percentile is not None and not isinstance(max_percentile, CalibrationConfig.MaxPercentile):
                raise TypeError("max_percentile must be a CalibrationConfig.MaxPercentile")
            self.method, self.output, self.mode, self.max_percentile = method, output, mode, max_percentile

    class BitConfig:
        class LayerOverrides:
            def __init__(self, *, activation_16bits=(), weight_16bits=()):
                self.activation_16bits, self.weight_16bits = list(activation_16bits), list(weight_16bits)

        def __init__(self, *, layer_overrides=None):
            if layer_overrides is not None and not isinstance(layer_overrides, BitConfig.LayerOverrides):
                raise TypeError("layer_overrides must be a BitConfig.LayerOverrides")
            self.layer_overrides = layer_overrides

    class EquivalentTransformationConfig:
        class _Switch:
            def __init__(self, *, apply=False):
                self.apply = apply

        class NormConv(_Switch):
            pass

        class Qk(_Switch):
            pass

        class Ud(_Switch):
            pass

        class Vo(_Switch):
            pass

        class SpinR1(_Switch):
            pass

        class SpinR2(_Switch):
            pass

        def __init__(self, *, norm_conv=None, qk=None, ud=None, vo=None, spin_r1=None, spin_r2=None):
            given = {"norm_conv": (norm_conv, self.NormConv), "qk": (qk, self.Qk), "ud": (ud, self.Ud), "vo": (vo, self.Vo),
                     "spin_r1": (spin_r1, self.SpinR1), "spin_r2": (spin_r2, self.SpinR2)}
            for key, (value, kind) in given.items():
                if value is not None and not isinstance(value, kind):
                    raise TypeError(f"{key} must be EquivalentTransformationConfig.{kind.__name__}")
                setattr(self, key, value)


def _config_entry(quantization_config, calibration_config):
    if GENERATION == 1:
        if calibration_config is not None or quantization_config is None:
            raise TypeError("qbcompiler 1.0.x takes quantization_config=QuantizationConfig")
        return dict(quantization_config.kwargs)
    if quantization_config is not None or calibration_config is None:
        raise TypeError("qbcompiler 1.1+ takes calibration_config=CalibrationConfig")
    c = calibration_config
    return {"method": c.method, "output": c.output, "mode": c.mode,
            "percentile": c.max_percentile.percentile, "topk_ratio": c.max_percentile.topk_ratio}


def _feed_entry(feed_dict):
    from ._double_wrap import WrappedTensor

    for key, value in feed_dict.items():
        if not isinstance(value, WrappedTensor):
            raise TypeError(f"feed_dict[{key!r}] must come from wrap_tensor")
    return {k: {"shape": list(v.tensor.shape), "dynamic": [d.dynamic for d in v.src_shape], "mask": v.mask_kind} for k, v in feed_dict.items()}


def _calib_files(calib_data_path):
    path = Path(calib_data_path)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
    else:
        # a listing's lines are opened exactly as written: relative ones against the working directory
        files = [Path(line) for line in path.read_text().split()]
    if not files:
        raise ValueError("no calibration data")
    return [list(np.load(f).shape) for f in files], [str(np.load(f).dtype) for f in files[:1]]


def _returns(model, feed_dict):
    """What the module's forward returns on the feed, as a tracer would see it."""
    import torch

    bert = inner_bert(model)
    kwargs = {k: v.tensor for k, v in feed_dict.items()}
    with torch.no_grad():
        got = model(**kwargs)
        ref = bert(**kwargs)
    if not isinstance(got, torch.Tensor):
        got = got[0]  # a BertModel output: its first tensor, as Mobilint's runtime example reads it
    if got.shape == ref.last_hidden_state.shape and torch.equal(got, ref.last_hidden_state):
        return "last_hidden_state"
    if ref.pooler_output is not None and torch.equal(got, ref.pooler_output):
        return "pooler_output"
    raise TypeError("the qbcompiler double only knows BERT's last_hidden_state and pooler_output as outputs")


def _knobs(bit_config, equivalent_transformation_config, target_device, model, returns):
    if GENERATION == 1:
        return {}
    entry = {"target_device": target_device}
    if bit_config is not None:
        names = bit_config.layer_overrides.activation_16bits if bit_config.layer_overrides else []
        known = {o["name"] for o in graph_of(model, returns)}
        missing = [n for n in names if n not in known]
        for n in missing:  # the real compiler's behaviour: a log line, then silently skipped
            print(f"Layer {n} from bit config not found in the model, skipping", flush=True)
        entry["activation_16bits"] = list(names)
        entry["bit_config_not_found"] = missing
    if equivalent_transformation_config is not None:
        c = equivalent_transformation_config
        entry["equivalent_transformation"] = {k: getattr(c, k).apply for k in ("norm_conv", "qk", "ud", "vo", "spin_r1", "spin_r2")
                                              if getattr(c, k) is not None}
    return entry


def _mxq_compile(model, save_path, calib_data_path, backend, feed_dict, quantization_config, calibration_config,
                 device, bit_config=None, equivalent_transformation_config=None, target_device=None):
    from safetensors.torch import save_file

    shapes, dtypes = _calib_files(calib_data_path)
    returns = _returns(model, feed_dict)
    _record({"call": "mxq_compile", "generation": GENERATION, "save_path": str(save_path), "calib_data_path": str(calib_data_path),
             "calib_shapes": shapes, "calib_dtype": dtypes[0], "backend": backend, "feed": _feed_entry(feed_dict),
             "config": _config_entry(quantization_config, calibration_config), "device": device, "model_class": type(model).__name__,
             "returns": returns, **_knobs(bit_config, equivalent_transformation_config, target_device, model, returns)})
    print("[qbcompiler double] compiling", flush=True)
    bert = inner_bert(model)
    state = {k: v.detach().contiguous() for k, v in bert.state_dict().items() if not k.startswith("embeddings.")}
    save_file(state, str(save_path), metadata={"config": bert.config.to_json_string(), "double": "qbcompiler", "returns": returns})


def _mblt_compile(model, mblt_save_path, backend, feed_dict, cpu_offload, target_device=None):
    returns = _returns(model, feed_dict)
    _record({"call": "mblt_compile", "path": str(mblt_save_path), "backend": backend, "feed": _feed_entry(feed_dict), "cpu_offload": cpu_offload,
             "model_class": type(model).__name__, "returns": returns, **({"target_device": target_device} if GENERATION >= 2 else {})})
    Path(mblt_save_path).write_text(json.dumps({"format": "mblt-test-double", "operators": graph_of(model, returns)}))


if GENERATION == 1:
    def mxq_compile(*, model, save_path, calib_data_path, backend, feed_dict, quantization_config=None, calibration_config=None,
                    device=None, inference_scheme=None, save_subgraph_type=None, output_subgraph_path=None):
        _mxq_compile(model, save_path, calib_data_path, backend, feed_dict, quantization_config, calibration_config, device)

    def mblt_compile(*, model, mblt_save_path, backend, feed_dict, cpu_offload=False):
        _mblt_compile(model, mblt_save_path, backend, feed_dict, cpu_offload)
elif GENERATION == 2:
    def mxq_compile(*, model, save_path, calib_data_path, backend, feed_dict, quantization_config=None, calibration_config=None,
                    device=None, inference_scheme=None, save_subgraph_type=None, output_subgraph_path=None, bit_config=None,
                    equivalent_transformation_config=None, target_device=None):
        _mxq_compile(model, save_path, calib_data_path, backend, feed_dict, quantization_config, calibration_config, device,
                     bit_config, equivalent_transformation_config, target_device)

    def mblt_compile(*, model, mblt_save_path, backend, feed_dict, cpu_offload=False, target_device=None):
        _mblt_compile(model, mblt_save_path, backend, feed_dict, cpu_offload, target_device)
else:
    def _target(target_device):
        if target_device not in TARGET_DEVICES:  # what 1.3 does with a missing or unknown device, in the double's words
            raise ValueError(f"qbcompiler 1.3 double: target_device {target_device!r} is not one of {TARGET_DEVICES}")
        return target_device

    # positional order as 1.3 reordered it (the output path before target_device): a caller relying on the old
    # positional order would hand backend to target_device and be refused
    def mblt_compile(model, mblt_save_path, target_device, backend="torch", feed_dict=None, cpu_offload=False, dynamic_axes=None,
                     input_shape_dict=None):
        _mblt_compile(model, mblt_save_path, backend, feed_dict, cpu_offload, _target(target_device))

    def mxq_compile(model, save_path, target_device, calib_data_path=None, backend="torch", feed_dict=None, calibration_config=None,
                    device=None, inference_scheme="single", bit_config=None, equivalent_transformation_config=None, config_preset=None,
                    compile_config=None, quantization_config=None):
        _mxq_compile(model, save_path, calib_data_path, backend, feed_dict, quantization_config, calibration_config, device,
                     bit_config, equivalent_transformation_config, _target(target_device))

    def mxq_compile_from_mblt(mblt_path, save_path, target_device, **kwargs):
        raise NotImplementedError("the qbcompiler double compiles from the torch module only")
