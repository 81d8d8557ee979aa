"""The only module that imports qbruntime (lazily): an ``encode`` backend running the ``.mxq`` on the NPU.

As Mobilint's runtime example does: the CPU computes the embeddings from ``weight_dict.pth``
and feeds ``[1, seq_len, hidden]`` float32 to the NPU, one sentence per call; bertnpu then
applies the model's own pooling to the output.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model.sentence_encoder import tokenize
from ..errors import BertnpuError
from ..model.load import LoadedModel, Pooling
from ..model.cpu_part import CpuEmbedding

MISSING = ("qbruntime is not installed; install it with `pip install 'bertnpu[npu]'` (PyPI: mobilint-qb-runtime, CPython 3.11) "
           "on a machine with a Mobilint NPU.")


def load_qbruntime() -> Any:
    try:
        return importlib.import_module("qbruntime")
    except ImportError:
        raise BertnpuError(MISSING) from None


class QbruntimeEncoder:
    """``encode(sentences) -> [n, hidden]`` through a compiled ``.mxq`` on the NPU; use it as a context manager.

    Example:
        >>> with QbruntimeEncoder(model, "model.mxq") as encode:  # doctest: +SKIP
        ...     evaluate_sts(encode, pairs)
    """

    def __init__(self, model: LoadedModel, mxq: str | os.PathLike, *, weights: Optional[str | os.PathLike] = None,
                 pooling: Optional[Pooling] = None, device: int = 0, progress: bool = True):
        from .compile_record import read_compile_record

        self.mxq = Path(mxq)
        if not self.mxq.is_file():
            raise BertnpuError(f"Compiled model {str(self.mxq)!r} does not exist; compile one with `bertnpu compile` or pass the right path.")
        record = read_compile_record(self.mxq)
        # what the .mxq returns, from <mxq>.recipe.json; None for a .mxq compiled elsewhere (then guessed from the shapes)
        self.expected_output = record.output if record is not None else None
        self.model = model
        eps = model.config.layer_norm_eps
        self.embedding = CpuEmbedding.from_file(weights, eps, hidden_size=model.config.hidden_size) if weights is not None else CpuEmbedding.from_bert(model.bert)
        self.pooling = pooling or model.pooling
        self.device = device
        self.progress = progress
        self._npu = None

    def __enter__(self) -> "QbruntimeEncoder":
        qb = load_qbruntime()
        try:
            acc = qb.Accelerator(self.device)
            npu = qb.Model(str(self.mxq), qb.ModelConfig())
            npu.launch(acc)
        except BertnpuError:
            raise
        except Exception as exc:  # no device, driver, or a bad file: all reported as one sentence
            raise BertnpuError(f"The NPU could not run {str(self.mxq)!r} ({exc.__class__.__name__}: {exc}); check that a Mobilint NPU (device {self.device}) and its driver are present.") from exc
        self._npu = npu
        return self

    def __exit__(self, *exc_info) -> None:
        if self._npu is not None:
            self._npu.dispose()
            self._npu = None

    def _checked(self, outputs: Sequence[np.ndarray], seq_len: int) -> np.ndarray:
        """The sentence vector from the one output the compile record promises; one sentence naming both shapes otherwise."""
        want = self.expected_output
        arrays = [np.asarray(o) for o in outputs]
        if len(arrays) != 1 or not want.matches(arrays[0].shape, seq_len):
            promised = want.shape_text.replace("seq_len", str(seq_len))
            raise BertnpuError(f"The NPU returned shape(s) {', '.join(str(tuple(a.shape)) for a in arrays)} for a {seq_len}-token sentence, but "
                               f"{self.mxq.name}.recipe.json says {self.mxq.name} returns {want.returns} {promised}; recompile it with `bertnpu compile` "
                               "or delete the stale .recipe.json.")
        hidden = self.model.config.hidden_size
        if want.returns == "pooler_output":
            if self.pooling.mode != "pooler":
                raise BertnpuError(f"{self.mxq.name} returns BERT's pooler output, but this model uses {self.pooling.mode} pooling, which needs the token states; "
                                   "recompile with `bertnpu compile` for this pooling.")
            return arrays[0].reshape(hidden)
        if self.pooling.mode == "pooler":
            raise BertnpuError(f"{self.mxq.name} returns token states, but pooler pooling needs BERT's pooler output; recompile it for pooler pooling with `bertnpu compile`.")
        from ..model.pooling import pool

        states = torch.from_numpy(arrays[0].reshape(1, seq_len, hidden).astype(np.float32))
        return pool(states, torch.ones(1, seq_len, dtype=torch.long), None, self.pooling.mode)[0].numpy()

    def _pick(self, outputs: Sequence[np.ndarray], seq_len: int) -> np.ndarray:
        if self.expected_output is not None:
            return self._checked(outputs, seq_len)
        hidden = self.model.config.hidden_size
        arrays = [np.asarray(o) for o in outputs]
        if self.pooling.mode == "pooler":
            pooled = [a for a in arrays if a.shape[-1] == hidden and a.reshape(-1, hidden).shape[0] == 1]
            if pooled:
                return pooled[0].reshape(hidden)
        tokens = [a for a in arrays if a.ndim >= 2 and a.shape[-1] == hidden and a.reshape(-1, hidden).shape[0] == seq_len]
        if not tokens:
            raise BertnpuError(f"The NPU returned shapes {[a.shape for a in arrays]}, none with [{seq_len}, {hidden}] token states; recompile the model with bertnpu's bundle.")
        states = torch.from_numpy(tokens[0].reshape(1, seq_len, hidden).astype(np.float32))
        mask = torch.ones(1, seq_len, dtype=torch.long)
        from ..model.pooling import pool

        return pool(states, mask, None, "mean" if self.pooling.mode == "pooler" else self.pooling.mode)[0].numpy()

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        if self._npu is None:
            raise BertnpuError("Use the NPU encoder inside `with QbruntimeEncoder(...) as encode:` so the device is launched and released.")
        out = np.zeros((len(sentences), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for i, ids in enumerate(tqdm(tokenize(self.model, sentences), desc="encode (NPU)", disable=not self.progress, leave=False)):
                x = self.embedding(torch.tensor([ids])).numpy().astype(np.float32)
                out[i] = self._pick(self._npu.infer([x]), len(ids))
        return out
