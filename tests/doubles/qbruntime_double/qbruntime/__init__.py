"""TEST DOUBLE of Mobilint's qbruntime (see tests/doubles/README.md): runs the double's .mxq in FP32 on the CPU.

Same names and signatures as the parts of the real package (mobilint-qb-runtime 1.5.0) that bertnpu
calls; tests/test_runtime_contract.py checks that against the installed wheel. What the double cannot
know (the real .mxq's shapes for a BERT) it answers in its own, stated way: input ``(1, -1, H)``
(a negative dimension is variable, as the real runtime reports it) or, for a double compiled with
fixed lengths (metadata ``seq_lengths``), one variant per length with inputs ``(1, L, H)`` and a
``(1, L)`` 0/1 attention mask.
"""

import json
import os
import time
from enum import Enum
from typing import List, Optional, Tuple, Union

import numpy as np

IS_TEST_DOUBLE = True
__version__ = "v1.5.0-double"
disposed = []
_log_level = None


class QbRuntimeError(RuntimeError):
    pass


class LogLevel(Enum):
    Debug = 1
    Info = 2
    Warn = 3
    Err = 4
    Fatal = 5
    Off = 6


class CoreMode(Enum):
    Single = 0
    Multi = 1
    Global = 2
    Global4 = 3
    Global8 = 4
    Auto = 14
    Error = 15


def _native_log(text: str) -> None:
    """Like the real runtime: written to file descriptor 2 by native code, past sys.stderr."""
    if _log_level != LogLevel.Off:
        os.write(2, f"E1204 00:00:00.000 1 double.cc:1] {text}\n".encode())


def set_log_level(level: LogLevel):
    global _log_level
    _log_level = level


def get_available_devices() -> List[str]:
    """From QBRUNTIME_DOUBLE_DEVICES (comma-separated; default one ARIES, empty for none)."""
    return [d for d in os.environ.get("QBRUNTIME_DOUBLE_DEVICES", "aries-rb").split(",") if d]


def _read(path):
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as fh:
            meta = fh.metadata() or {}
            state = {k: fh.get_tensor(k) for k in fh.keys()}
    except Exception as exc:  # noqa: BLE001  safetensors raises its own SafetensorError for a file that is not one
        if not os.path.isfile(path):
            os.write(2, f"Unable to load; No such file exists:'{path}'\n".encode())
        else:
            os.write(2, b"Unable to load; Invalid magic value detected. The MXQ file may be broken or corrupeted.\n")
        _native_log("Failed to load model.")
        raise QbRuntimeError("Model_FailedToLoadMXQ occurred.") from exc
    if meta.get("double") != "qbcompiler":
        _native_log("Failed to load model.")
        raise QbRuntimeError("Model_FailedToLoadMXQ occurred.")
    return meta, state


def _shapes(meta) -> Tuple[list, list, list]:
    """Per variant: input shapes, output shapes; and the fixed lengths (empty: one dynamic variant)."""
    hidden = json.loads(meta["config"])["hidden_size"]
    lengths = json.loads(meta.get("seq_lengths", "[]"))
    pooled = meta.get("returns") == "pooler_output"
    if not lengths:
        return [[(1, -1, hidden)]], [[(1, hidden)] if pooled else [(1, -1, hidden)]], []
    ins = [[(1, n, hidden), (1, n)] for n in lengths]
    outs = [[(1, hidden)] if pooled else [(1, n, hidden)] for n in lengths]
    return ins, outs, lengths


def get_model_summary(mxq_path: str) -> str:
    try:
        meta, _ = _read(mxq_path)
    except QbRuntimeError:
        return ""
    ins, outs, _ = _shapes(meta)
    lines = ["Target device: aries-rb (qbruntime TEST DOUBLE)", "Core modes: single, multi, global4, global8", f"Variants: {len(ins)}"]
    lines += [f"  variant {i}: inputs {a} outputs {b}" for i, (a, b) in enumerate(zip(ins, outs))]
    return "\n".join(lines) + "\n"


class Accelerator:
    def __init__(self, device_name="auto", dev_no=0):
        if isinstance(device_name, int):  # Accelerator(dev_no), as the real one allows
            dev_no, device_name = device_name, "auto"
        if not get_available_devices():
            _native_log("No NPU device found in the system.")
            raise QbRuntimeError("Acc_DeviceNotFound occurred.")
        self.device_name, self.dev_no = device_name, dev_no

    def get_device_name(self):
        return get_available_devices()[0]


