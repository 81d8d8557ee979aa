"""The planner's resumable results: its row schema and a planned recipe's identity, kept in a :class:`~bertnpu.results_log.ResultLog`."""

from __future__ import annotations

import os
from typing import Mapping, Optional

from ...quant.recipe import Recipe
from ...results_log import ResultLog, cache_key
from ...schema import Field, Schema

# One result: cosines and Spearman correlations, -1 to 1 (Spearman is NaN for constant embeddings); other fields
# (the pair cosines of the intervals) pass unchecked. The log adds the key.
_SCORE = Field(float, required=False, low=-1.0, high=1.0, finite=False)
ROW = Schema({"cosine": Field(float, low=-1.0, high=1.0), "spearman": _SCORE})


def recipe_ident(recipe: Recipe) -> dict:
    """What of a recipe changes a simulated result, as the data :func:`~bertnpu.results_log.cache_key` hashes: everything but
    the prediction table and the target device; the 16-bit sites sorted (their order changes nothing), still a tuple
    (:func:`~bertnpu.results_log.canonical_json` hashes a tuple as the list it writes)."""
    body = {k: v for k, v in recipe.to_dict().items() if k not in ("prediction", "target_device")}
    body["activation_16bits"] = tuple(sorted(recipe.activation_16bits))
    return body


class PlanCache:
    """The planner's results by (kind, recipe), under ``ident`` (the model, calibration and validation hashes and the proxy size).

    Args:
        path: the JSON-lines file; None keeps results in memory only.
        ident: the inputs every result of this plan shares.

    Example:
        >>> cache = PlanCache(None, {"model": "ab12"})
        >>> cache.put("proxy", Recipe(), {"cosine": 0.99})
        {'cosine': 0.99}
        >>> cache.get("proxy", Recipe()), cache.get("validation", Recipe())
        ({'cosine': 0.99}, None)
    """

    def __init__(self, path: Optional[str | os.PathLike], ident: Mapping):
        assert "recipe" not in ident, "the recipe is each result's own input"
        self.log = ResultLog(path, ROW, "plan cache")
        self.ident = dict(ident)

    def key(self, kind: str, recipe: Recipe) -> str:
        """:func:`~bertnpu.results_log.cache_key` of ``kind`` and the recipe under this plan's inputs."""
        return cache_key(kind, {"recipe": recipe_ident(recipe), **self.ident})

    def get(self, kind: str, recipe: Recipe) -> Optional[dict]:
        return self.log.get(self.key(kind, recipe))

    def put(self, kind: str, recipe: Recipe, value: dict) -> dict:
        return self.log.put(self.key(kind, recipe), value)
