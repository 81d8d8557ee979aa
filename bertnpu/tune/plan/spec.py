"""What the planner searches and when it stops: :class:`PlanSpec` and its candidate lists."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ...errors import BertnpuError
from ...quant.config import QuantConfig
from ...quant.precision import DEFAULT_PROFILE, get_profile
from ...quant.recipe import EquivalentTransformations


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
        from ...quant.sites import LAYER_SITES

        roles = [suffix for suffix, _, _ in LAYER_SITES] + ["embeddings.out", "pooler.dense.out", "pooler.out"]
        unknown = [r for r in self.candidate_roles if r not in roles]
        if unknown:
            raise BertnpuError(f"Unknown site role {unknown[0]!r} in PlanSpec.candidate_roles; use roles such as {', '.join(roles[:3])} (see `bertnpu sites`).")


def _checked_names(combo: Sequence[str]) -> list[str]:
    from ...quant.transforms import transformation_names

    return transformation_names(list(combo))
