"""The module handed to qbcompiler: BERT whose forward returns exactly the tensor the sentence pooling needs.

Mobilint's runtime example takes ``infer(...)[0]`` as the sentence vector, i.e. the compiled
``BertModel``'s first output is BERT's ``pooler_output``. A sentence-transformers model pooled
by mean, max or CLS needs the token states instead, so bertnpu compiles this wrapper: it returns
``last_hidden_state`` ``[1, seq_len, hidden]`` for mean/max/cls and ``pooler_output``
``[1, hidden]`` only for ``pooler``. The embeddings stay inside (``self.bert.embeddings``), where
qbcompiler's ``cpu_offload`` finds them as it does in the tutorial.
"""

from __future__ import annotations

from typing import Optional

import torch

from ..errors import BertnpuError
from ..model.load import LoadedModel
from .compiled_output import CompiledOutput, compiled_output  # noqa: F401  (re-exported: their home before)


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
