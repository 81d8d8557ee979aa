"""TEST DOUBLE of qbcompiler 1.3's legacy set_attention_mask."""

from qbcompiler._double_wrap import set_attention_mask  # noqa: F401
