"""Sweep quantization recipes on STS-B validation, cache every result on disk, and recommend one.

Two strategies give the same kind of rows:

* ``fast`` (default): candidates whose clip ranges are identical on every site (after the
  profile's bit widths; compared on the simulator's quantization plans, not on the knobs) share
  one evaluation; a cheap proxy (mean cosine between FP32 and simulated embeddings of a few
  hundred validation sentences, the FP32 embeddings computed once) ranks every distinct range
  set; only the best ``confirm`` go to the full split.
* ``exhaustive``: every distinct range set is scored on the full split (the reference path; its
  Spearman values are the ones the heatmap of an every-cell sweep would show).

Every cell of the grid gets a row; a cell that reuses another's evaluation names it in
``shares_with``, and cells never scored on the full split have ``spearman`` None.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import warnings
from dataclasses import dataclass
from itertools import product
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..artifacts import atomic_write_json, atomic_write_text
from ..data.stsb import StsPairs
from ..errors import BertnpuError, BertnpuWarning
from ..results_log import ResultLog, cache_key
from ..schema import Field, Schema
from ..model.load import LoadedModel
from ..model.sentence_encoder import SentenceEncoder
from ..quant.config import METHODS, MODES, QuantConfig
from ..quant.recipe import Recipe
from ..memory import release_free_memory
from ..quant.simulate import Simulation, simulate
from .error_analysis import SQNR_SENTENCES, SiteReference, site_sqnr
from .evaluate import cosine_rows, evaluate_sts, sts_scores, unique_sentences

PERCENTILES = (0.99, 0.999, 0.9999, 1.0)
TOPK_RATIOS = (0.001, 0.01, 0.1)
STRATEGIES = ("fast", "exhaustive")
PROXIES = ("cosine", "spearman")
PROXY_SENTENCES = 256  # validation sentences the proxy encodes per candidate
CONFIRM = 4  # best distinct range sets (by proxy) scored on the full split
# MaxPercentile cells of the wide search: by bertnpu's definition only the clipped fraction
# r(1-p) matters, so four cells span 1e-6 .. 1e-3 without repeating one another
WIDE_MODE1_CELLS = ((0.9999, 0.01), (0.999, 0.01), (0.99, 0.01), (0.99, 0.1))
TABLE_COLUMNS = ("method", "output", "mode", "percentile", "topk_ratio", "bits", "spearman", "spearman_ci_lo", "spearman_ci_hi", "pearson",
                 "mean_sqnr_db", "proxy_cosine", "proxy_spearman", "confirmed", "diff_to_best", "diff_to_best_ci_lo", "diff_to_best_ci_hi",
                 "tied_with_best", "knobs_from_default", "recommended", "shares_with", "split")
# the recommendation among the cells tied with the best (see tied_rows / recommend_index)
RECOMMENDATION_RULE = ("among the cells statistically tied with the best (the paired 95 % bootstrap interval of their Spearman difference "
                       "to the best contains 0), the one with the fewest knobs changed from the tutorial's config; ties broken by the higher Spearman")
KNOBS = ("method", "output", "mode", "percentile", "topk_ratio", "bits")
SEARCHES = ("grid", "wide")
# the sweep's own knobs (one value list per calibration knob, and the fast strategy's two): each search or strategy reads
# some of them (ignored_knobs); check_sweep_knobs validates them and refuses those the choice would ignore
GRID_KNOBS = ("percentiles", "topk_ratios", "modes", "methods", "outputs")
STRATEGY_KNOBS = ("confirm", "proxy_sentences")
SWEEP_OUTPUTS = (0, 1)  # output 2 (sigmoid-based) is not modelled by the simulator (quant.simulate refuses it)


def config_grid(base: QuantConfig = QuantConfig(), percentiles: Sequence[float] = PERCENTILES, topk_ratios: Sequence[float] = TOPK_RATIOS,
                modes: Sequence[int] = (1,), methods: Optional[Sequence[int]] = None, outputs: Optional[Sequence[int]] = None) -> list[QuantConfig]:
    """Every combination; modes other than 1 ignore percentile/topk, so they appear once each."""
    configs, seen = [], set()
    for method, output, mode, p, r in product(methods or (base.method,), outputs or (base.output,), modes, percentiles, topk_ratios):
        cfg = base.with_(method=method, output=output, mode=mode, percentile=p if mode == 1 else base.percentile,
                         topk_ratio=r if mode == 1 else base.topk_ratio)
        if cfg not in seen:
            seen.add(cfg)
            configs.append(cfg)
    return configs


def wide_grid(base: QuantConfig = QuantConfig(), methods: Sequence[int] = (0, 1, 2, 3), outputs: Sequence[int] = (0, 1),
              cells: Sequence[tuple[float, float]] = WIDE_MODE1_CELLS) -> list[QuantConfig]:
    """The wide default search: methods 0-3 x outputs 0/1 x (Max, MaxPercentile ``cells``, Histogram).

    Example:
        >>> len(wide_grid())  # 4 methods x 2 outputs x (1 + 4 + 1)
        48
    """
    configs = []
    for method, output in product(methods, outputs):
        one = base.with_(method=method, output=output)
        configs.append(one.with_(mode=0))
        configs += [one.with_(mode=1, percentile=p, topk_ratio=r) for p, r in cells]
        configs.append(one.with_(mode=2))
    return configs


# why a knob goes unread, and the choice that would read it (a key of Spelling.choose)
_UNREAD = {
    "wide": ("the wide search scores its own cells (Max, four MaxPercentile percentile x topk_ratio cells, Histogram)", "grid"),
    "no mode 1": ("only MaxPercentile (mode 1) reads percentiles and topk ratios, and the grid's modes leave it out", "mode 1"),
    "exhaustive": ("the exhaustive strategy scores every distinct range set on the full split, with no proxy ranking", "fast"),
}


def ignored_knobs(search: str, strategy: str, modes: Optional[Sequence[int]] = None) -> dict[str, str]:
    """The sweep knobs (:data:`GRID_KNOBS`, :data:`STRATEGY_KNOBS`) that ``search`` and ``strategy`` never read, each
    with the reason's name (``"wide"``, ``"no mode 1"``, ``"exhaustive"``).

    * ``wide``: percentiles, topk_ratios and modes (its cells are :data:`WIDE_MODE1_CELLS` under modes 0-2);
    * ``grid`` whose ``modes`` lack 1: percentiles and topk_ratios (only MaxPercentile reads them; ``modes`` None is mode 1);
    * ``exhaustive``: confirm and proxy_sentences (no proxy ranking).

    methods and outputs are read by both searches.

    Example:
        >>> sorted(ignored_knobs("wide", "exhaustive"))
        ['confirm', 'modes', 'percentiles', 'proxy_sentences', 'topk_ratios']
        >>> ignored_knobs("grid", "fast", modes=(0, 2))
        {'percentiles': 'no mode 1', 'topk_ratios': 'no mode 1'}
    """
    assert search in SEARCHES and strategy in STRATEGIES, (search, strategy)
    ignored = {}
    if search == "wide":
        ignored.update(dict.fromkeys(("percentiles", "topk_ratios", "modes"), "wide"))
    elif modes is not None and 1 not in modes:
        ignored.update(dict.fromkeys(("percentiles", "topk_ratios"), "no mode 1"))
    if strategy == "exhaustive":
        ignored.update(dict.fromkeys(STRATEGY_KNOBS, "exhaustive"))
    return ignored


def read_knobs(search: str, strategy: str, knobs: Mapping[str, Any]) -> dict[str, Any]:
    """``search``, ``strategy`` and those of ``knobs`` they read (:func:`ignored_knobs`): what a cache key of the sweep holds,
    so two runs that differ only in an ignored knob share their result.

    Example:
        >>> read_knobs("wide", "fast", {"percentiles": (0.99,), "methods": (0, 1), "confirm": 4})
        {'search': 'wide', 'strategy': 'fast', 'methods': (0, 1), 'confirm': 4}
    """
    ignored = ignored_knobs(search, strategy, knobs.get("modes"))
    return {"search": search, "strategy": strategy, **{k: v for k, v in knobs.items() if k not in ignored}}


@dataclass(frozen=True)
class Spelling:
    """How a caller's user writes the sweep's knobs, so a refusal names the option they typed and the fix in their words.

    ``knob``: a knob's name as written (``"{dashed}"`` is the name with dashes, ``"{name}"`` as is), e.g. ``"--{dashed}"``
    or ``"RunConfig.{name}"``; ``unset``: how to leave it out (``"drop {knob}"``); ``choose``: how to make the choice that
    reads it (keys ``"grid"``, ``"fast"``, ``"mode 1"``); ``with_value``: a refusal shows the ignored value too.
    """

    knob: str
    unset: str
    choose: Mapping[str, str]
    with_value: bool = False  # a config's field, yes; an option's value is on the command line already

    def name(self, knob: str) -> str:
        return self.knob.format(name=knob, dashed=knob.replace("_", "-"))

    @classmethod
    def fields_of(cls, owner: str) -> "Spelling":
        """The spelling of a config dataclass's fields, e.g. ``Spelling.fields_of("RunConfig")``."""
        return cls(f"{owner}.{{name}}", "leave {knob} out", {"grid": "use search='grid'", "fast": "use strategy='fast'",
                                                             "mode 1": f"add 1 to {owner}.modes"}, with_value=True)


