"""Sentence embeddings through the CPU/NPU split: tokenize, sort by length, batch, pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..memory import release_free_memory
from .npu_part import NpuEncoder, Tap
from .load import LoadedModel, Pooling
from .pooling import pool
from .cpu_part import CpuEmbedding


@dataclass
class Batch:
    """One padded batch. input_ids / token_type_ids / attention_mask: ``[B, S]``; order: indices into the input list."""

    input_ids: torch.Tensor
    token_type_ids: torch.Tensor
    attention_mask: torch.Tensor
    order: np.ndarray


def tokenize(model: LoadedModel, sentences: Sequence[str], max_length: Optional[int] = None) -> list[list[int]]:
    """Token ids of each sentence alone (no padding), truncated to the model's max length."""
    limit = model.max_seq_length if max_length is None else min(max_length, model.config.max_position_embeddings)
    enc = model.tokenizer(list(sentences), truncation=True, max_length=limit, padding=False, return_token_type_ids=False, return_attention_mask=False)
    return enc["input_ids"]


def length_sorted_batches(ids: list[list[int]], batch_size: int, pad_id: int = 0) -> list[Batch]:
    """Group sequences of similar length so padding costs little; longest first."""
    lengths = np.array([len(x) for x in ids])
    order = np.argsort(-lengths, kind="stable")
    batches = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = int(lengths[idx].max())
        input_ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for row, i in enumerate(idx):
            input_ids[row, : lengths[i]] = torch.tensor(ids[i])
            mask[row, : lengths[i]] = 1
        batches.append(Batch(input_ids, torch.zeros_like(input_ids), mask, idx))
    return batches


class SentenceEncoder:
    """``encode(sentences) -> [n, hidden]`` numpy embeddings of a model through the split.

    The same object serves FP32 (no tap), activation observation and INT8 simulation
    (a tap, and/or an ``encoder`` with fake-quantized weights), so every backend's
    numbers come from one code path.

    Example:
        >>> enc = SentenceEncoder(load_model())
        >>> enc(["A man plays a guitar.", "Hi"]).shape
        (2, 384)
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        pooling: Optional[Pooling] = None,
        batch_size: int = 64,
        tap: Optional[Tap] = None,
        encoder: Optional[NpuEncoder] = None,
        embedding: Optional[CpuEmbedding] = None,
        max_length: Optional[int] = None,
        progress: bool = True,
        desc: str = "encode",
    ):
        self.model = model
        self.pooling = pooling or model.pooling
        self.batch_size = batch_size
        self.tap = tap
        self.encoder = encoder if encoder is not None else NpuEncoder(model.bert)
        self.embedding = embedding if embedding is not None else CpuEmbedding.from_bert(model.bert)
        self.max_length = max_length
        self.progress = progress
        self.desc = desc

    def forward_batch(self, batch: Batch) -> torch.Tensor:
        """Pooled embeddings ``[B, H]`` of one batch (float32)."""
        hidden = self.embedding(batch.input_ids, batch.token_type_ids)
        last, pooled = self.encoder(hidden, batch.attention_mask, tap=self.tap)
        return pool(last, batch.attention_mask, pooled, self.pooling.mode)

    def batches(self, sentences: Sequence[str]) -> list[Batch]:
        ids = tokenize(self.model, sentences, self.max_length)
        return length_sorted_batches(ids, self.batch_size, self.model.tokenizer.pad_token_id or 0)

    def __call__(self, sentences: Sequence[str]) -> np.ndarray:
        batches = self.batches(sentences)
        out = np.zeros((len(sentences), self.model.config.hidden_size), dtype=np.float32)
        with torch.inference_mode():
            for batch in tqdm(batches, desc=self.desc, disable=not self.progress, leave=False):
                out[batch.order] = self.forward_batch(batch).float().numpy()
        release_free_memory()  # the pass's freed batches go back to the system: candidate after candidate, glibc would keep them
        return out
