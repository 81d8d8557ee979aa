"""The only module that imports qbruntime (lazily): an ``encode`` backend running the ``.mxq`` on the NPU.

As Mobilint's runtime example does: the CPU computes the embeddings from ``weight_dict.pth``
and feeds ``[1, seq_len, hidden]`` float32 to the NPU, one sentence per call; bertnpu then
applies the model's own pooling to the output.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model.sentence_encoder import tokenize
from ..errors import BertnpuError
from ..model.load import LoadedModel, Pooling
from ..model.cpu_part import CpuEmbedding
from .preflight import CORE_MODES, MISSING, MxqFacts, load_qbruntime, native_log, preflight  # noqa: F401  (MISSING re-exported)

class QbruntimeEncoder:
    """``encode(sentences) -> [n, hidden]`` through a compiled ``.mxq`` on the NPU; use it as a context manager.

    Example:
        >>> with QbruntimeEncoder(model, "model.mxq") as encode:  # doctest: +SKIP
        ...     evaluate_sts(encode, pairs)
    """

    def __init__(self, model: LoadedModel, mxq: str | os.PathLike, *, weights: Optional[str | os.PathLike] = None,
                 pooling: Optional[Pooling] = None, device: int = 0, progress: bool = True, facts: Optional[MxqFacts] = None,
                 core_mode: Optional[str] = None, verbose: bool = False):
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
        self.facts = facts
        self.core_mode = core_mode
        self.verbose = verbose
        self._npu = None
        self._warned_unmasked = False

    def __enter__(self) -> "QbruntimeEncoder":
        qb = load_qbruntime()
        if self.facts is None:
            self.facts = preflight(self.mxq, hidden_size=self.model.config.hidden_size, verbose=self.verbose, model_name=self.model.name)
        with native_log(qb, self.verbose) as log:
            try:
                acc = qb.Accelerator(dev_no=self.device)
                npu = qb.Model(str(self.mxq), model_config(qb, self.core_mode))
                npu.launch(acc)
            except BertnpuError:
                raise
            except Exception as exc:  # no device, driver, or a bad file: all reported as one sentence
                failure = exc
            else:
                failure = None
        if failure is not None:
            why = log.reason() or str(failure).splitlines()[0]
            raise BertnpuError(f"The NPU could not run {str(self.mxq)!r} (qbruntime: {why}); check that a Mobilint NPU (device {self.device}) "
                               "and its driver are present with `bertnpu doctor`.") from failure
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

    def _inputs(self, ids: list[int]) -> tuple[list[np.ndarray], int]:
        """The NPU's inputs for one sentence: ``[1, L, hidden]`` embeddings, padded to the variant's length ``L``
        with zeros and a ``[1, L]`` 0/1 mask when the ``.mxq`` takes one; returns them and ``L``."""
        x = self.embedding(torch.tensor([ids])).numpy().astype(np.float32)
        n = len(ids)
        length = self.facts.padded_length(n) if self.facts is not None else n
        if length == n and not (self.facts is not None and self.facts.seq_lengths() and self.facts.has_mask_input()):
            return [x], n
        padded = np.zeros((1, length, x.shape[2]), dtype=np.float32)
        padded[:, :n] = x
        if self.facts.has_mask_input():
            mask = np.zeros((1, length), dtype=np.float32)
            mask[:, :n] = 1.0
            return [padded, mask], length
        if not self._warned_unmasked:  # not published how the runtime masks pads; say so once rather than hide it
            print(f"note: {self.mxq.name} has fixed lengths and no mask input, so the padded tokens are attended to; "
                  "results may differ from the unpadded model.", file=sys.stderr)
            self._warned_unmasked = True
        return [padded], length

    def encode_one(self, ids: list[int]) -> np.ndarray:
        """The sentence vector of one tokenized sentence (one ``infer`` call)."""
        inputs, length = self._inputs(ids)
        outputs = [np.asarray(o) for o in self._npu.infer(inputs)]
        n = len(ids)
        if length != n:  # padded: the token states of the real tokens only
            outputs = [o.reshape(-1, length, o.shape[-1])[:, :n] if o.size == length * o.shape[-1] and o.ndim >= 2 else o for o in outputs]
        return self._pick(outputs, n)

    def max_tokens(self) -> Optional[int]:
        fixed = self.facts.seq_lengths() if self.facts is not None else ()
        return max(fixed) if fixed else None

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        if self._npu is None:
            raise BertnpuError("Use the NPU encoder inside `with QbruntimeEncoder(...) as encode:` so the device is launched and released.")
        out = np.zeros((len(sentences), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for i, ids in enumerate(tqdm(tokenize(self.model, sentences), desc="encode (NPU)", disable=not self.progress, leave=False)):
                out[i] = self.encode_one(ids)
        return out


def model_config(qb: Any, core_mode: Optional[str] = None) -> Any:
    """``ModelConfig()`` (auto core mode) or one set to ``core_mode``; one sentence when the runtime refuses the mode."""
    config = qb.ModelConfig()
    if core_mode is None:
        return config
    if core_mode not in CORE_MODES:
        raise BertnpuError(f"Core mode {core_mode!r} is unknown; use one of {', '.join(CORE_MODES)}.")
    if getattr(config, CORE_MODES[core_mode])() is False:
        raise BertnpuError(f"qbruntime refused core mode {core_mode!r} on this device; use one the model supports (see `bertnpu doctor`).")
    return config