class ModelConfig:
    def __init__(self, num_cores: Optional[int] = None):
        self.mode = CoreMode.Auto

    def set_single_core_mode(self, num_cores=None, core_ids=None) -> bool:
        self.mode = CoreMode.Single
        return True

    def set_multi_core_mode(self, clusters=()) -> bool:
        self.mode = CoreMode.Multi
        return True

    def set_global4_core_mode(self, clusters=()) -> bool:
        self.mode = CoreMode.Global4
        return True

    def set_global8_core_mode(self) -> bool:
        self.mode = CoreMode.Global8
        return True

    def set_auto_core_mode(self) -> bool:
        self.mode = CoreMode.Auto
        return True

    def get_core_mode(self):
        return self.mode


class BufferInfo:
    def __init__(self, max_width: int = 0):
        self.max_width = max_width


class Future:
    def __init__(self, value):
        self._value = value

    def get(self) -> List[np.ndarray]:
        return self._value


class Model:
    def __init__(self, path: str, model_config: Optional[ModelConfig] = None):
        import torch
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import BertEncoder, BertPooler

        meta, state = _read(path)
        cfg = BertConfig(**json.loads(meta["config"]))
        self.encoder = BertEncoder(cfg).eval()
        self.encoder.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")})
        self.returns = meta.get("returns", "last_hidden_state")  # what the compiled module's forward returned
        self.pooler = None
        if self.returns == "pooler_output":
            self.pooler = BertPooler(cfg).eval()
            self.pooler.load_state_dict({k[len("pooler."):]: v for k, v in state.items() if k.startswith("pooler.")})
        self._ins, self._outs, self.lengths = _shapes(meta)
        self.mode = (model_config or ModelConfig()).mode
        self.cpu_offload = True  # every BERT compiled by bertnpu has its embeddings on the CPU
        self.launched = False
        self.calls = []  # (variant, input length) of each infer, for tests
        self.path = path
        self.torch = torch

    def get_model_input_shape(self) -> List[Tuple[int, ...]]:
        return list(self._ins[0])

    def get_model_output_shape(self) -> List[Tuple[int, ...]]:
        return list(self._outs[0])

    def get_num_model_variants(self) -> int:
        return len(self._ins)

    def get_model_variant_handle(self, variant_idx):
        from types import SimpleNamespace

        return SimpleNamespace(get_model_input_shape=lambda: list(self._ins[variant_idx]),
                               get_model_output_shape=lambda: list(self._outs[variant_idx]), get_variant_idx=lambda: variant_idx)

    def get_input_buffer_info(self) -> List[BufferInfo]:
        return [BufferInfo(max_width=max(self.lengths) if self.lengths else 512)]

    def get_core_mode(self):
        return self.mode

    def launch(self, acc: Accelerator) -> None:
        self.launched = True

    def _run(self, inputs):
        assert self.launched, "launch() first"
        inputs = [inputs] if isinstance(inputs, np.ndarray) else list(inputs)
        x = inputs[0]
        assert x.dtype.name == "float32" and x.ndim == 3 and x.shape[0] == 1
        mask = None
        if self.lengths:  # fixed lengths: the input must be one variant's length exactly, with its mask
            variant = self.lengths.index(x.shape[1]) if x.shape[1] in self.lengths else None
            if variant is None or len(inputs) != 2 or inputs[1].shape != (1, x.shape[1]):
                raise QbRuntimeError("Model_InvalidInputShape occurred.")
            mask = (1.0 - self.torch.from_numpy(inputs[1].astype(np.float32)))[:, None, None, :] * -1e9  # additive, like BERT's
            self.calls.append((variant, x.shape[1]))
        else:
            assert len(inputs) == 1
            self.calls.append((0, x.shape[1]))
        with self.torch.no_grad():
            out = self.encoder(self.torch.from_numpy(x), attention_mask=mask).last_hidden_state
            if self.pooler is not None:
                out = self.pooler(out)
        time.sleep(0)  # a real NPU call releases the GIL; keeps the double honest about being a call
        return [out.numpy()]

    def infer(self, inputs: Union[np.ndarray, List[np.ndarray]], outputs: Optional[List[np.ndarray]] = None, cache_size: int = 0,
              params=None) -> Optional[List[np.ndarray]]:
        return self._run(inputs)

    def infer_to_float(self, inputs: Union[np.ndarray, List[np.ndarray]], cache_size: int = 0) -> List[np.ndarray]:
        return self._run(inputs)

    def infer_async(self, inputs: Union[np.ndarray, List[np.ndarray]]) -> Future:
        if self.cpu_offload:  # Mobilint: async inference does not support models with CPU offload
            raise QbRuntimeError("Model_NotSupported occurred.")
        return Future(self._run(inputs))

    def dispose(self) -> None:
        disposed.append(self.path)