CLI_SPELLING = Spelling("--{dashed}", "drop {knob}", {"grid": "drop --wide", "fast": "use --strategy fast", "mode 1": "add 1 to --modes"})


def _check_values(name: str, values: Any, spelling: Spelling) -> None:
    knob = spelling.name(name)
    if name in STRATEGY_KNOBS:
        if isinstance(values, bool) or not isinstance(values, int) or values < 1:
            raise BertnpuError(f"{knob}={values!r} is invalid; give a whole number of at least 1 (the default is "
                               f"{CONFIRM if name == 'confirm' else PROXY_SENTENCES}).")
        return
    example = {"percentiles": "0.99, 0.999, 1.0", "topk_ratios": "0.001, 0.01, 0.1", "modes": "0, 1, 2", "methods": "0, 1",
               "outputs": "0, 1"}[name]
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise BertnpuError(f"{knob}={values!r} is invalid; give one or more values, e.g. {example}.")
    allowed = {"modes": tuple(MODES), "methods": tuple(METHODS), "outputs": SWEEP_OUTPUTS}.get(name)
    for v in values:
        if allowed is not None:
            if isinstance(v, bool) or not isinstance(v, int) or v not in allowed:
                extra = " (output 2, sigmoid-based, is not modelled by the simulator)" if name == "outputs" and v == 2 else ""
                raise BertnpuError(f"{knob} holds {v!r}, which is not one of {', '.join(map(str, allowed))}{extra}; give e.g. {example}.")
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v <= 1:
            raise BertnpuError(f"{knob} holds {v!r}, which lies outside (0, 1]; give e.g. {example}.")


