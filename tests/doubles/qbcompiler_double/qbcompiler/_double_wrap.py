"""TEST DOUBLE of qbcompiler's wrap_tensor and set_attention_mask (found under the layout of the double's generation)."""


class Dim:
    def __init__(self, size):
        self.size, self.dynamic = size, False

    def set_dynamic(self):
        self.dynamic = True


class WrappedTensor:
    def __init__(self, name, tensor):
        self.name, self.tensor = name, tensor
        self.src_shape = [Dim(s) for s in tensor.shape]
        self.mask_kind = None


def wrap_tensor(name, tensor):
    return WrappedTensor(name, tensor)


def set_attention_mask(wrapped, kind):
    if kind not in ("padding_mask",):
        raise ValueError(kind)
    wrapped.mask_kind = kind
