"""The planner: the cheapest recipe whose simulated STS-B Spearman stays within a tolerance of FP32.

Search (every candidate simulated under one precision profile, ``aries`` by default):

1. **INT8 only**: a small grid of calibration configs, then the equivalent transformations
   (NormConv, Qk, Vo and combinations) on the best config, ranked by the proxy.
2. **16-bit sites, greedily**: starting from the best INT8-only recipe, each step adds the
   site that most improves the *final embeddings* (not the site's own SQNR: a site can look
   fine and still break the softmax after it). The first step tries every site still at 8
   bits; later steps re-try the ``lazy_width`` best of the previous step (lazy greedy).
   After each step the recipe's validation Spearman and mean embedding cosine to FP32 are
   measured; the search stops at the first recipe that is *accepted* (Spearman within
   ``tolerance`` of FP32 and cosine at least ``min_cosine``) or at ``max_sites``.

Why a cosine floor beside the tolerance: STS Spearman is a rank statistic over 1500 pairs; it
moves by about +-0.002 between neighbouring recipes and is already within 0.005 of FP32 while the
embeddings are still visibly off (cosine 0.95), a loss that shows on other data (the test split)
and in retrieval (recall@10). ``min_cosine`` (default 0.99) asks for embeddings close to FP32,
not only a similar ranking; ``0`` turns it off (Spearman tolerance alone).

The proxy is the mean cosine between simulated and FP32 sentence embeddings over the first
``proxy_sentences`` distinct validation sentences. Runs reuse the hidden states before the
layer that a candidate changes (the earlier layers compute the same thing). Every result is
appended to a JSON-lines cache keyed by everything that changes it, so an interrupted plan
resumes. The chosen recipe is confirmed once on the test split and written as ``recipe.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from ..data.stsb import StsPairs
from ..errors import BertnpuError
from ..model.load import LoadedModel
from ..model.npu_part import NpuEncoder
from ..model.pooling import pool
from ..model.sentence_encoder import SentenceEncoder
from ..quant.config import QuantConfig
from ..quant.precision import DEFAULT_PROFILE, PROFILE_NAMES, get_profile, override_no_effect, site_bits, site_role
from ..quant.recipe import EquivalentTransformations, Recipe
from ..quant.simulate import Simulation, simulate
from ..quant.sites import site_start
from ..quant.transforms import SIMULATED, transformed_sites
from ..version import __version__
from .evaluate import cosine_rows, evaluate_sts, recipe_key, sts_scores, unique_sentences

CALIBRATION_CANDIDATES = tuple(
    QuantConfig(method=m, output=out, mode=mode, percentile=p, topk_ratio=r)
    for m in (0, 1, 2, 3)
    for out in (0, 1)
    for mode, p, r in ((0, 0.999, 0.01), (2, 0.999, 0.01), (1, 0.999, 0.01), (1, 0.9999, 0.1))
)
TRANSFORM_CANDIDATES = (("qk",), ("vo",), ("norm_conv",), ("qk", "vo"), ("norm_conv", "qk", "vo"))


@dataclass(frozen=True)
class PlanSpec:
    """What the planner searches and when it stops; validated on creation."""

    profile: str = DEFAULT_PROFILE
    tolerance: float = 0.005
    min_cosine: float = 0.99
    max_sites: int = 8
    proxy_sentences: int = 128
    lazy_width: int = 4
    configs: tuple = CALIBRATION_CANDIDATES
    transforms: tuple = TRANSFORM_CANDIDATES
    top_configs: int = 1
    full_table: bool = False  # True: keep adding sites up to max_sites (the whole Pareto table), then pick
    # False: leave out sites whose 16-bit override was seen to change nothing on the device (LayerNorm outputs,
    # see bertnpu.quant.precision.override_no_effect); True: try them too (what the simulator alone would pick)
    try_layernorm: bool = False
    candidate_roles: tuple = ()  # site roles the 16-bit steps try (e.g. ("ffn.residual",)); empty: every role

    def __post_init__(self) -> None:
        get_profile(self.profile)
        t = self.tolerance
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or not 0 < t < 1:
            raise BertnpuError(f"Tolerance {t!r} is outside (0, 1); give the Spearman drop below FP32 you accept, e.g. 0.005.")
        c = self.min_cosine
        if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) or not 0 <= c < 1:
            raise BertnpuError(f"Minimum cosine {c!r} is outside [0, 1); give the mean embedding cosine to FP32 you require, e.g. 0.99 (0: off).")
        for name in ("max_sites", "proxy_sentences", "lazy_width", "top_configs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if name == "max_sites" else 1):
                raise BertnpuError(f"PlanSpec.{name}={v!r} is invalid; give a positive integer.")
        for combo in self.transforms:
            EquivalentTransformations(**{n: True for n in _checked_names(combo)})
        if not self.configs:
            raise BertnpuError("PlanSpec.configs is empty; give at least one calibration config.")
        from ..quant.sites import LAYER_SITES

        roles = [suffix for suffix, _, _ in LAYER_SITES] + ["embeddings.out", "pooler.dense.out", "pooler.out"]
        unknown = [r for r in self.candidate_roles if r not in roles]
        if unknown:
            raise BertnpuError(f"Unknown site role {unknown[0]!r} in PlanSpec.candidate_roles; use roles such as {', '.join(roles[:3])} (see `bertnpu sites`).")


def _checked_names(combo: Sequence[str]) -> list[str]:
    from ..quant.transforms import transformation_names

    return transformation_names(list(combo))


# -- running the NPU part layer by layer, reusing the hidden states before a changed layer --------
def run_layers(encoder: NpuEncoder, hidden: torch.Tensor, mask: torch.Tensor, tap, start: int = -1,
               record: Optional[list] = None) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run ``encoder`` from layer ``start`` (``-1``: from the NPU input, with its tap) on ``hidden``.

    ``hidden`` is the NPU input for ``start = -1``, else the input of layer ``start`` (the
    output of layer ``start - 1`` after its last tap). ``record`` (a list of ``num_layers + 1``
    slots) receives each layer's input and the final hidden state. Returns (last hidden, pooled).
    """
    tap = encoder.wrap_tap(tap) if hasattr(encoder, "wrap_tap") else tap
    token_mask = mask.bool()
    t = lambda site, x: tap(site, x, token_mask)  # noqa: E731
    additive = (~token_mask)[:, None, None, :].to(hidden.dtype) * torch.finfo(hidden.dtype).min
    ints = encoder.int_inputs(tap)
    x = t("embeddings.out", hidden) if start < 0 else hidden
    for i in range(max(start, 0), encoder.num_layers):
        if record is not None:
            record[i] = x
        x = encoder._layer(i, encoder.layers[i], x, additive, t, fused=False, ints=ints)
    if record is not None:
        record[encoder.num_layers] = x
    return x, encoder.pool(x, t, ints)


