"""bertnpu: take a BERT sentence-embedding model to a Mobilint NPU, and see what INT8 does to it first."""

from .version import __version__

from .data.calibration import CalibrationSpec, build_calibration_set, load_calibration_set
from .model.sentence_encoder import SentenceEncoder
from .errors import BertnpuError
from .tune.evaluate import evaluate_sts
from .model.load import LoadedModel, load_model
from .quant.config import QuantConfig
from .quant.simulate import simulate_int8
from .quant.sites import list_sites
from .model.cpu_part import CpuEmbedding, export_weight_dict, load_weight_dict
from .quant.stats import collect_activation_stats, load_stats
from .data.stsb import StsPairs, load_stsb
from .quant.thresholds import clip_thresholds

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
