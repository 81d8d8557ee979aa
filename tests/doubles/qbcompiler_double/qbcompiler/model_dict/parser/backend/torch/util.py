"""TEST DOUBLE of qbcompiler's wrap_tensor (the tutorial's layout, qbcompiler 1.0-1.2; moved to model_dict_legacy in 1.3)."""

from qbcompiler import GENERATION

if GENERATION >= 3:
    raise ImportError("qbcompiler 1.3 double: the tutorial's parser moved to qbcompiler.model_dict_legacy")

from qbcompiler._double_wrap import Dim, WrappedTensor, wrap_tensor  # noqa: E402,F401