class LayerCachedEncoder:
    """Embeddings of a fixed sentence list under many taps, reusing the base recipe's early layers.

    ``set_base(encoder, tap)`` fixes the recipe whose layer inputs are kept; ``embed(tap,
    start)`` runs only from layer ``start`` with those inputs (``tap`` must equal the base tap
    before that layer). ``advance(tap, start)`` does the same and makes ``tap`` the new base.
    """

    def __init__(self, model: LoadedModel, sentences: Sequence[str], batch_size: int = 64):
        self.model = model
        self.sentences = list(sentences)
        probe = SentenceEncoder(model, batch_size=batch_size, progress=False)
        self.batches = probe.batches(self.sentences)
        with torch.inference_mode():
            self.inputs = [(probe.embedding(b.input_ids, b.token_type_ids), b.attention_mask, b.order) for b in self.batches]
        self.encoder: Optional[NpuEncoder] = None
        self.base_tap = None
        self.layer_inputs: Optional[list[list]] = None

    def set_base(self, encoder: NpuEncoder, tap) -> None:
        self.encoder, self.base_tap, self.layer_inputs = encoder, tap, None

    def _run(self, tap, start: int, record: bool) -> np.ndarray:
        assert self.encoder is not None, "call set_base first"
        if start >= 0 and self.layer_inputs is None:
            self._run(self.base_tap, -1, True)
        out = np.zeros((len(self.sentences), self.model.config.hidden_size), dtype=np.float32)
        new_inputs = []
        with torch.inference_mode():
            for b, (hidden, mask, order) in enumerate(self.inputs):
                slots = list(self.layer_inputs[b]) if self.layer_inputs is not None else [None] * (self.encoder.num_layers + 1)
                x = hidden if start < 0 else slots[min(start, self.encoder.num_layers)]
                last, pooled = run_layers(self.encoder, x, mask, tap, start, slots if record else None)
                out[order] = pool(last, mask, pooled, self.model.pooling.mode).float().numpy()
                new_inputs.append(slots)
        if record:
            self.layer_inputs, self.base_tap = new_inputs, tap
        return out

    def embed(self, tap, start: int = -1) -> np.ndarray:
        return self._run(tap, start, False)

    def advance(self, tap, start: int = -1) -> np.ndarray:
        return self._run(tap, start, True)


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


