"""TEST DOUBLE of qbcompiler 1.3's legacy wrap_tensor."""

from qbcompiler._double_wrap import Dim, WrappedTensor, wrap_tensor  # noqa: F401
