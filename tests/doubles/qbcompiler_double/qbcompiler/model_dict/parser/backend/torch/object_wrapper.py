"""TEST DOUBLE of qbcompiler's set_attention_mask (the tutorial's layout, qbcompiler 1.0-1.2)."""

from qbcompiler import GENERATION

if GENERATION >= 3:
    raise ImportError("qbcompiler 1.3 double: the tutorial's parser moved to qbcompiler.model_dict_legacy")

from qbcompiler._double_wrap import set_attention_mask  # noqa: E402,F401