def check_sweep_knobs(search: str, strategy: str, knobs: Mapping[str, Any], given: Iterable[str] = (),
                      spelling: Spelling = CLI_SPELLING) -> None:
    """The one check of the sweep's knobs, before any model is loaded: each value in ``knobs`` (None: the default) in range
    and of the right type, and no knob of ``given`` (those the user set) ignored by ``search`` / ``strategy``.

    Raises one :class:`~bertnpu.errors.BertnpuError` sentence naming the option as ``spelling`` writes it and the fix.

    Example:
        >>> check_sweep_knobs("wide", "fast", {"percentiles": (0.99,)}, given=("percentiles",))
        Traceback (most recent call last):
        ...
        bertnpu.errors.BertnpuError: --percentiles would be ignored: the wide search scores its own cells (Max, four MaxPercentile percentile x topk_ratio cells, Histogram); drop --percentiles or drop --wide.
    """
    if search not in SEARCHES:
        raise BertnpuError(f"{spelling.name('search')}={search!r} is invalid; use one of {', '.join(SEARCHES)}.")
    if strategy not in STRATEGIES:
        raise BertnpuError(f"{spelling.name('strategy')}={strategy!r} is invalid; use one of {', '.join(STRATEGIES)}.")
    for name, values in knobs.items():
        assert name in GRID_KNOBS + STRATEGY_KNOBS, name
        if values is not None:
            _check_values(name, values, spelling)
    ignored = ignored_knobs(search, strategy, knobs.get("modes"))
    for name in given:
        if name in ignored:
            why, choice = _UNREAD[ignored[name]]
            knob = spelling.name(name)
            shown = f"{knob}={knobs[name]!r}" if spelling.with_value and name in knobs else knob
            raise BertnpuError(f"{shown} would be ignored: {why}; {spelling.unset.format(knob=knob)} or {spelling.choose[choice]}.")


