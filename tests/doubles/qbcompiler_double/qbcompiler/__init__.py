"""TEST DOUBLE of Mobilint's qbcompiler (see tests/doubles/README.md): records calls, quantizes nothing."""

import json
import os
from pathlib import Path

import numpy as np

GENERATION = int(os.environ.get("QBCOMPILER_DOUBLE_GENERATION", "2"))
IS_TEST_DOUBLE = True


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
    from .model_dict.parser.backend.torch.util import WrappedTensor

    for key, value in feed_dict.items():
        if not isinstance(value, WrappedTensor):
            raise TypeError(f"feed_dict[{key!r}] must come from wrap_tensor")
    return {k: {"shape": list(v.tensor.shape), "dynamic": [d.dynamic for d in v.src_shape], "mask": v.mask_kind} for k, v in feed_dict.items()}


def _calib_files(calib_data_path):
    path = Path(calib_data_path)
    if path.is_dir():
        files = sorted(path.glob("*.npy"))
    else:
        files = [Path(line) if Path(line).is_absolute() else path.parent / line for line in path.read_text().split()]
    if not files:
        raise ValueError("no calibration data")
    return [list(np.load(f).shape) for f in files], [str(np.load(f).dtype) for f in files[:1]]


def mxq_compile(*, model, save_path, calib_data_path, backend, feed_dict, quantization_config=None, calibration_config=None,
                device=None, inference_scheme=None, save_subgraph_type=None, output_subgraph_path=None):
    from safetensors.torch import save_file

    shapes, dtypes = _calib_files(calib_data_path)
    _record({"call": "mxq_compile", "generation": GENERATION, "save_path": str(save_path), "calib_data_path": str(calib_data_path),
             "calib_shapes": shapes, "calib_dtype": dtypes[0], "backend": backend, "feed": _feed_entry(feed_dict),
             "config": _config_entry(quantization_config, calibration_config), "device": device, "model_class": type(model).__name__})
    print("[qbcompiler double] compiling", flush=True)
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items() if not k.startswith("embeddings.")}
    save_file(state, str(save_path), metadata={"config": model.config.to_json_string(), "double": "qbcompiler"})


def mblt_compile(*, model, mblt_save_path, backend, feed_dict, cpu_offload=False):
    _record({"call": "mblt_compile", "path": str(mblt_save_path), "backend": backend, "feed": _feed_entry(feed_dict), "cpu_offload": cpu_offload})
    Path(mblt_save_path).write_text("MBLT test double\n")
