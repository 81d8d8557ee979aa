"""NPU speed next to the FP32 CPU encoder, measured in the same run: sentences/s and per-sentence latency p50/p95.

One sentence per ``infer`` call, as Mobilint's runtime example and ``QbruntimeEncoder`` do; the time of a
sentence is the whole path a user gets (CPU embedding, ``infer``, pooling). Each core mode the runtime
accepts for this ``.mxq`` is measured (``ModelConfig.set_*_core_mode``; REGULUS supports single and auto
only, per ``mobilint_sdk_facts.md``); a mode it refuses is listed with its reason. ``infer_async`` is not
tried: Mobilint states async inference does not support models with CPU offload, and every bertnpu
``.mxq`` keeps the embeddings on the CPU.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Iterable, Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..errors import BertnpuError
from ..model.load import LoadedModel

ASYNC_NOTE = ("async inference (infer_async) not tried: Mobilint states it does not support models with CPU offload, "
              "and bertnpu's .mxq keeps the embeddings on the CPU")
DOUBLE_NOTE = "qbruntime is bertnpu's TEST DOUBLE: the 'NPU' rows are FP32 on this CPU, not NPU speed"


def timing(seconds: Sequence[float]) -> dict[str, float]:
    """Throughput and latency percentiles of per-sentence times (seconds)."""
    s = np.asarray(seconds, dtype=np.float64)
    total = float(s.sum())
    return {"sentences": int(s.size), "seconds": total, "sentences_per_s": float(s.size / total) if total > 0 else float("inf"),
            "p50_ms": float(np.percentile(s, 50) * 1e3), "p95_ms": float(np.percentile(s, 95) * 1e3)}


def _timed(run: Callable[[Any], Any], items: Sequence[Any], desc: str, progress: bool) -> list[float]:
    times = []
    for item in tqdm(items, desc=desc, disable=not progress, leave=False):
        start = time.perf_counter()
        run(item)
        times.append(time.perf_counter() - start)
    return times


def bench_mxq(model: LoadedModel, mxq: str | os.PathLike, sentences: Sequence[str], *, weights: Optional[str | os.PathLike] = None,
              modes: Iterable[str] = ("auto", "single", "multi", "global4", "global8"), warmup: int = 3, progress: bool = True,
              verbose: bool = False) -> dict[str, Any]:
    """Time the ``.mxq`` (each core mode) and the FP32 CPU encoder on ``sentences``, one sentence at a time.

    Returns ``{"fp32_cpu": timing, "npu": {mode: timing or {"refused": reason}}, "async": note, "test_double": bool, ...}``.

    Example:
        >>> r = bench_mxq(model, "model.mxq", load_stsb("test").sentence1[:200])  # doctest: +SKIP
        >>> r["npu"]["auto"]["sentences_per_s"], r["fp32_cpu"]["sentences_per_s"]  # doctest: +SKIP
    """
    import torch

    from ..model.sentence_encoder import SentenceEncoder, tokenize
    from .npu_runtime import QbruntimeEncoder
    from .preflight import preflight

    sentences = list(sentences)
    if not sentences:
        raise BertnpuError("No sentences to time; pass a split with pairs or a larger --limit.")
    facts = preflight(mxq, hidden_size=model.config.hidden_size, verbose=verbose, model_name=model.name)  # before any timing: one sentence if it cannot run
    ids = tokenize(model, sentences)
    fp32 = SentenceEncoder(model, batch_size=1, progress=False)
    for s in sentences[:warmup]:
        fp32([s])
    result: dict[str, Any] = {"mxq": str(mxq), "sentences": len(sentences), "test_double": facts.is_double, "async": ASYNC_NOTE,
                              "runtime": facts.runtime_version, "devices": list(facts.devices),
                              "fp32_cpu": timing(_timed(lambda s: fp32([s]), sentences, "time FP32 (CPU)", progress)), "npu": {}}
    for mode in modes:
        try:
            with QbruntimeEncoder(model, mxq, weights=weights, progress=False, facts=facts, core_mode=None if mode == "auto" else mode,
                                  verbose=verbose) as npu, torch.inference_mode():
                for x in ids[:warmup]:
                    npu.encode_one(x)
                result["npu"][mode] = timing(_timed(npu.encode_one, ids, f"time NPU ({mode})", progress))
        except BertnpuError as exc:  # a core mode this device or .mxq does not support: say so, measure the others
            result["npu"][mode] = {"refused": str(exc)}
    return result


def format_bench(r: dict[str, Any]) -> str:
    """The benchmark as terminal lines: one row per backend, with the ratio to the FP32 CPU encoder."""
    ref = r["fp32_cpu"]["sentences_per_s"]
    lines = [f"{r['sentences']} STS-B sentences, one per call ({r['mxq']}; qbruntime {r['runtime'] or '?'}, NPUs: {', '.join(r['devices']) or 'none'})",
             f"{'backend':<16} {'sent/s':>9} {'p50 ms':>8} {'p95 ms':>8} {'x FP32':>7}"]

    def row(name: str, t: dict[str, Any]) -> str:
        return f"{name:<16} {t['sentences_per_s']:>9.1f} {t['p50_ms']:>8.2f} {t['p95_ms']:>8.2f} {t['sentences_per_s'] / ref:>7.2f}"

    lines.append(row("FP32 CPU", r["fp32_cpu"]))
    for mode, t in r["npu"].items():
        lines.append(row(f"NPU {mode}", t) if "refused" not in t else f"{'NPU ' + mode:<16} not supported: {t['refused']}")
    lines.append(r["async"])
    if r["test_double"]:
        lines.append(DOUBLE_NOTE)
    return "\n".join(lines)


def bench_summary(model: LoadedModel, mxq: str | os.PathLike, pairs: Any, *, limit: int = 200, progress: bool = True) -> str:
    """Notebook 05's speed panel: :func:`format_bench` on the first ``limit`` unique sentences of ``pairs``, or one
    sentence saying why it cannot run here (no qbruntime, no ``.mxq`` yet, no NPU, a broken file)."""
    from .preflight import panel_answer

    sentences = list(dict.fromkeys(list(pairs.sentence1) + list(pairs.sentence2)))[:limit]
    return panel_answer(mxq, lambda path: format_bench(bench_mxq(model, path, sentences, progress=progress)))
