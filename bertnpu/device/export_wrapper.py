"""The module handed to qbcompiler: BERT whose forward returns exactly the tensor the sentence pooling needs.

Mobilint's runtime example takes ``infer(...)[0]`` as the sentence vector, i.e. the compiled
``BertModel``'s first output is BERT's ``pooler_output``. A sentence-transformers model pooled
by mean, max or CLS needs the token states instead, so bertnpu compiles this wrapper: it returns
``last_hidden_state`` ``[1, seq_len, hidden]`` for mean/max/cls and ``pooler_output``
``[1, hidden]`` only for ``pooler``. The embeddings stay inside (``self.bert.embeddings``), where
qbcompiler's ``cpu_offload`` finds them as it does in the tutorial.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..errors import BertnpuError
from ..model.load import LoadedModel


@dataclass(frozen=True)
class CompiledOutput:
    """What the compiled ``.mxq`` returns, as written to ``<out>.recipe.json``."""

    returns: str  # "last_hidden_state" or "pooler_output"
    hidden_size: int
    pooling: str

    @property
    def shape_text(self) -> str:
        return f"[1, seq_len, {self.hidden_size}]" if self.returns == "last_hidden_state" else f"[1, {self.hidden_size}]"

    def describe(self) -> str:
        if self.returns == "last_hidden_state":
            return f"token states {self.shape_text} (last_hidden_state), which bertnpu {self.pooling}-pools on the CPU"
        return f"BERT's pooler output {self.shape_text} (pooler_output), the sentence vector as is"

    def matches(self, shape: tuple, seq_len: int) -> bool:
        """Whether an NPU output of ``shape`` is this tensor for a ``seq_len``-token sentence (leading 1s aside)."""
        want = (seq_len, self.hidden_size) if self.returns == "last_hidden_state" else (self.hidden_size,)
        shape = tuple(int(d) for d in shape)
        while len(shape) > len(want) and shape[0] == 1:
            shape = shape[1:]
        return shape == want

    def to_dict(self) -> dict:
        return {"returns": self.returns, "shape": self.shape_text, "hidden_size": self.hidden_size, "pooling": self.pooling,
                "meaning": self.describe()}

    @classmethod
    def from_dict(cls, data: dict) -> "CompiledOutput":
        return cls(str(data["returns"]), int(data["hidden_size"]), str(data["pooling"]))


def compiled_output(model: LoadedModel) -> CompiledOutput:
    """What the ``.mxq`` compiled from :class:`PoolingReadyBert` of ``model`` returns."""
    returns = "pooler_output" if model.pooling.mode == "pooler" else "last_hidden_state"
    return CompiledOutput(returns, int(model.config.hidden_size), model.pooling.mode)


class PoolingReadyBert(torch.nn.Module):
    """``BertModel`` whose forward returns one tensor: token states, or the pooler output for ``pooler`` pooling.

    Shares the model's parameters (no copy).

    Example:
        >>> PoolingReadyBert(model)(**model.tokenizer("Hi", return_tensors="pt")).shape  # doctest: +SKIP
        torch.Size([1, 3, 384])
    """

    def __init__(self, model: LoadedModel):
        super().__init__()
        self.bert = model.bert
        self.output = compiled_output(model)
        if self.output.returns == "pooler_output" and getattr(model.bert, "pooler", None) is None:
            raise BertnpuError(f"Pooling 'pooler' needs BERT's pooler, which {model.name!r} does not have; load it with --pooling mean (or cls/max).")

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                token_type_ids: Optional[torch.Tensor] = None) -> torch.Tensor:
        out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.pooler_output if self.output.returns == "pooler_output" else out.last_hidden_state