# -- the cache -----------------------------------------------------------------------------------
class ResultCache:
    """Append-only JSON lines ``{key, value}``; a line cut by an interrupt is ignored on reload."""

    def __init__(self, path: Optional[str | os.PathLike], ident: dict):
        self.path = Path(path) if path is not None else None
        self.ident = ident
        self.values: dict[str, dict] = {}
        if self.path is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                try:
                    row = json.loads(line)
                    self.values[row["key"]] = row["value"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue

    def key(self, kind: str, recipe: Recipe) -> str:
        body = {k: v for k, v in recipe.to_dict().items() if k not in ("prediction", "target_device")}
        body["activation_16bits"] = sorted(body["activation_16bits"])
        text = json.dumps({"kind": kind, "recipe": body, **self.ident}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:24]

    def get(self, kind: str, recipe: Recipe) -> Optional[dict]:
        return self.values.get(self.key(kind, recipe))

    def put(self, kind: str, recipe: Recipe, value: dict) -> dict:
        k = self.key(kind, recipe)
        self.values[k] = value
        if self.path is not None:
            from ..artifacts import os_error_sentence

            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with open(self.path, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": k, "value": value}, sort_keys=True) + "\n")
            except OSError as exc:  # a full disk or a read-only folder: one sentence
                raise BertnpuError(os_error_sentence(exc, self.path)) from None
        return value


@dataclass
class PlanResult:
    """What the planner found. ``pareto``: rows ``n_sites, sites, validation_spearman, proxy_cosine, traffic_16bit``."""

    recipe: Recipe
    fp32_validation: float
    fp32_test: float
    validation_spearman: float
    test_spearman: float
    test_cosine_mean: float
    best_int8: Recipe
    best_int8_validation: float
    best_int8_test: float
    int8_candidates: list[dict]
    pareto: list[dict]
    within_tolerance: bool
    profile: str
    tolerance: float
    seconds: float
    site_layers: dict[str, int] = field(default_factory=dict)
    validation_cosine: float = float("nan")
    min_cosine: float = 0.0
    cosine_met: bool = True
    not_tried: list[str] = field(default_factory=list)  # sites left out because their override changes nothing on the device
    # test-split embeddings computed while confirming (rows of test_sentences): "fp32" and recipe_key(recipe) of each
    # confirmed recipe, so the evaluate stage of the same run need not encode them again (empty when read from the cache)
    test_embeddings: dict = field(default_factory=dict)
    test_sentences: list = field(default_factory=list)

    def summary(self) -> dict:
        """The flat JSON line of ``bertnpu plan --json``."""
        return {"fp32_spearman": self.fp32_test, "spearman": self.test_spearman, "validation_spearman": self.validation_spearman,
                "fp32_validation_spearman": self.fp32_validation, "cosine_to_fp32": self.test_cosine_mean,
                "activation_16bits": list(self.recipe.activation_16bits), "n_16bit_sites": len(self.recipe.activation_16bits),
                "profile": self.profile, "tolerance": self.tolerance, "within_tolerance": self.within_tolerance,
                "validation_cosine_to_fp32": self.validation_cosine, "min_cosine": self.min_cosine, "cosine_met": self.cosine_met,
                "best_int8_only": {"recipe": self.best_int8.label(), "validation_spearman": self.best_int8_validation, "spearman": self.best_int8_test},
                "calibration": self.recipe.calibration.to_dict(), "equivalent_transformation": self.recipe.equivalent_transformation.enabled(),
                "traffic_16bit": self.pareto[-1]["traffic_16bit"] if self.pareto else None, "not_tried": list(self.not_tried),
                "seconds": self.seconds}


def _transforms_of(names: Sequence[str]) -> EquivalentTransformations:
    return EquivalentTransformations(**{n: True for n in names})


class _Planner:
    def __init__(self, model, calib, stats, validation, spec: PlanSpec, cache, progress):
        from ..quant.stats import calibration_hash, collect_activation_stats, model_hash

        self.model, self.calib, self.spec, self.progress = model, calib, spec, progress
        self.stats_by_transforms: dict[tuple, object] = {}
        self.base_stats = stats if stats is not None else collect_activation_stats(model, calib, progress=progress)
        self.stats_by_transforms[()] = self.base_stats
        self.validation = validation
        val_sentences, self.rows1, self.rows2 = unique_sentences(validation)
        self.proxy_sentences = val_sentences[: spec.proxy_sentences]
        self.proxy = LayerCachedEncoder(model, self.proxy_sentences)
        self.full = LayerCachedEncoder(model, val_sentences)
        self.fp32_proxy = SentenceEncoder(model, progress=False)(self.proxy_sentences)
        self.fp32_val_emb = SentenceEncoder(model, progress=False)(val_sentences)
        self.fp32_validation = sts_scores(self.fp32_val_emb, self.rows1, self.rows2, validation.scores)["spearman"]
        self.elements = activation_elements(model, self.proxy_sentences)
        ident = {"model": self.base_stats.meta.get("model_sha256") or model_hash(model),
                 "calibration": self.base_stats.meta.get("calibration_sha256") or calibration_hash(calib),
                 "validation": validation.content_hash(), "proxy": spec.proxy_sentences,  # sentences AND scores
                 "tool": __version__}
        self.cache = ResultCache(cache, ident)
        self.sims: dict[tuple, Simulation] = {}

    def stats_for(self, names: tuple):
        if names not in self.stats_by_transforms:
            from ..quant.transforms import collect_transformed_stats

            if "all" not in self.stats_by_transforms:
                self.stats_by_transforms["all"] = collect_transformed_stats(self.model, self.calib, self.base_stats, SIMULATED, progress=self.progress)
            full = self.stats_by_transforms["all"]
            changed = set(transformed_sites([s.name for s in self.base_stats.sites], names, self.model.config.num_hidden_layers))
            observers = {s.name: (full[s.name] if s.name in changed else self.base_stats[s.name]) for s in self.base_stats.sites}
            from ..quant.stats import ActivationStats

            self.stats_by_transforms[names] = ActivationStats(list(self.base_stats.sites), observers,
                                                              {**self.base_stats.meta, "equivalent_transformation": list(names)})
        return self.stats_by_transforms[names]

    def simulation(self, recipe: Recipe) -> Simulation:
        names = tuple(recipe.equivalent_transformation.enabled())
        key = (names, recipe.calibration, recipe.profile)
        if key not in self.sims:
            encoder = next((s.encoder for (n, c, p), s in self.sims.items() if n == names and c.bits == recipe.calibration.bits), None)
            self.sims[key] = simulate(self.model, self.stats_for(names), recipe.with_(activation_16bits=()), encoder=encoder)
        sim = self.sims[key]
        return sim if not recipe.activation_16bits else _with_sites(sim, recipe)

    def proxy_cosine(self, recipe: Recipe, start: int = -1, base: Optional[Recipe] = None) -> float:
        hit = self.cache.get("proxy", recipe)
        if hit is not None:
            return hit["cosine"]
        sim = self.simulation(recipe)
        if base is None:
            self.proxy.set_base(sim.encoder, sim.tap)
            emb = self.proxy.advance(sim.tap)
        else:
            emb = self.proxy.embed(sim.tap, start)
        return self.cache.put("proxy", recipe, {"cosine": float(cosine_rows(emb, self.fp32_proxy).mean())})["cosine"]

    def validation_spearman(self, recipe: Recipe, start: int = -1) -> float:
        return self.validation_scores(recipe, start)["spearman"]

    def validation_scores(self, recipe: Recipe, start: int = -1) -> dict:
        """``{spearman, cosine}`` of the recipe on the whole validation split (cosine: mean to FP32 embeddings)."""
        hit = self.cache.get("validation", recipe)
        sim = self.simulation(recipe)
        if hit is not None:
            self.full.set_base(sim.encoder, sim.tap)  # recomputed lazily if a later step needs it
            return hit
        if start >= 0 and self.full.encoder is not sim.encoder:
            start = -1
        if start < 0:
            self.full.set_base(sim.encoder, sim.tap)
        emb = self.full.advance(sim.tap, start)
        value = sts_scores(emb, self.rows1, self.rows2, self.validation.scores)["spearman"]
        return self.cache.put("validation", recipe, {"spearman": value, "cosine": float(cosine_rows(emb, self.fp32_val_emb).mean())})


def _with_sites(sim: Simulation, recipe: Recipe) -> Simulation:
    bits = dict(sim.site_bits)
    bits.update({s: 16 for s in recipe.activation_16bits})
    tap = sim.tap.with_bits({s: 16 for s in recipe.activation_16bits}) if sim.tap is not None else None
    return Simulation(sim.model, sim.config, sim.encoder, tap, sim.ranges, recipe, bits, (), sim.reference)


def plan_recipe(
    model: LoadedModel, calib, validation: StsPairs, test: StsPairs, spec: PlanSpec = PlanSpec(), *, stats=None,
    cache: Optional[str | os.PathLike] = None, progress: bool = True, log: Callable[[str], None] = lambda s: None,
) -> PlanResult:
    """Search the cheapest recipe within ``spec.tolerance`` of FP32 on validation; confirm it on test.

    Args:
        calib: the calibration set (:class:`~bertnpu.data.calibration.CalibrationSet`).
        stats: its activation stats on the plain encoder (collected when None).
        cache: a JSON-lines file; an interrupted plan with the same inputs resumes from it.

    Example:
        >>> result = plan_recipe(model, calib, load_stsb("validation"), load_stsb("test"))  # doctest: +SKIP
        >>> result.recipe.save("recipe.json")  # doctest: +SKIP
    """
    start_time = time.perf_counter()
    p = _Planner(model, calib, stats, validation, spec, cache, progress)
    site_names = [s.name for s in p.base_stats.sites]
    layers = model.config.num_hidden_layers
    log(f"FP32 validation Spearman {p.fp32_validation:.4f}; searching under profile {spec.profile!r}")

    # 1. INT8 only: calibration configs, then transformations on the best few
    int8_rows = []
    bar = tqdm(total=len(spec.configs) + spec.top_configs * len(spec.transforms), desc="plan: INT8 recipes", disable=not progress, leave=False)
    for cfg in spec.configs:
        r = Recipe(calibration=cfg, profile=spec.profile)
        int8_rows.append({"recipe": r, "proxy_cosine": p.proxy_cosine(r)})
        bar.update()
    best_configs = [row["recipe"].calibration for row in sorted(int8_rows, key=lambda row: -row["proxy_cosine"])[: spec.top_configs]]
    for cfg in best_configs:
        for combo in spec.transforms:
            r = Recipe(calibration=cfg, equivalent_transformation=_transforms_of(combo), profile=spec.profile)
            int8_rows.append({"recipe": r, "proxy_cosine": p.proxy_cosine(r)})
            bar.update()
    bar.total = bar.n  # fewer configs than top_configs: a notebook bar short of its total would stay up as an error
    bar.close()
    int8_rows.sort(key=lambda row: -row["proxy_cosine"])
    best_int8 = int8_rows[0]["recipe"]
    log(f"best INT8-only recipe by proxy: {best_int8.label()} (cosine {int8_rows[0]['proxy_cosine']:.4f})")

    # 2. greedy 16-bit sites
    current = best_int8
    target = p.fp32_validation - spec.tolerance
    scores0 = p.validation_scores(current)
    best_int8_val = scores0["spearman"]
    sim0 = p.simulation(current)
    pareto = [{"n_sites": 0, "sites": [], "added": None, "validation_spearman": best_int8_val, "validation_cosine": scores0["cosine"],
               "proxy_cosine": int8_rows[0]["proxy_cosine"], "traffic_16bit": traffic_share(sim0.site_bits, p.elements)}]

    def accepted(row: dict) -> bool:
        return row["validation_spearman"] >= target and row["validation_cosine"] >= spec.min_cosine

    candidates = [s for s in site_names if sim0.site_bits[s] <= 8 and (not s.startswith("pooler.") or model.pooling.mode == "pooler")]
    if spec.candidate_roles:
        candidates = [s for s in candidates if site_role(s) in spec.candidate_roles]
    skipped = [] if spec.try_layernorm else [s for s in candidates if override_no_effect(s)]
    candidates = [s for s in candidates if s not in skipped]
    if skipped:
        log(f"not tried at 16 bits: {len(skipped)} LayerNorm output(s), because {override_no_effect(skipped[0])} (try_layernorm to include them)")
    last_gain: dict[str, float] = {}
    bar = tqdm(total=spec.max_sites, desc="plan: 16-bit sites", disable=not progress, leave=False)
    while (spec.full_table or not accepted(pareto[-1])) and len(current.activation_16bits) < spec.max_sites and candidates:
        sim = p.simulation(current)
        p.proxy.set_base(sim.encoder, sim.tap)
        pool_ = candidates if not last_gain else sorted(candidates, key=lambda s: -last_gain.get(s, -1.0))[: spec.lazy_width]
        for site in tqdm(pool_, desc=f"step {len(current.activation_16bits) + 1}", disable=not progress, leave=False):
            trial = current.with_(activation_16bits=current.activation_16bits + (site,))
            last_gain[site] = p.proxy_cosine(trial, site_start(site, layers), base=current)
        chosen = max(pool_, key=lambda s: last_gain[s])
        candidates.remove(chosen)
        current = current.with_(activation_16bits=current.activation_16bits + (chosen,))
        scores = p.validation_scores(current, site_start(chosen, layers))
        val = scores["spearman"]
        pareto.append({"n_sites": len(current.activation_16bits), "sites": list(current.activation_16bits), "added": chosen,
                       "validation_spearman": val, "validation_cosine": scores["cosine"], "proxy_cosine": last_gain[chosen],
                       "traffic_16bit": traffic_share(p.simulation(current).site_bits, p.elements)})
        log(f"+ {chosen}: validation Spearman {val:.4f} (FP32 {p.fp32_validation:.4f}), cosine {scores['cosine']:.4f}")
        bar.update()
    bar.total = bar.n  # stopping before max_sites is the normal end: a notebook bar short of its total stays up as an error
    bar.close()

    within = [row for row in pareto if row["validation_spearman"] >= target]
    both = [row for row in within if row["validation_cosine"] >= spec.min_cosine]
    # accepted: the cheapest; else within tolerance: the closest embeddings; else the best Spearman
    pick = both[0] if both else (max(within, key=lambda row: row["validation_cosine"]) if within
                                 else max(pareto, key=lambda row: row["validation_spearman"]))
    chosen_recipe = best_int8.with_(activation_16bits=tuple(pick["sites"]))

    # 3. confirm on test: FP32, best INT8-only, chosen
    fp32_test_emb = SentenceEncoder(model, progress=False)
    test_sentences, t1, t2 = unique_sentences(test)
    fp32_emb = fp32_test_emb(test_sentences)
    fp32_test = sts_scores(fp32_emb, t1, t2, test.scores)["spearman"]
    test_embeddings = {"fp32": fp32_emb}

    def confirm(recipe: Recipe) -> tuple[float, float]:
        hit = p.cache.get("test:" + test.content_hash()[:16], recipe)
        if hit is None:
            emb = test_embeddings[recipe_key(recipe)] = p.simulation(recipe).encoder_for(progress=progress)(test_sentences)
            hit = p.cache.put("test:" + test.content_hash()[:16], recipe,
                              {"spearman": sts_scores(emb, t1, t2, test.scores)["spearman"], "cosine": float(cosine_rows(emb, fp32_emb).mean())})
        return hit["spearman"], hit["cosine"]

    int8_test, _ = confirm(best_int8)
    test_s, test_cos = confirm(chosen_recipe) if chosen_recipe != best_int8 else confirm(best_int8)
    chosen_recipe = chosen_recipe.with_(prediction={
        "profile": spec.profile, "validation_spearman": pick["validation_spearman"], "test_spearman": test_s, "test_cosine_to_fp32": test_cos,
        "fp32_validation_spearman": p.fp32_validation, "fp32_test_spearman": fp32_test, "tolerance": spec.tolerance,
        "traffic_16bit": pick["traffic_16bit"], "within_tolerance": bool(within), "validation_cosine_to_fp32": pick["validation_cosine"],
        "min_cosine": spec.min_cosine, "cosine_met": bool(both)})
    info = {s.name: s.layer for s in p.base_stats.sites}
    return PlanResult(
        recipe=chosen_recipe, fp32_validation=p.fp32_validation, fp32_test=fp32_test, validation_spearman=pick["validation_spearman"],
        test_spearman=test_s, test_cosine_mean=test_cos, best_int8=best_int8, best_int8_validation=best_int8_val, best_int8_test=int8_test,
        int8_candidates=[{"recipe": row["recipe"].label(), "proxy_cosine": row["proxy_cosine"]} for row in int8_rows],
        pareto=pareto, within_tolerance=bool(within), profile=spec.profile, tolerance=spec.tolerance,
        seconds=time.perf_counter() - start_time, site_layers=info, validation_cosine=pick["validation_cosine"],
        min_cosine=spec.min_cosine, cosine_met=bool(both), not_tried=skipped, test_embeddings=test_embeddings, test_sentences=test_sentences)


def format_pareto(result: PlanResult) -> str:
    """The Pareto table as text (one row per number of 16-bit sites)."""
    lines = [f"profile {result.profile}; FP32 validation Spearman {result.fp32_validation:.4f}; tolerance {result.tolerance:g}; "
             f"minimum cosine {result.min_cosine:g}"
             + (f"; not tried at 16 bits: {len(result.not_tried)} LayerNorm outputs (their override was seen to change nothing "
                "on ARIES; --try-layernorm includes them)" if result.not_tried else ""),
             f"{'16-bit sites':>12}  {'validation':>10}  {'val cos':>7}  {'traffic@16':>10}  added"]
    for row in result.pareto:
        mark = " <- chosen" if row["sites"] == list(result.recipe.activation_16bits) else ""
        cos = row.get("validation_cosine", float("nan"))
        lines.append(f"{row['n_sites']:>12}  {row['validation_spearman']:>10.4f}  {cos:>7.4f}  {row['traffic_16bit']:>10.1%}  {row['added'] or '-'}{mark}")
    return "\n".join(lines)


def profile_bracket(model: LoadedModel, stats, recipe: Recipe | QuantConfig, pairs: StsPairs, *, progress: bool = False) -> dict[str, float]:
    """STS Spearman of one recipe under every precision profile (how much the unknowns matter)."""
    from ..quant.simulate import as_recipe

    recipe = as_recipe(recipe)
    out = {}
    encoder = None
    for name in PROFILE_NAMES:
        sim = simulate(model, stats, recipe.with_(profile=name), encoder=encoder)
        encoder = sim.encoder
        out[name] = evaluate_sts(sim.encoder_for(progress=progress), pairs)["spearman"]
    return out


__all__ = ["CALIBRATION_CANDIDATES", "TRANSFORM_CANDIDATES", "LayerCachedEncoder", "PlanResult", "PlanSpec", "format_pareto",
           "plan_recipe", "profile_bracket", "run_layers", "site_bits", "traffic_share"]