def replaced_base_knobs(base: QuantConfig, search: str, methods: Optional[Sequence[int]] = None,
                        outputs: Optional[Sequence[int]] = None) -> list[str]:
    """The base config's calibration knobs, set away from the tutorial's, that every cell of the search replaces.

    mode, percentile and topk_ratio always (each cell brings its own); method and output where the search brings its own
    list (the wide search always; the grid when ``methods`` / ``outputs`` are given). bits is always kept.

    Example:
        >>> replaced_base_knobs(QuantConfig(method=0, percentile=0.99), "grid")
        ['percentile']
        >>> replaced_base_knobs(QuantConfig(method=0, percentile=0.99), "wide")
        ['method', 'percentile']
    """
    tutorial = QuantConfig()
    replaced = ["mode", "percentile", "topk_ratio"]
    if search == "wide" or methods:
        replaced.append("method")
    if search == "wide" or outputs:
        replaced.append("output")
    return [k for k in KNOBS if k in replaced and getattr(base, k) != getattr(tutorial, k)]


def warn_replaced_base(base: QuantConfig, search: str, methods: Optional[Sequence[int]], outputs: Optional[Sequence[int]], source: str) -> None:
    """One :class:`~bertnpu.errors.BertnpuWarning` when :func:`replaced_base_knobs` finds knobs of ``base`` (from ``source``,
    e.g. ``"--config"``) that the search replaces."""
    replaced = replaced_base_knobs(base, search, methods, outputs)
    if replaced:
        warnings.warn(f"{source}'s {', '.join(f'{k}={getattr(base, k)!r}' for k in replaced)} {'is' if len(replaced) == 1 else 'are'} "
                      f"replaced by every cell of the {search} search (its bits, profile, 16-bit sites and transformations are kept).",
                      BertnpuWarning, stacklevel=2)


def _as_recipe(candidate: QuantConfig | Recipe) -> Recipe:
    if isinstance(candidate, Recipe):
        return candidate
    if isinstance(candidate, QuantConfig):
        return Recipe(calibration=candidate)
    raise BertnpuError(f"A sweep candidate is a {type(candidate).__name__}; pass QuantConfig or Recipe objects.")


def _feed(h, value) -> None:
    if isinstance(value, torch.Tensor):
        t = value.detach().to(torch.float64).contiguous()
        h.update(repr(tuple(t.shape)).encode())
        h.update(t.numpy().tobytes())
    elif isinstance(value, float):
        h.update(value.hex().encode())
    elif isinstance(value, (tuple, list)):
        h.update(b"(")
        for v in value:
            _feed(h, v)
        h.update(b")")
    else:
        h.update(repr(value).encode())
    h.update(b";")


