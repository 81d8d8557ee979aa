"""Where INT8 hurts: per-site SQNR, per-site sensitivity, and embedding fidelity beyond the task score."""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model.sentence_encoder import SentenceEncoder
from ..model.npu_part import NpuEncoder
from .evaluate import cosine_rows, evaluate_sts, unique_sentences
from ..model.load import LoadedModel
from ..quant.config import QuantConfig
from ..quant.simulate import Int8Simulation, simulate_int8
from ..data.stsb import StsPairs

SQNR_SENTENCES = 64  # sentences probed for per-site SQNR in sweeps and the Simulate panel


def _valid(x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
    if x.dim() == 2:
        return x
    if x.dim() == 4:
        return x.permute(0, 2, 3, 1)[token_mask[:, :, None] & token_mask[:, None, :]]
    return x[token_mask]


class SiteReference:
    """The FP32 side of :func:`site_sqnr` for fixed sentences, computed once and reusable across simulations.

    Holds each batch's CPU-part output and mask, every site's FP32 values at real tokens (float32,
    exact in float64) and each site's ``sum x^2`` in float64: a Simulate press or a sweep then
    runs only the simulated forward. ``reference`` is the FP32 NPU part (the transformed one when
    the recipe has transformations); ``transforms`` names them, checked against each simulation.
    """

    def __init__(self, model: LoadedModel, sentences: Sequence[str], reference: Optional[NpuEncoder] = None, batch_size: int = 32,
                 transforms: Sequence[str] = ()):
        self.sentences, self.transforms = list(sentences), tuple(transforms)
        fp32 = reference if reference is not None else NpuEncoder(model.bert)
        self.probe = SentenceEncoder(model, batch_size=batch_size, progress=False)
        self.batches: list[tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]] = []
        self.signal: dict[str, float] = {}
        with torch.inference_mode():
            for batch in self.probe.batches(self.sentences):
                hidden = self.probe.embedding(batch.input_ids, batch.token_type_ids)
                recorded: dict[str, torch.Tensor] = {}

                def record(site, x, mask):
                    recorded[site] = _valid(x, mask)
                    return x

                fp32(hidden, batch.attention_mask, tap=record)
                for site, ref in recorded.items():
                    ref64 = ref.double()
                    self.signal[site] = self.signal.get(site, 0.0) + float((ref64 * ref64).sum())
                self.batches.append((hidden, batch.attention_mask, recorded))

    def matches(self, sim: Int8Simulation, sentences: Sequence[str]) -> bool:
        return self.sentences == list(sentences) and self.transforms == tuple(getattr(sim.encoder, "transforms", ()) or ())


def site_sqnr(model: LoadedModel, sim: Int8Simulation, sentences: Sequence[str], batch_size: int = 32, progress: bool = False,
              reference: Optional[SiteReference] = None) -> dict[str, float]:
    """SQNR in dB, ``10 log10(sum x^2 / sum (x - x_int8)^2)``, of every site over ``sentences``.

    The INT8 activation includes the error propagated from earlier sites, as on the device.
    ``reference``: the FP32 side already computed for these sentences (:class:`SiteReference`,
    e.g. kept across Simulate presses or sweep cells); the same numbers, one forward instead of two.
    """
    if reference is None or not reference.matches(sim, sentences):
        transforms = tuple(getattr(sim.encoder, "transforms", ()) or ())
        reference = SiteReference(model, sentences, getattr(sim, "reference", None), batch_size, transforms)
    noise: dict[str, float] = {}
    with torch.inference_mode():
        for hidden, attention_mask, recorded in tqdm(reference.batches, desc="SQNR", disable=not progress, leave=False):

            def compare(site, x, mask):
                y = sim.tap(site, x, mask) if sim.tap is not None else x
                diff = _valid(y, mask).double().sub_(recorded[site])  # (y - x)^2 = (x - y)^2 exactly; float32 -> float64 is exact
                noise[site] = noise.get(site, 0.0) + float(diff.mul_(diff).sum())
                return y

            sim.encoder(hidden, attention_mask, tap=compare)
    signal = reference.signal
    return {s: (10 * math.log10(signal[s] / noise[s]) if noise[s] > 0 else float("inf")) for s in noise}


