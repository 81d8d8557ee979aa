"""bertnpu: take a BERT sentence-embedding model to a Mobilint NPU, and see what INT8 does to it first."""

from .version import __version__

from .errors import BertnpuError

# Imported on first use (PEP 562), so `import bertnpu` and commands that fail early (a broken .mxq, a bad argument)
# do not pay for torch, transformers and scipy first.
_LAZY = {
    "CalibrationSpec": ".data.calibration",
    "build_calibration_set": ".data.calibration",
    "load_calibration_set": ".data.calibration",
    "SentenceEncoder": ".model.sentence_encoder",
    "evaluate_sts": ".tune.evaluate",
    "LoadedModel": ".model.load",
    "load_model": ".model.load",
    "QuantConfig": ".quant.config",
    "simulate": ".quant.simulate",
    "list_sites": ".quant.sites",
    "CpuEmbedding": ".model.cpu_part",
    "export_weight_dict": ".model.cpu_part",
    "load_weight_dict": ".model.cpu_part",
    "collect_activation_stats": ".quant.stats",
    "load_stats": ".quant.stats",
    "StsPairs": ".data.stsb",
    "load_stsb": ".data.stsb",
    "clip_thresholds": ".quant.thresholds",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'bertnpu' has no attribute {name!r}")


__all__ = [
    "__version__",
    "BertnpuError",
    "CalibrationSpec",
    "CpuEmbedding",
    "LoadedModel",
    "QuantConfig",
    "SentenceEncoder",
    "StsPairs",
    "build_calibration_set",
    "clip_thresholds",
    "collect_activation_stats",
    "evaluate_sts",
    "export_weight_dict",
    "list_sites",
    "load_calibration_set",
    "load_model",
    "load_stats",
    "load_stsb",
    "load_weight_dict",
    "simulate",
]
