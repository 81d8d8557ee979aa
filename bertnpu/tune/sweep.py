"""Sweep quantization configs on STS-B validation, cache every result on disk, and recommend one."""

from __future__ import annotations

import copy
import csv
import hashlib
import io
import json
import os
from itertools import product
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
from tqdm.auto import tqdm

from ..artifacts import atomic_write_json, atomic_write_text
from ..model.sentence_encoder import SentenceEncoder
from ..model.npu_part import NpuEncoder
from .error_analysis import SQNR_SENTENCES, site_sqnr
from .evaluate import evaluate_sts, unique_sentences
from ..model.load import LoadedModel
from ..quant.config import QuantConfig
from ..quant.simulate import quantize_weights_, simulate_int8
from ..data.stsb import StsPairs

PERCENTILES = (0.99, 0.999, 0.9999, 1.0)
TOPK_RATIOS = (0.001, 0.01, 0.1)


def config_grid(base: QuantConfig = QuantConfig(), percentiles: Sequence[float] = PERCENTILES, topk_ratios: Sequence[float] = TOPK_RATIOS,
                modes: Sequence[int] = (1,), methods: Optional[Sequence[int]] = None) -> list[QuantConfig]:
    """Every combination; modes other than 1 ignore percentile/topk, so they appear once each."""
    configs, seen = [], set()
    for method, mode, p, r in product(methods or (base.method,), modes, percentiles, topk_ratios):
        cfg = base.with_(method=method, mode=mode, percentile=p if mode == 1 else base.percentile, topk_ratio=r if mode == 1 else base.topk_ratio)
        if cfg not in seen:
            seen.add(cfg)
            configs.append(cfg)
    return configs


def _cache_key(cfg: QuantConfig, stats, pairs: StsPairs) -> str:
    ident = json.dumps({"config": cfg.to_dict(), "model": stats.meta.get("model_sha256"), "calibration": stats.meta.get("calibration_sha256"),
                        "split": pairs.split, "pairs": len(pairs)}, sort_keys=True)
    return hashlib.sha256(ident.encode()).hexdigest()[:20]


def _read_cache(path: Optional[Path]) -> dict[str, dict]:
    rows = {}
    if path is not None and path.is_file():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
                rows[row["key"]] = row
            except (json.JSONDecodeError, KeyError):
                continue  # a line cut by an interrupt: recompute that config
    return rows


def sweep(model: LoadedModel, stats, pairs: StsPairs, configs: Sequence[QuantConfig], *, cache: Optional[str | os.PathLike] = None,
          progress: bool = True) -> list[dict]:
    """Evaluate every config on ``pairs``; each finished config is appended to ``cache`` (JSON lines).

    An interrupted sweep resumes from the cache. Rows: the config's fields plus
    ``spearman``, ``pearson`` and ``mean_sqnr_db`` (over the first 64 unique sentences).
    """
    cache_path = Path(cache) if cache is not None else None
    done = _read_cache(cache_path)
    sentences, _, _ = unique_sentences(pairs)
    probe = sentences[:SQNR_SENTENCES]
    weights_by_bits: dict[int, NpuEncoder] = {}
    rows = []
    bar = tqdm(configs, desc="sweep", disable=not progress)
    for cfg in bar:
        key = _cache_key(cfg, stats, pairs)
        if key in done:
            rows.append(done[key])
            continue
        bar.set_postfix_str(cfg.label())
        if cfg.bits not in weights_by_bits:
            weights_by_bits[cfg.bits] = quantize_weights_(copy.deepcopy(NpuEncoder(model.bert)), cfg.bits)
        sim = simulate_int8(model, stats, cfg, encoder=weights_by_bits[cfg.bits])
        result = evaluate_sts(sim.encoder_for(), pairs)
        sqnr = [v for v in site_sqnr(model, sim, probe).values() if np.isfinite(v)]
        row = {**cfg.to_dict(), "spearman": result["spearman"], "pearson": result["pearson"],
               "mean_sqnr_db": float(np.mean(sqnr)), "split": pairs.split, "key": key}
        rows.append(row)
        if cache_path is not None:
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            with open(cache_path, "a") as fh:  # one complete line per config
                fh.write(json.dumps(row, sort_keys=True) + "\n")
    return rows


def write_sweep_table(rows: list[dict], out_dir: str | os.PathLike, *, force: bool = False) -> tuple[Path, Path]:
    """``sweep.csv`` and ``sweep.json`` in ``out_dir``, written atomically."""
    out_dir = Path(out_dir)
    columns = ["method", "output", "mode", "percentile", "topk_ratio", "bits", "spearman", "pearson", "mean_sqnr_db", "split"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return (atomic_write_text(out_dir / "sweep.csv", buf.getvalue(), force=force),
            atomic_write_json(out_dir / "sweep.json", [{k: r[k] for k in columns} for r in rows], force=force))


def best_config(rows: list[dict]) -> QuantConfig:
    """The config with the highest Spearman in ``rows``."""
    best = max(rows, key=lambda r: r["spearman"])
    return QuantConfig.from_dict({k: best[k] for k in ("method", "output", "mode", "percentile", "topk_ratio", "bits")})


def recommend(model: LoadedModel, stats, validation_rows: list[dict], test_pairs: StsPairs, progress: bool = False) -> dict:
    """Pick the best config on validation, then report it once on test next to FP32 and the tutorial default."""
    chosen = best_config(validation_rows)
    tutorial = QuantConfig()
    fp32 = evaluate_sts(SentenceEncoder(model, progress=progress), test_pairs)
    result = {"config": chosen.to_dict(), "validation_spearman": max(r["spearman"] for r in validation_rows),
              "fp32": {"spearman": fp32["spearman"], "pearson": fp32["pearson"]}, "split": test_pairs.split}
    for label, cfg in (("tutorial_default", tutorial), ("recommended", chosen)):
        r = evaluate_sts(simulate_int8(model, stats, cfg).encoder_for(progress=progress), test_pairs)
        result[label] = {"config": cfg.to_dict(), "spearman": r["spearman"], "pearson": r["pearson"]}
    return result
