"""What a 16-bit site costs: the share of activation elements that travel at 16 bits."""

from __future__ import annotations

from typing import Sequence

from ...model.load import LoadedModel
from ...model.sentence_encoder import SentenceEncoder


def activation_elements(model: LoadedModel, sentences: Sequence[str]) -> dict[str, float]:
    """Activation elements per site over ``sentences`` (valid tokens only): the traffic weights."""
    counts: dict[str, float] = {}

    def count(site, x, mask):
        n = int(mask.sum())
        if x.dim() == 4:
            per = (mask.sum(1).double() ** 2).sum().item() * x.shape[1]
        elif x.dim() == 2:
            per = x.numel()
        else:
            per = n * x.shape[-1]
        counts[site] = counts.get(site, 0.0) + per
        return x

    SentenceEncoder(model, tap=count, progress=False)(sentences)
    return counts


def traffic_share(bits: dict[str, int], elements: dict[str, float]) -> float:
    """Share of activation elements that travel at 16 bits."""
    total = sum(elements.values())
    return sum(elements.get(s, 0.0) for s, b in bits.items() if b > 8) / total if total else 0.0
