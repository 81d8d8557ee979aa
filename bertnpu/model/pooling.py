"""Sentence pooling of token states, as sentence-transformers' Pooling module does it."""

from __future__ import annotations

from typing import Optional

import torch


def pool(last_hidden: torch.Tensor, attention_mask: torch.Tensor, pooled: Optional[torch.Tensor], mode: str) -> torch.Tensor:
    """Args: last_hidden ``[B, S, H]``, attention_mask ``[B, S]``, pooled ``[B, H]`` or None. Returns ``[B, H]``."""
    if mode == "pooler":
        assert pooled is not None, "pooler pooling needs a model with a pooler"
        return pooled
    if mode == "cls":
        return last_hidden[:, 0]
    mask = attention_mask.to(last_hidden.dtype).unsqueeze(-1)
    if mode == "mean":
        return (last_hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
    if mode == "max":
        return last_hidden.masked_fill(mask == 0, -1e9).max(1).values
    raise AssertionError(f"unknown pooling mode {mode}")
