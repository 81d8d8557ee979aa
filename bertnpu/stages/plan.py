"""Stage plan: the cheapest recipe within a tolerance of FP32 (see :mod:`bertnpu.tune.plan`), its figures and recipe.json."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

from ..data.stsb import StsPairs
from ..model.load import LoadedModel
from ..quant.recipe import Recipe
from ..tune.plan.spec import PlanSpec
from .result import StageResult, not_serialized


@dataclass(frozen=True)
class PlanInputs:
    """``calib``: the calibration set (transformed stats are collected from it); ``stats``: its stats on
    the plain encoder (collected when None). ``out``: where ``recipe.json`` goes; ``cache``: the
    resumable JSON-lines cache (default ``<out>.plan-cache.jsonl``). ``plan_pareto`` and ``plan_sites`` are
    drawn from the result by :func:`bertnpu.ui.stage_figures.stage_figures`."""

    model: LoadedModel
    calib: Any
    validation: StsPairs
    test: StsPairs
    stats: Any = None
    # the planner's defaults, written once in PlanSpec
    profile: str = PlanSpec.profile
    tolerance: float = PlanSpec.tolerance
    min_cosine: float = PlanSpec.min_cosine
    max_sites: int = PlanSpec.max_sites
    out: Optional[Path] = None
    cache: Optional[Path] = None
    force: bool = False
    progress: bool = True
    bracket: bool = False
    try_layernorm: bool = PlanSpec.try_layernorm  # also try LayerNorm outputs at 16 bits (their override was seen to change nothing on ARIES)
    # None: PlanSpec's defaults (``bertnpu run --quick`` passes smaller ones)
    proxy_sentences: Optional[int] = None
    configs: Optional[tuple] = None
    transforms: Optional[tuple] = None
    candidate_roles: Optional[tuple] = None


@dataclass(frozen=True)
class PlanResult(StageResult):
    fp32_spearman: float
    spearman: float
    validation_spearman: float
    fp32_validation_spearman: float
    cosine_to_fp32: float
    activation_16bits: tuple[str, ...]
    profile: str
    tolerance: float
    within_tolerance: bool
    validation_cosine: float
    min_cosine: float
    cosine_met: bool
    best_int8_only: Mapping[str, Any]
    pareto: Sequence[Mapping[str, Any]]
    recipe: Recipe
    traffic_16bit: float
    seconds: float
    files: tuple[Path, ...] = ()
    not_tried: tuple[str, ...] = ()  # sites left out of the search (their 16-bit override changes nothing on the device)
    brackets: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    # the test-split paired bootstrap (agreed keys) and why the search stopped (tune.plan.stopping.STOP_RULES)
    spearman_ci: tuple[float, ...] = ()
    diff_to_fp32: Optional[float] = None
    diff_to_fp32_ci: tuple[float, ...] = ()
    fp32_spearman_ci: tuple[float, ...] = ()
    stop_rule: str = ""
    stop_reason: str = ""
    # the bracket by what it measures: per recipe and profile ``spearman``, ``spearman_ci``, ``diff_to_fp32(_ci)``, ``cosine_mean``
    bracket_details: Mapping[str, Mapping[str, Mapping[str, Any]]] = field(default_factory=dict)
    plan: Any = not_serialized(default=None)
    site_bits: Mapping[str, int] = not_serialized(default_factory=dict)  # every site's width under the planned recipe
    layers: int = not_serialized(default=0)  # the model's layer count (the site map's rows)


def plan(inputs: PlanInputs) -> PlanResult:
    """Search recipes, confirm the chosen one on test, write ``recipe.json``.

    Example:
        >>> r = plan(PlanInputs(model, calib, load_stsb("validation"), load_stsb("test"), out=Path("recipe.json")))  # doctest: +SKIP
        >>> r.spearman, r.activation_16bits  # doctest: +SKIP
    """
    from ..artifacts import check_writable
    from ..tune.plan import PlanSpec, plan_recipe

    overrides = {k: getattr(inputs, k) for k in ("proxy_sentences", "configs", "transforms", "candidate_roles") if getattr(inputs, k) is not None}
    spec = PlanSpec(profile=inputs.profile, tolerance=inputs.tolerance, min_cosine=inputs.min_cosine, max_sites=inputs.max_sites,
                    try_layernorm=inputs.try_layernorm, **overrides)
    if inputs.out is not None:
        check_writable(inputs.out, inputs.force, "recipe file")
    cache = inputs.cache if inputs.cache is not None else (Path(str(inputs.out) + ".plan-cache.jsonl") if inputs.out is not None else None)
    result = plan_recipe(inputs.model, inputs.calib, inputs.validation, inputs.test, spec, stats=inputs.stats, cache=cache,
                         progress=inputs.progress)
    from ..quant.simulate import simulate
    from ..quant.transforms import stats_for_recipe

    base_stats = result_stats = inputs.stats
    files: list[Path] = []
    if inputs.out is not None:
        files.append(result.recipe.save(inputs.out, force=inputs.force))
    if base_stats is not None:
        result_stats = stats_for_recipe(inputs.model, base_stats, result.recipe, inputs.calib)
        bits = simulate(inputs.model, result_stats, result.recipe, quantize_weights=False).site_bits
    else:
        from ..quant.precision import site_bits
        from ..quant.sites import list_sites

        bits = site_bits([s.name for s in list_sites(inputs.model)], result.profile, result.recipe.activation_16bits)
    s = result.summary()
    brackets, bracket_details = {}, {}
    if inputs.bracket and base_stats is not None:
        from ..quant.recipe import Recipe as _Recipe
        from ..tune.plan import profile_bracket

        for label, recipe in (("tutorial", _Recipe()), ("best_int8_only", result.best_int8), ("planned", result.recipe)):
            st = stats_for_recipe(inputs.model, base_stats, recipe, inputs.calib)
            # the plan's test embeddings (FP32, the best INT8-only and the planned recipe under the plan's profile) are reused,
            # and those encoded here join them for the evaluate stage of the same run
            bracket_details[label] = profile_bracket(inputs.model, st, recipe, inputs.test, progress=inputs.progress, detail=True,
                                                     known=result.test_embeddings)
            brackets[label] = {name: entry["spearman"] for name, entry in bracket_details[label].items()}
    return PlanResult(
        fp32_spearman=result.fp32_test, spearman=result.test_spearman, validation_spearman=result.validation_spearman,
        fp32_validation_spearman=result.fp32_validation, cosine_to_fp32=result.test_cosine_mean,
        activation_16bits=result.recipe.activation_16bits, profile=result.profile, tolerance=result.tolerance,
        within_tolerance=result.within_tolerance, validation_cosine=result.validation_cosine, min_cosine=result.min_cosine,
        cosine_met=result.cosine_met, best_int8_only={**s["best_int8_only"], "recipe_json": result.best_int8},  # a Recipe, written as its JSON
        pareto=result.pareto, recipe=result.recipe, traffic_16bit=s["traffic_16bit"], seconds=result.seconds, files=tuple(files),
        not_tried=tuple(result.not_tried), brackets=brackets, plan=result,
        site_bits=dict(bits), layers=int(inputs.model.config.num_hidden_layers),
        spearman_ci=tuple(s.get("spearman_ci", ())), diff_to_fp32=s.get("diff_to_fp32"), diff_to_fp32_ci=tuple(s.get("diff_to_fp32_ci", ())),
        fp32_spearman_ci=tuple(s.get("fp32_spearman_ci", ())), stop_rule=s["stop_rule"], stop_reason=s["stop_reason"], bracket_details=bracket_details)
