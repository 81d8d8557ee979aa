"""TEST DOUBLE of qbcompiler's set_attention_mask."""


def set_attention_mask(wrapped, kind):
    if kind not in ("padding_mask",):
        raise ValueError(kind)
    wrapped.mask_kind = kind
