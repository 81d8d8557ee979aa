"""What ``bertnpu run`` does, in one validated dataclass: every default once, two named presets, a JSON round trip.

``RunConfig()`` / :meth:`RunConfig.full` is the full run; :meth:`RunConfig.quick` the smoke run
(:data:`QUICK`, the only place its smaller values are written). The CLI's ``run``, the widgets'
``sweep_like_run``, the notebooks and the benchmarks all read it; ``to_dict`` / ``from_dict``
carry it as JSON (validated on the way in, like every config here).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from .errors import BertnpuError
from .quant.config import QuantConfig
from .tune.plan.spec import PlanSpec
from .tune.sweep import CONFIRM, PERCENTILES, PROXY_SENTENCES, TOPK_RATIOS, Spelling, check_sweep_knobs, ignored_knobs, read_knobs

PRESETS = ("full", "quick")
SCHEMA_VERSION = 1
SWEEP_FIELDS = ("percentiles", "topk_ratios", "methods", "outputs", "confirm", "proxy_sentences")  # the sweep's knobs RunConfig holds

# ``--quick`` is a smoke run (target: about 20 s on 2 cores for the default model): 32 calibration
# samples, a 4-cell sweep ranked on 64 proxy sentences (128 earlier: the same two cells
# confirmed, the same recommendation), 200 validation and 125 test pairs (250 before; the held-out
# split changes neither the recommendation nor the plan), and a plan over 2 calibration configs,
# no transformations, at most one 16-bit site tried among the residual sums, 16 proxy sentences (48 before: the same planned
# recipe on the default model; the traffic share is measured on them) and no profile bracket.
QUICK: Mapping[str, Any] = {
    "calib_count": 32, "percentiles": (0.999, 1.0), "topk_ratios": (0.01,), "methods": (0, 1), "outputs": (0,), "search": "grid",
    "confirm": 2, "proxy_sentences": 64, "validation_pairs": 200, "test_pairs": 125,
    "plan_max_sites": 1, "plan_proxy_sentences": 16,
    "plan_configs": (QuantConfig(method=1, mode=1, percentile=0.999, topk_ratio=0.01), QuantConfig(method=0, mode=1, percentile=0.999, topk_ratio=0.01)),
    "plan_transforms": (), "plan_candidate_roles": ("attention.residual", "ffn.residual"), "plan_bracket": False,
}


@dataclass(frozen=True)
class RunConfig:
    """What ``bertnpu run`` does. The defaults are the full run; :meth:`quick` shrinks the calibration set, the sweep,
    the plan and the evaluation (its summary says ``quick``; its numbers are not the full run's).

    The full run searches the wide space (``search="wide"``: methods x outputs x modes 0-2 with its own
    percentile x topk cells), so ``percentiles`` / ``topk_ratios`` are None there: they belong to the grid search
    (None there: the grid's defaults). ``confirm`` and ``proxy_sentences`` steer the fast strategy only. A sweep knob
    the chosen search or strategy ignores (:func:`bertnpu.tune.sweep.ignored_knobs`) is refused when it differs from
    the preset's value, and never enters the sweep's cache key (:attr:`sweep_options`).
    ``plan_*`` None: :class:`~bertnpu.tune.plan.PlanSpec`'s defaults. ``validation_pairs`` / ``test_pairs`` 0: all.

    Example:
        >>> RunConfig.quick(out="q").calib_count, RunConfig.full().search
        (32, 'wide')
        >>> RunConfig.from_dict(RunConfig.quick().to_dict()) == RunConfig.quick()
        True
    """

    model: Optional[str] = None
    stsb_dir: Optional[str] = None
    out: str = "bertnpu-out"
    preset: str = "full"
    force: bool = False
    trust_remote_code: bool = False
    plan: bool = True  # False (--no-plan): no 16-bit planning; the sweep's INT8-only recommendation is evaluated and compiled
    target_device: Optional[str] = None  # qbcompiler's target_device written into the compiled recipe (1.3 needs one)
    calib_count: int = 256
    percentiles: Optional[tuple[float, ...]] = None  # grid search only
    topk_ratios: Optional[tuple[float, ...]] = None  # grid search only
    methods: tuple[int, ...] = (0, 1, 2, 3)
    outputs: tuple[int, ...] = (0, 1)
    search: str = "wide"
    strategy: str = "fast"
    confirm: int = CONFIRM  # fast strategy only
    proxy_sentences: int = PROXY_SENTENCES  # fast strategy only: validation sentences the sweep's proxy encodes per candidate
    validation_pairs: int = 0
    test_pairs: int = 0
    plan_max_sites: int = PlanSpec.max_sites
    plan_proxy_sentences: Optional[int] = None
    plan_configs: Optional[tuple[QuantConfig, ...]] = None
    plan_transforms: Optional[tuple[tuple[str, ...], ...]] = None
    plan_candidate_roles: Optional[tuple[str, ...]] = None
    plan_bracket: bool = True  # the profile bracket (every recipe under every profile on test)

    @classmethod
    def full(cls, **changes: Any) -> "RunConfig":
        """The full run (the defaults), with ``changes``."""
        return cls(**{"preset": "full", **changes})

    @classmethod
    def quick(cls, **changes: Any) -> "RunConfig":
        """The smoke run (:data:`QUICK`), with ``changes``."""
        return cls(**{**QUICK, "preset": "quick", **changes})

    @property
    def is_quick(self) -> bool:
        return self.preset == "quick"

    def __post_init__(self) -> None:
        for name in ("percentiles", "topk_ratios", "methods", "outputs", "plan_configs", "plan_transforms", "plan_candidate_roles"):
            value = getattr(self, name)
            if isinstance(value, list):  # JSON gives lists: keep the fields hashable tuples
                object.__setattr__(self, name, tuple(tuple(v) if isinstance(v, list) else v for v in value))
        self._check()

    def _check(self) -> None:
        def bad(name: str, allowed: str) -> BertnpuError:
            return BertnpuError(f"RunConfig.{name}={getattr(self, name)!r} is invalid; use {allowed}.")

        if self.target_device is not None:
            from .device.qb_calls import TARGET_DEVICES

            if self.target_device not in TARGET_DEVICES:
                raise bad("target_device", "one of " + ", ".join(TARGET_DEVICES) + ", or None")
        if self.preset not in PRESETS:
            raise bad("preset", " or ".join(PRESETS))
        self._check_sweep()
        for name, low in (("calib_count", 1), ("validation_pairs", 0), ("test_pairs", 0), ("plan_max_sites", 0)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise bad(name, f"a whole number of at least {low}")
        if self.plan_proxy_sentences is not None and (isinstance(self.plan_proxy_sentences, bool) or not isinstance(self.plan_proxy_sentences, int)
                                                      or self.plan_proxy_sentences < 1):
            raise bad("plan_proxy_sentences", "a whole number of at least 1, or None for PlanSpec's")
        if self.plan_configs is not None:
            object.__setattr__(self, "plan_configs", tuple(c if isinstance(c, QuantConfig) else QuantConfig.from_dict(c) for c in self.plan_configs))
        # the plan fields as the planner checks them (profile, tolerance, ...: PlanSpec's own defaults)
        PlanSpec(max_sites=self.plan_max_sites, **self.plan_options)

    def _check_sweep(self) -> None:
        # "set by the user": away from the preset's value (the quick preset's grid cells are no choice of the user's); None is unset
        preset = {f.name: f.default for f in dataclasses.fields(self)}
        if self.is_quick:
            preset.update(QUICK)
        knobs = {name: getattr(self, name) for name in SWEEP_FIELDS}
        check_sweep_knobs(self.search, self.strategy, knobs, given=[k for k, v in knobs.items() if v is not None and v != preset[k]],
                          spelling=Spelling.fields_of("RunConfig"))
        ignored = ignored_knobs(self.search, self.strategy)
        for name, grid_default in (("percentiles", PERCENTILES), ("topk_ratios", TOPK_RATIOS)):
            if name in ignored:  # the quick preset's cells under the wide search: None says they are not read
                object.__setattr__(self, name, None)
            elif getattr(self, name) is None:
                object.__setattr__(self, name, grid_default)

    @property
    def sweep_options(self) -> dict:
        """The :class:`~bertnpu.stages.SweepInputs` fields this run's search and strategy read (:func:`bertnpu.tune.sweep.read_knobs`):
        what the sweep stage gets and what its cache key holds, so a knob they ignore changes neither.

        Example:
            >>> RunConfig.full().sweep_options
            {'search': 'wide', 'strategy': 'fast', 'methods': (0, 1, 2, 3), 'outputs': (0, 1), 'confirm': 4, 'proxy_sentences': 256}
        """
        return read_knobs(self.search, self.strategy, {name: getattr(self, name) for name in SWEEP_FIELDS})

    @property
    def plan_options(self) -> dict:
        """PlanInputs fields beyond the defaults (the quick plan's smaller search; empty for the full run)."""
        names = {"plan_proxy_sentences": "proxy_sentences", "plan_configs": "configs", "plan_transforms": "transforms",
                 "plan_candidate_roles": "candidate_roles"}
        return {field: getattr(self, name) for name, field in names.items() if getattr(self, name) is not None}

    def with_(self, **changes: Any) -> "RunConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: tuples as lists, calibration configs as their dicts, stamped with the schema version."""
        def plain(value: Any) -> Any:
            if isinstance(value, QuantConfig):
                return value.to_dict()
            if isinstance(value, tuple):
                return [plain(v) for v in value]
            return value

        return {"schema_version": SCHEMA_VERSION, **{f.name: plain(getattr(self, f.name)) for f in dataclasses.fields(self)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "RunConfig":
        """The inverse of :meth:`to_dict`; unknown keys and bad values are one sentence each."""
        if not isinstance(data, Mapping):
            raise BertnpuError(f"A run configuration is a JSON object, not {type(data).__name__}; write it with RunConfig.to_dict().")
        data = dict(data)
        version = data.pop("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise BertnpuError(f"Run configuration schema_version {version!r} is not {SCHEMA_VERSION}; write it again with this bertnpu.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BertnpuError(f"Unknown run configuration key {unknown[0]!r}; use the keys of RunConfig.to_dict().")
        return cls(**data)

