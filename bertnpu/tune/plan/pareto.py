"""What the planner found (:class:`PlanResult`), its Pareto table as text, and the profile bracket of one recipe."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from ...data.stsb import StsPairs
from ...model.load import LoadedModel
from ...quant.config import QuantConfig
from ...quant.precision import PROFILE_NAMES
from ...quant.recipe import Recipe
from ...quant.simulate import simulate
from ..evaluate import evaluate_sts
from .stopping import STOP_RULES


@dataclass
class PlanResult:
    """What the planner found. ``pareto``: rows ``n_sites, sites, validation_spearman, proxy_cosine, traffic_16bit`` (``sites``:
    the row's recipe's ``activation_16bits`` tuple)."""

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
    # confirmed recipe, and those the plan stage's profile bracket adds, so the evaluate stage of the same run need not
    # encode them again (empty when read from the cache)
    test_embeddings: dict = field(default_factory=dict)
    test_sentences: list = field(default_factory=list)
    stop_rule: str = ""  # a key of stopping.STOP_RULES: why the search stopped where it did
    # test-split paired bootstrap (bertnpu.tune.bootstrap): the chosen recipe's and the best INT8-only recipe's
    # spearman_ci / diff_to_fp32 / diff_to_fp32_ci, and FP32's own interval
    test_intervals: dict = field(default_factory=dict)
    best_int8_intervals: dict = field(default_factory=dict)
    fp32_test_ci: list = field(default_factory=list)

    def summary(self) -> dict:
        """The flat JSON line of ``bertnpu plan --json``."""
        return {"fp32_spearman": self.fp32_test, "spearman": self.test_spearman, "validation_spearman": self.validation_spearman,
                "fp32_validation_spearman": self.fp32_validation, "cosine_to_fp32": self.test_cosine_mean,
                "activation_16bits": self.recipe.activation_16bits, "n_16bit_sites": len(self.recipe.activation_16bits),
                "profile": self.profile, "tolerance": self.tolerance, "within_tolerance": self.within_tolerance,
                "validation_cosine_to_fp32": self.validation_cosine, "min_cosine": self.min_cosine, "cosine_met": self.cosine_met,
                "best_int8_only": {"recipe": self.best_int8.label(), "validation_spearman": self.best_int8_validation, "spearman": self.best_int8_test,
                                   **self.best_int8_intervals},
                **self.test_intervals, "fp32_spearman_ci": list(self.fp32_test_ci), "stop_rule": self.stop_rule,
                "stop_reason": STOP_RULES.get(self.stop_rule, ""),
                "calibration": self.recipe.calibration.to_dict(), "equivalent_transformation": self.recipe.equivalent_transformation.enabled(),
                "traffic_16bit": self.pareto[-1]["traffic_16bit"] if self.pareto else None, "not_tried": list(self.not_tried),
                "seconds": self.seconds}


def format_pareto(result: PlanResult) -> str:
    """The Pareto table as text (one row per number of 16-bit sites)."""
    lines = [f"profile {result.profile}; FP32 validation Spearman {result.fp32_validation:.4f}; tolerance {result.tolerance:g}; "
             f"minimum cosine {result.min_cosine:g}"
             + (f"; not tried at 16 bits: {len(result.not_tried)} LayerNorm outputs (their override was seen to change nothing "
                "on ARIES; --try-layernorm includes them)" if result.not_tried else ""),
             f"{'16-bit sites':>12}  {'validation':>10}  {'vs FP32 [paired 95% CI]':>26}  {'val cos':>7}  {'traffic@16':>10}  added"]
    for row in result.pareto:
        mark = " <- chosen" if tuple(row["sites"]) == result.recipe.activation_16bits else ""  # a table read back from JSON holds lists
        cos = row.get("validation_cosine", float("nan"))
        ci = row.get("diff_to_fp32_ci")
        diff = f"{row['diff_to_fp32']:+.4f} [{ci[0]:+.4f}, {ci[1]:+.4f}]" if ci else "-"
        lines.append(f"{row['n_sites']:>12}  {row['validation_spearman']:>10.4f}  {diff:>26}  {cos:>7.4f}  {row['traffic_16bit']:>10.1%}  "
                     f"{row['added'] or '-'}{mark}")
    if result.stop_rule:
        lines.append(f"stopped ({result.stop_rule}): {STOP_RULES.get(result.stop_rule, result.stop_rule)}")
    return "\n".join(lines)


def profile_bracket(model: LoadedModel, stats, recipe: Recipe | QuantConfig, pairs: StsPairs, *, progress: bool = False,
                    detail: bool = False, known: Optional[dict] = None) -> dict:
    """STS Spearman of one recipe under every precision profile (how much the unknowns matter).

    ``detail``: per profile a dict by what each number measures: ``spearman`` with its ``spearman_ci``, the paired
    ``diff_to_fp32`` / ``diff_to_fp32_ci``, and ``cosine_mean`` (mean embedding cosine to FP32, which follows the
    precision where a Spearman within noise need not: a lower precision may score higher by chance).

    ``known`` (with ``detail``): embeddings of ``pairs``' unique sentences already computed in this run, ``"fp32"`` and
    :func:`~bertnpu.tune.evaluate.recipe_key` of a recipe (with its profile) -> rows; a model met there is not encoded
    again, and each one encoded here is added to it (the same encode gives the same rows bit for bit)."""
    from ...model.sentence_encoder import SentenceEncoder
    from ...quant.simulate import as_recipe
    from ..evaluate import entry_from_embeddings, recipe_key, unique_sentences

    recipe = as_recipe(recipe)
    out = {}
    encoder = None
    sentences, rows1, rows2 = unique_sentences(pairs)
    known = {} if known is None else known
    if detail and "fp32" not in known:
        known["fp32"] = SentenceEncoder(model, progress=False)(sentences)
    fp32_emb = known["fp32"] if detail else None
    fp32 = entry_from_embeddings(fp32_emb, None, rows1, rows2, pairs.scores) if detail else None
    for name in PROFILE_NAMES:
        one = recipe.with_(profile=name)
        key = recipe_key(one)
        if detail and key in known:
            emb = known[key]
        else:
            sim = simulate(model, stats, one, encoder=encoder)
            encoder = sim.encoder
            if not detail:
                out[name] = evaluate_sts(sim.encoder_for(progress=progress), pairs)["spearman"]
                continue
            emb = known[key] = sim.encoder_for(progress=progress)(sentences)
        entry = entry_from_embeddings(emb, fp32_emb, rows1, rows2, pairs.scores, fp32)
        out[name] = {k: v for k, v in entry.items() if k != "pair_cosines"}
    return out
