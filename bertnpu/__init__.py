"""bertnpu: take a BERT sentence-embedding model to a Mobilint NPU, and see what INT8 does to it first."""

__version__ = "0.1.0"

from .calibration import CalibrationSpec, build_calibration_set, load_calibration_set
from .encode import SentenceEncoder
from .errors import BertnpuError
from .evaluate import evaluate_sts
from .model import LoadedModel, load_model
from .quant_config import QuantConfig
from .simulate import simulate_int8
from .sites import list_sites
from .split import CpuEmbedding, export_weight_dict, load_weight_dict
from .stats import collect_activation_stats, load_stats
from .stsb import StsPairs, load_stsb
from .thresholds import clip_thresholds

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
    "simulate_int8",
]
