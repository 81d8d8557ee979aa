"""bertnpu: take a BERT sentence-embedding model to a Mobilint NPU, and see what INT8 does to it first."""

__version__ = "0.1.0"

from .encode import SentenceEncoder
from .errors import BertnpuError
from .evaluate import evaluate_sts
from .model import LoadedModel, load_model
from .split import CpuEmbedding, export_weight_dict, load_weight_dict
from .stsb import StsPairs, load_stsb

__all__ = [
    "__version__",
    "BertnpuError",
    "CpuEmbedding",
    "LoadedModel",
    "SentenceEncoder",
    "StsPairs",
    "evaluate_sts",
    "export_weight_dict",
    "load_model",
    "load_stsb",
    "load_weight_dict",
]
