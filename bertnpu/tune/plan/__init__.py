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

from ...quant.precision import site_bits  # noqa: F401  (re-exported: callers read a recipe's bits from here)
from ...quant.sites import site_start  # noqa: F401  (re-exported for tests and callers)
from .cache import PlanCache
from .cost import activation_elements, traffic_share
from .layer_cache import LayerCachedEncoder, run_layers
from .pareto import PlanResult, format_pareto, profile_bracket
from .search import plan_recipe
from .spec import CALIBRATION_CANDIDATES, TRANSFORM_CANDIDATES, PlanSpec
from .stopping import accepted, pick_row

__all__ = ["CALIBRATION_CANDIDATES", "TRANSFORM_CANDIDATES", "LayerCachedEncoder", "PlanCache", "PlanResult", "PlanSpec", "accepted",
           "activation_elements", "format_pareto", "pick_row", "plan_recipe", "profile_bracket", "run_layers", "site_bits", "traffic_share"]
