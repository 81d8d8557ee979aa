"""Where INT8 hurts: per-site SQNR, per-site sensitivity, and embedding fidelity beyond the task score."""

from __future__ import annotations

import math
from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..model.sentence_encoder import SentenceEncoder
from ..model.npu_part import NpuEncoder, with_int_inputs
from .evaluate import cosine_rows, sts_scores, unique_sentences
from ..model.load import LoadedModel
from ..quant.config import QuantConfig
from ..quant.recipe import Recipe
from ..quant.sites import site_start
from ..quant.simulate import Simulation, simulate
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
        self.orders: list[np.ndarray] = []  # each batch's rows in ``sentences``
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
                self.orders.append(batch.order)

    def matches(self, sim: Simulation, sentences: Sequence[str]) -> bool:
        return self.sentences == list(sentences) and self.transforms == tuple(getattr(sim.encoder, "transforms", ()) or ())


def site_sqnr(model: LoadedModel, sim: Simulation, sentences: Sequence[str], batch_size: int = 32, progress: bool = False,
              reference: Optional[SiteReference] = None, embeddings: Optional[np.ndarray] = None) -> dict[str, float]:
    """SQNR in dB, ``10 log10(sum x^2 / sum (x - x_int8)^2)``, of every site over ``sentences``.

    The INT8 activation includes the error propagated from earlier sites, as on the device.
    ``reference``: the FP32 side already computed for these sentences (:class:`SiteReference`,
    e.g. kept across Simulate presses or sweep cells); the same numbers, one forward instead of two.
    ``embeddings`` (``[len(sentences), hidden]``, optional) receives the simulated sentence embeddings
    of the same forward (the Simulate panel encodes the probe sentences only once).
    """
    if reference is None or not reference.matches(sim, sentences):
        transforms = tuple(getattr(sim.encoder, "transforms", ()) or ())
        reference = SiteReference(model, sentences, getattr(sim, "reference", None), batch_size, transforms)
    noise: dict[str, float] = {}
    with torch.inference_mode():
        for b, (hidden, attention_mask, recorded) in enumerate(tqdm(reference.batches, desc="SQNR", disable=not progress, leave=False)):

            def compare(site, x, mask):
                y = sim.tap(site, x, mask) if sim.tap is not None else x
                diff = _valid(y, mask).double().sub_(recorded[site])  # (y - x)^2 = (x - y)^2 exactly; float32 -> float64 is exact
                noise[site] = noise.get(site, 0.0) + float(diff.mul_(diff).sum())
                return y

            last, pooled = sim.encoder(hidden, attention_mask, tap=with_int_inputs(compare, getattr(sim.tap, "int_input", None)))
            if embeddings is not None:
                from ..model.pooling import pool

                embeddings[reference.orders[b]] = pool(last, attention_mask, pooled, model.pooling.mode).float().numpy()
    signal = reference.signal
    return {s: (10 * math.log10(signal[s] / noise[s]) if noise[s] > 0 else float("inf")) for s in noise}


def site_sensitivity(
    model: LoadedModel, stats, config: QuantConfig | Recipe, pairs: StsPairs, sites: Optional[Iterable[str]] = None, progress: bool = True,
    batch_size: int = 64,
) -> list[dict]:
    """STS Spearman delta against FP32 when quantizing only one site, and all but that site.

    "only" quantizes that activation site alone (FP32 weights); "all but" quantizes the
    weights and every other site. Rows are sorted by how much keeping the site in FP32
    recovers (``all_but_delta - full_delta``), largest first.

    One pass over the split's batches: each batch runs FP32 and the full simulation once,
    keeping the hidden state entering each analysed site's layer; every variant then runs only
    from that layer on (the layers before it are identical to FP32's, or to the full
    simulation's). A last-layer site costs one layer, not the whole encoder. One progress bar
    counts the batches (removed when done).
    """
    from ..errors import BertnpuError
    from ..model.pooling import pool

    info = {s.name: s for s in stats.sites}
    names = list(sites) if sites is not None else list(info)
    unknown = [n for n in names if n not in info]
    if unknown:
        raise BertnpuError(f"Unknown site(s) {', '.join(unknown)} for site_sensitivity; list the sites with `bertnpu sites`.")
    full = simulate(model, stats, config)
    fp32_encoder = full.reference if full.reference is not None else NpuEncoder(model.bert)
    layers = fp32_encoder.num_layers
    # a transformed encoder maps values inside its tap, so its layer inputs cannot be taken from a tap: run it whole
    reuse = not tuple(getattr(full.encoder, "transforms", ()) or ())
    starts = {n: max(site_start(n, layers), 0) if reuse else 0 for n in names}  # 0: the whole encoder, its input tap included
    boundaries = {f"layer.{s - 1}.ffn.layernorm.out": s for s in set(starts.values()) if s > 0}

    def only(name):
        return lambda site, x, mask: full.tap(site, x, mask) if site == name else x

    def all_but(name):
        return with_int_inputs(lambda site, x, mask: x if site == name else full.tap(site, x, mask),
                               lambda site: None if site == name else full.tap.int_input(site))

    sentences, rows1, rows2 = unique_sentences(pairs)
    probe = SentenceEncoder(model, batch_size=batch_size, progress=False)
    hidden_size = model.config.hidden_size
    emb = {key: np.zeros((len(sentences), hidden_size), dtype=np.float32) for key in
           ["fp32", "int8"] + [(kind, n) for n in names for kind in ("only", "all_but")]}
    with torch.inference_mode():
        for batch in tqdm(probe.batches(sentences), desc=f"sensitivity of {len(names)} site(s)", unit="batch", disable=not progress, leave=False):
            hidden = probe.embedding(batch.input_ids, batch.token_type_ids)
            mask = batch.attention_mask
            entering: dict[str, dict[int, torch.Tensor]] = {"fp32": {0: hidden}, "int8": {0: hidden}}

            def recorder(kind, tap):
                def record(site, x, token_mask):
                    y = tap(site, x, token_mask) if tap is not None else x
                    if site in boundaries:
                        entering[kind][boundaries[site]] = y
                    return y
                return with_int_inputs(record, getattr(tap, "int_input", None))

            for kind, encoder, tap in (("fp32", fp32_encoder, None), ("int8", full.encoder, full.tap)):
                last, pooled = encoder(hidden, mask, tap=recorder(kind, tap))
                emb[kind][batch.order] = pool(last, mask, pooled, model.pooling.mode).float().numpy()
            for n in names:
                for kind, encoder, base, tap in (("only", fp32_encoder, "fp32", only(n)), ("all_but", full.encoder, "int8", all_but(n))):
                    resume = {"start": starts[n]} if starts[n] else {}  # a transformed encoder runs whole (no start argument)
                    last, pooled = encoder(entering[base][starts[n]], mask, tap=tap, **resume)
                    emb[kind, n][batch.order] = pool(last, mask, pooled, model.pooling.mode).float().numpy()

    def spearman(key) -> float:
        return sts_scores(emb[key], rows1, rows2, pairs.scores)["spearman"]

    fp32, int8 = spearman("fp32"), spearman("int8")
    rows = []
    for n in names:
        only_s, all_but_s = spearman(("only", n)), spearman(("all_but", n))
        rows.append({"site": n, "only_delta": only_s - fp32, "all_but_delta": all_but_s - fp32,
                     "recovered": all_but_s - int8, "fp32": fp32, "int8": int8})
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