def site_sensitivity(
    model: LoadedModel, stats, config: QuantConfig, pairs: StsPairs, sites: Optional[Iterable[str]] = None, progress: bool = True,
) -> list[dict]:
    """STS Spearman delta against FP32 when quantizing only one site, and all but that site.

    "only" quantizes that activation site alone (FP32 weights); "all but" quantizes the
    weights and every other site. Rows are sorted by how much keeping the site in FP32
    recovers (``all_but_delta - full_delta``), largest first.
    """
    names = list(sites) if sites is not None else [s.name for s in stats.sites]
    fp32 = evaluate_sts(SentenceEncoder(model, progress=False), pairs)["spearman"]
    full = evaluate_sts(simulate_int8(model, stats, config).encoder_for(), pairs)["spearman"]
    rows = []
    for name in tqdm(names, desc="sensitivity", disable=not progress, leave=False):
        others = [n for n in stats.observers if n != name]
        only = simulate_int8(model, stats, config, keep_fp32=others, quantize_weights=False)
        all_but = simulate_int8(model, stats, config, keep_fp32=[name])
        only_s = evaluate_sts(only.encoder_for(), pairs)["spearman"]
        all_but_s = evaluate_sts(all_but.encoder_for(), pairs)["spearman"]
        rows.append({"site": name, "only_delta": only_s - fp32, "all_but_delta": all_but_s - fp32,
                     "recovered": all_but_s - full, "fp32": fp32, "int8": full})
    rows.sort(key=lambda r: -r["recovered"])
    return rows


def neighbour_recall(reference: np.ndarray, other: np.ndarray, k: int = 10) -> float:
    """Mean fraction of each row's ``k`` nearest neighbours (cosine, itself excluded) in ``reference`` found in ``other``."""
    def knn(e):
        e = e / np.linalg.norm(e, axis=1, keepdims=True).clip(min=1e-12)
        sim = e @ e.T
        np.fill_diagonal(sim, -np.inf)
        return np.argpartition(-sim, k, axis=1)[:, :k]

    a, b = knn(reference.astype(np.float64)), knn(other.astype(np.float64))
    return float(np.mean([len(set(x) & set(y)) / k for x, y in zip(a, b)]))


def fidelity_from_embeddings(a: np.ndarray, b: np.ndarray, sentences: Sequence[str], rows1: np.ndarray, rows2: np.ndarray,
                             pairs: StsPairs, k: int = 10, worst: int = 10) -> dict:
    """Fidelity of INT8 embeddings ``b`` to FP32 ``a`` (both ``[n_sentences, hidden]``, rows of ``unique_sentences``)."""
    cos = cosine_rows(a, b)
    pair_fp32 = cosine_rows(a[rows1], a[rows2])
    pair_int8 = cosine_rows(b[rows1], b[rows2])
    change = np.abs(pair_int8 - pair_fp32)
    order = np.argsort(cos)[:worst]
    pair_order = np.argsort(-change)[:worst]
    return {
        "cosine": cos, "cosine_mean": float(cos.mean()), "cosine_min": float(cos.min()), "cosine_p05": float(np.percentile(cos, 5)),
        "worst_sentences": [{"sentence": sentences[i], "cosine": float(cos[i])} for i in order],
        "worst_pairs": [{"sentence1": pairs.sentence1[i], "sentence2": pairs.sentence2[i], "gold": float(pairs.scores[i]),
                         "cos_fp32": float(pair_fp32[i]), "cos_int8": float(pair_int8[i])} for i in pair_order],
        f"recall@{k}": neighbour_recall(a, b, k),
    }


def embedding_fidelity(fp32_encode, int8_encode, pairs: StsPairs, k: int = 10, worst: int = 10) -> dict:
    """How close INT8 embeddings stay to FP32 over the split's sentences.

    Returns per-sentence ``cosine`` (FP32 vs INT8) array and its summary, the ``worst``
    sentences and pairs (largest change of pair similarity), and nearest-neighbour ``recall@k``.
    """
    sentences, rows1, rows2 = unique_sentences(pairs)
    a, b = np.asarray(fp32_encode(sentences)), np.asarray(int8_encode(sentences))
    return fidelity_from_embeddings(a, b, sentences, rows1, rows2, pairs, k, worst)
