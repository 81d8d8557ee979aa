"""The only module that imports qbcompiler (lazily). Builds the feed dict and calls mxq_compile / mblt_compile.

qbcompiler is proprietary: Mobilint ships it as Docker images
(``mobilint/qbcompiler:<ver>-cpu-ubuntu22.04`` / ``-cuda12.8.1-ubuntu22.04``) and a wheel from
its download center. Without it, :func:`write_compile_bundle` (``bertnpu compile --bundle``)
exports everything needed to compile inside that image.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from pathlib import Path
from typing import Any, Callable, Optional

from ..artifacts import atomic_write, check_writable
from ..errors import BertnpuError
from ..model.load import LoadedModel
from ..quant.config import QuantConfig

MISSING = ("qbcompiler is not installed (Mobilint ships it as the Docker image mobilint/qbcompiler and a wheel from its download center); "
           "run `bertnpu compile --bundle DIR` to export a bundle that compiles inside that image.")
FEED_SENTENCE = "Hello, my dog is cute"


def load_qbcompiler() -> Any:
    """Import qbcompiler, or raise one sentence saying how to get it and what to do instead."""
    try:
        return importlib.import_module("qbcompiler")
    except ImportError:
        raise BertnpuError(MISSING) from None


def qbcompiler_available() -> bool:
    try:
        load_qbcompiler()
        return True
    except BertnpuError:
        return False


def api_generation(qb: Any) -> int:
    """2 for qbcompiler 1.1+ (``CalibrationConfig``), 1 for 1.0.x (``QuantizationConfig.from_kwargs``)."""
    if hasattr(qb, "CalibrationConfig"):
        return 2
    if hasattr(qb, "QuantizationConfig"):
        return 1
    raise BertnpuError("The installed qbcompiler has neither CalibrationConfig nor QuantizationConfig; install qbcompiler 1.0 or newer.")


def quantization_kwargs(qb: Any, config: QuantConfig) -> dict[str, Any]:
    """The keyword argument of ``mxq_compile`` that carries ``config``, for the installed generation."""
    if api_generation(qb) == 2:
        cc = qb.CalibrationConfig
        return {"calibration_config": cc(method=config.method, output=config.output, mode=config.mode,
                                         max_percentile=cc.MaxPercentile(percentile=config.percentile, topk_ratio=config.topk_ratio))}
    return {"quantization_config": qb.QuantizationConfig.from_kwargs(**config.legacy_kwargs())}


def build_feed_dict(model: LoadedModel) -> dict[str, Any]:
    """Wrapped tensors of a sample sentence with a dynamic sequence dimension, the mask marked as padding mask."""
    util = importlib.import_module("qbcompiler.model_dict.parser.backend.torch.util")
    wrapper = importlib.import_module("qbcompiler.model_dict.parser.backend.torch.object_wrapper")
    inputs = model.tokenizer(FEED_SENTENCE, return_tensors="pt")
    feed = {}
    for key, value in inputs.items():
        wrapped = util.wrap_tensor(key, value)
        wrapped.src_shape[1].set_dynamic()
        feed[key] = wrapped
    wrapper.set_attention_mask(feed["attention_mask"], "padding_mask")
    return feed


class _Tee:
    """Copies writes to the console and a log sink (the compiler's log, streamed)."""

    def __init__(self, stream, sink: Callable[[str], None]):
        self.stream, self.sink = stream, sink

    def write(self, text: str) -> int:
        self.sink(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def _streamed(log: Optional[Callable[[str], None]]):
    if log is None:
        yield
        return
    with contextlib.redirect_stdout(_Tee(sys.stdout, log)), contextlib.redirect_stderr(_Tee(sys.stderr, log)):
        yield


def compile_mxq(model: LoadedModel, calibration_dir: str | os.PathLike, config: QuantConfig, out: str | os.PathLike, *,
                force: bool = False, device: Optional[str] = None, log: Optional[Callable[[str], None]] = None) -> Path:
    """Compile ``model`` to an INT8 ``.mxq`` with qbcompiler, as Mobilint's tutorial does, but safely.

    Written to a temp name and renamed; an existing ``.mxq`` is replaced only with ``force``;
    the config is saved beside it as ``<out>.config.json``.
    """
    out = check_writable(out, force, "compiled model")
    qb = load_qbcompiler()
    calib = Path(calibration_dir)
    extra = {"device": device} if device else {}
    kwargs = quantization_kwargs(qb, config)
    feed = build_feed_dict(model)

    def write(tmp: Path) -> None:
        with _streamed(log):
            qb.mxq_compile(model=model.bert, save_path=str(tmp), calib_data_path=str(calib), backend="torch", feed_dict=feed, **kwargs, **extra)

    atomic_write(out, write, force=force, what="compiled model")
    config.save(config_path_for(out), force=True)
    return out


def config_path_for(mxq: str | os.PathLike) -> Path:
    return Path(f"{mxq}.config.json")


def compile_mblt(model: LoadedModel, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Write the MBLT graph (``mblt_compile(..., cpu_offload=True)``) for Netron."""
    out = check_writable(out, force, "MBLT file")
    qb = load_qbcompiler()
    feed = build_feed_dict(model)
    atomic_write(out, lambda tmp: qb.mblt_compile(model=model.bert, mblt_save_path=str(tmp), backend="torch", feed_dict=feed, cpu_offload=True), force=force)
    return out