def range_signature(sim: Simulation) -> str:
    """Digest of everything a simulation quantizes with: per site its plan (range or per-channel thresholds,
    signed/unsigned, affine or symmetric) and bit width, the weight bits and the transformations.

    Two candidates with equal signatures produce identical embeddings, whatever their knobs say.
    """
    h = hashlib.sha256()
    _feed(h, ("weights", sim.config.bits, tuple(sim.recipe.equivalent_transformation.enabled())))
    tap = sim.tap
    if tap is None:
        _feed(h, "no activation quantization")
        return h.hexdigest()[:20]
    for site in sorted(tap.plans):
        _feed(h, (site, tap.plans[site], tap.site_bits(site)))
    return h.hexdigest()[:20]


def proxy_sample(pairs: StsPairs, sentences: int = PROXY_SENTENCES, seed: int = 0) -> StsPairs:
    """A seeded random subset of ``pairs`` holding about ``sentences`` sentences (two per pair), in file order."""
    return pairs.sample(max(sentences // 2, 2), seed)


class ProxyScorer:
    """The cheap proxy: FP32 embeddings of the sample computed once; each candidate is encoded on the
    sample and scored by mean cosine to FP32 (and Spearman on the sample's pairs)."""

    def __init__(self, model: LoadedModel, sample: StsPairs):
        self.sample = sample
        self.sentences, self.rows1, self.rows2 = unique_sentences(sample)
        self.fp32 = SentenceEncoder(model, progress=False)(self.sentences)

    def __call__(self, sim: Simulation) -> dict[str, float]:
        emb = sim.encoder_for()(self.sentences)
        scores = sts_scores(emb, self.rows1, self.rows2, self.sample.scores)
        return {"proxy_cosine": float(cosine_rows(self.fp32, emb).mean()), "proxy_spearman": scores["spearman"]}


def _ident(signature: str, stats, pairs: StsPairs, extra: dict) -> dict:
    # every input that changes a score: the range set, the model, the calibration, the STS-B contents (not just the
    # split's name); the tool version is part of every key (results_log.cache_key)
    return {"ranges": signature, "model": stats.meta.get("model_sha256"), "calibration": stats.meta.get("calibration_sha256"),
            "split": pairs.split, "pairs": len(pairs), "pairs_sha256": pairs.content_hash(), **extra}


def _cache_rule(row: dict, where: str, fix: str) -> None:
    needed = ("spearman",) if row["kind"] == "full" else ("proxy_cosine", "proxy_spearman")
    if any(name not in row for name in needed):
        raise BertnpuError(f"A {row['kind']} row of {where} lacks {' or '.join(needed)}; {fix}")


# One cached result (the log adds its key; other fields, e.g. pair cosines, pass unchecked); correlations are NaN for constant embeddings.
_CORR = Field((float, type(None)), required=False, low=-1.0, high=1.0, finite=False)
CACHE_ROW = Schema({"kind": Field(str, choices=("proxy", "full")), "spearman": _CORR, "pearson": _CORR,
                    "mean_sqnr_db": Field((float, type(None)), required=False), "proxy_cosine": _CORR, "proxy_spearman": _CORR},
                   rule=_cache_rule)


def sweep_log(path: Optional[str | os.PathLike]) -> ResultLog:
    """The sweep's resumable results at ``path`` (None: in memory only); damaged lines are skipped with one warning."""
    return ResultLog(path, CACHE_ROW, "sweep cache")


def _full_evaluation(model: LoadedModel, sim: Simulation, pairs: StsPairs, probe: Sequence[str], references: dict, progress: bool = False) -> dict:
    result = evaluate_sts(sim.encoder_for(progress=progress), pairs, keep_cosines=True)  # the split's batches: a step of the outer bar takes seconds
    transforms = tuple(getattr(sim.encoder, "transforms", ()) or ())
    if transforms not in references:  # the FP32 side of the SQNR, once per (transformed) reference encoder
        references[transforms] = SiteReference(model, probe, sim.reference, transforms=transforms)
    sqnr = [v for v in site_sqnr(model, sim, probe, reference=references[transforms]).values() if np.isfinite(v)]
    return {"spearman": result["spearman"], "pearson": result["pearson"], "mean_sqnr_db": float(np.mean(sqnr)) if sqnr else None,
            "pair_cosines": result["pair_cosines"].tolist()}  # kept in the cache: ties with the best are paired differences


def knobs_from_default(config: QuantConfig, default: QuantConfig = QuantConfig()) -> int:
    """How many calibration knobs differ from ``default`` (the tutorial's config); percentile and topk_ratio count only
    under MaxPercentile (mode 1), the only mode that reads them."""
    a, b = config.to_dict(), default.to_dict()
    knobs = [k for k in KNOBS if not (k in ("percentile", "topk_ratio") and a["mode"] != 1)]  # unread outside MaxPercentile
    return sum(a[k] != b[k] for k in knobs)


def tie_marks(cosines: dict[str, np.ndarray], spearman: dict[str, float], gold: np.ndarray) -> tuple[str, dict[str, dict]]:
    """Per scored range set: ``spearman_ci``, ``diff_to_best`` (point), ``diff_to_best_ci`` (paired bootstrap over the same
    resampled pairs, :mod:`bertnpu.tune.bootstrap`) and ``tied_with_best`` (that interval contains 0). Returns the best's key too.

    The bootstrap's index matrix and the best's resampled ranks are built once and reused for every candidate."""
    from .bootstrap import bootstrap_for

    best = max(spearman, key=spearman.get)
    boot = bootstrap_for(gold)
    samples = {k: boot.samples(np.asarray(v)) for k, v in cosines.items()}
    marks = {}
    for k in cosines:
        ci = boot.interval(samples[k] - samples[best]) if k != best else [0.0, 0.0]
        marks[k] = {"spearman_ci": boot.interval(samples[k]), "diff_to_best": spearman[k] - spearman[best], "diff_to_best_ci": ci,
                    "tied_with_best": k == best or ci[0] <= 0.0 <= ci[1]}
    return best, marks


def recommend_index(rows: Sequence[dict]) -> Optional[int]:
    """The row :data:`RECOMMENDATION_RULE` picks: fewest ``knobs_from_default`` among ``tied_with_best`` rows, then the
    higher Spearman, then grid order; None when no row was scored on the full split."""
    tied = [i for i, r in enumerate(rows) if r.get("tied_with_best") and r.get("spearman") is not None]
    if not tied:
        return None
    return min(tied, key=lambda i: (rows[i].get("knobs_from_default", 0), -rows[i]["spearman"], i))


def sweep(model: LoadedModel, stats, pairs: StsPairs, configs: Sequence[QuantConfig | Recipe], *, cache: Optional[str | os.PathLike] = None,
          progress: bool = True, strategy: str = "fast", confirm: int = CONFIRM, proxy_sentences: int = PROXY_SENTENCES,
          proxy: str = "cosine", seed: int = 0) -> list[dict]:
    """Score every candidate (QuantConfig or Recipe) on ``pairs``; one row per candidate, in order.

    Results are appended to ``cache`` (a :class:`~bertnpu.results_log.ResultLog`, keyed by the range
    set, the model, the calibration and the pairs' contents) as they finish, so an interrupted sweep resumes.

    Rows: the calibration knobs, ``spearman``/``pearson``/``mean_sqnr_db`` on ``pairs`` (None
    where not scored on the full split), ``spearman_ci`` (95 % paired bootstrap), ``diff_to_best``
    and its paired ``diff_to_best_ci``, ``tied_with_best`` (that interval contains 0),
    ``knobs_from_default``, ``recommended`` (:data:`RECOMMENDATION_RULE`; the ``*_lo``/``*_hi``
    keys repeat the intervals for the CSV), ``proxy_cosine``/``proxy_spearman`` (fast strategy),
    ``confirmed``, ``proxy_rank``, ``range_key``, ``shares_with`` (label of the first cell with
    the same range set), ``split``, ``key``.

    Example:
        >>> rows = sweep(model, stats, load_stsb("validation"), config_grid(methods=(0, 1)))  # doctest: +SKIP
        >>> best_config(rows).label()  # doctest: +SKIP
        'method 1, output 0, MaxPercentile p=0.99 topk=0.1'
    """
    if strategy not in STRATEGIES:
        raise BertnpuError(f"Sweep strategy {strategy!r} is unknown; use one of {', '.join(STRATEGIES)}.")
    if proxy not in PROXIES:
        raise BertnpuError(f"Sweep proxy {proxy!r} is unknown; use one of {', '.join(PROXIES)}.")
    if isinstance(confirm, bool) or not isinstance(confirm, int) or confirm < 1:
        raise BertnpuError(f"Sweep confirm={confirm!r} is invalid; give how many candidates to score on the full split (an integer >= 1, e.g. {CONFIRM}).")
    recipes = [_as_recipe(c) for c in configs]
    log = sweep_log(cache)

    # 1. one simulation per candidate (cheap: ranges only; weights quantized once per bits/transforms)
    sims: list[Simulation] = []
    encoders: dict[tuple, Simulation] = {}
    for recipe in recipes:
        group = (recipe.calibration.bits, tuple(recipe.equivalent_transformation.enabled()))
        first = encoders.get(group)
        sim = simulate(model, stats, recipe) if first is None else simulate(model, stats, recipe, encoder=first.encoder)
        if first is None:
            encoders[group] = sim
        elif sim.reference is None:
            sim = dataclasses.replace(sim, reference=first.reference)
        sims.append(sim)
    signatures = [range_signature(sim) for sim in sims]
    leader: dict[str, int] = {}
    for i, sig in enumerate(signatures):
        leader.setdefault(sig, i)
    distinct = list(leader.values())  # candidate index of each distinct range set, in grid order

    # 2. proxy ranking (fast strategy)
    proxy_scores: dict[str, dict] = {}
    if strategy == "fast":
        sample = proxy_sample(pairs, proxy_sentences, seed)
        scorer: Optional[ProxyScorer] = None
        extra = {"sentences": proxy_sentences, "seed": seed}
        for i in tqdm(distinct, desc="sweep: proxy", disable=not progress, leave=False):
            key = cache_key("proxy", _ident(signatures[i], stats, pairs, extra))
            if key not in log:
                scorer = scorer or ProxyScorer(model, sample)
                log.put(key, {"kind": "proxy", **scorer(sims[i])})  # its encoding pass hands its freed heap back (SentenceEncoder)
            proxy_scores[signatures[i]] = log.get(key)
        metric = f"proxy_{proxy}"
        ranked = sorted(distinct, key=lambda i: -proxy_scores[signatures[i]][metric])
        to_confirm = ranked[:confirm]
    else:
        ranked, to_confirm = list(distinct), list(distinct)

    # 3. the full split
    probe = unique_sentences(pairs)[0][:SQNR_SENTENCES]
    full: dict[str, dict] = {}
    references: dict[tuple, SiteReference] = {}
    bar = tqdm(to_confirm, desc="sweep: full split", disable=not progress, leave=False)  # a finished bar goes (notebooks, rendered pages)
    for i in bar:
        bar.set_postfix_str(recipes[i].calibration.label())
        key = cache_key("full", _ident(signatures[i], stats, pairs, {}))
        scored = log.get(key)
        if scored is None or "pair_cosines" not in scored:  # a result from before the intervals: score it again
            scored = log.put(key, {"kind": "full", **_full_evaluation(model, sims[i], pairs, probe, references, progress=progress)})
            release_free_memory()
        full[signatures[i]] = {**scored, "key": key}

    rank_of = {signatures[i]: r + 1 for r, i in enumerate(ranked)} if strategy == "fast" else {}
    marks = tie_marks({k: v["pair_cosines"] for k, v in full.items()}, {k: v["spearman"] for k, v in full.items()}, pairs.scores)[1] if full else {}
    rows = []
    for i, (recipe, sig) in enumerate(zip(recipes, signatures)):
        scored = full.get(sig, {})
        first = leader[sig]
        mark = marks.get(sig, {})
        ci, dci = mark.get("spearman_ci", [None, None]), mark.get("diff_to_best_ci", [None, None])
        rows.append({**recipe.calibration.to_dict(), "spearman": scored.get("spearman"), "pearson": scored.get("pearson"),
                     "spearman_ci": mark.get("spearman_ci"), "spearman_ci_lo": ci[0], "spearman_ci_hi": ci[1],
                     "diff_to_best": mark.get("diff_to_best"), "diff_to_best_ci": mark.get("diff_to_best_ci"), "diff_to_best_ci_lo": dci[0],
                     "diff_to_best_ci_hi": dci[1], "tied_with_best": mark.get("tied_with_best"),
                     "knobs_from_default": knobs_from_default(recipe.calibration),
                     "mean_sqnr_db": scored.get("mean_sqnr_db"), "proxy_cosine": proxy_scores.get(sig, {}).get("proxy_cosine"),
                     "proxy_spearman": proxy_scores.get(sig, {}).get("proxy_spearman"), "proxy_rank": rank_of.get(sig),
                     "confirmed": sig in full, "range_key": sig, "shares_with": None if first == i else recipes[first].calibration.label(),
                     "split": pairs.split, "key": scored.get("key")})
    pick = recommend_index(rows)
    for i, row in enumerate(rows):
        row["recommended"] = i == pick
    return rows


def evaluation_count(rows: Sequence[dict]) -> dict[str, int]:
    """How many distinct range sets a sweep's rows hold, and how many of them were scored on the full split."""
    sets = {r["range_key"] for r in rows}
    return {"cells": len(rows), "distinct": len(sets), "full": len({r["range_key"] for r in rows if r["confirmed"]})}


def write_sweep_table(rows: list[dict], out_dir: str | os.PathLike, *, force: bool = False) -> tuple[Path, Path]:
    """``sweep.csv`` and ``sweep.json`` in ``out_dir``, written atomically."""
    out_dir = Path(out_dir)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, list(TABLE_COLUMNS), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return (atomic_write_text(out_dir / "sweep.csv", buf.getvalue(), force=force),
            atomic_write_json(out_dir / "sweep.json", [{k: v for k, v in r.items() if k != "key"} for r in rows], force=force))  # every key: nested knobs too


def best_row(rows: Sequence[dict]) -> dict:
    """The row with the highest full-split Spearman (rows not scored on the full split are skipped)."""
    scored = [r for r in rows if r.get("spearman") is not None]
    if not scored:
        raise BertnpuError("No sweep row was scored on the full split; give at least one candidate (and confirm >= 1).")
    return max(scored, key=lambda r: r["spearman"])


def recommended_row(rows: Sequence[dict]) -> dict:
    """The row :data:`RECOMMENDATION_RULE` picks (the ``recommended`` one); rows without tie marks: :func:`best_row`."""
    i = recommend_index(rows)
    return rows[i] if i is not None else best_row(rows)


def best_config(rows: list[dict]) -> QuantConfig:
    """The config of the recommended row of ``rows`` (:data:`RECOMMENDATION_RULE`; the highest Spearman without tie marks)."""
    best = recommended_row(rows)
    return QuantConfig.from_dict({k: best[k] for k in ("method", "output", "mode", "percentile", "topk_ratio", "bits")})
