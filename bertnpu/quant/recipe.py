"""The recipe: everything qbcompiler takes for one compile, in bertnpu's names, as versioned JSON.

A recipe nests the calibration config (:class:`~bertnpu.quant.config.QuantConfig`), the sites
whose activations go to 16 bits, the equivalent transformations, the precision profile the
prediction assumed, and the target device. The simulator, the planner, the compile path and
the bundle all read this one object, so what is compiled is what was simulated.

JSON layout (schema 2)::

    {"schema_version": 2, "tool": "bertnpu 0.3.0",
     "calibration": {"method": 1, "output": 0, "mode": 1, "percentile": 0.999, "topk_ratio": 0.01, "bits": 8},
     "activation_16bits": ["layer.0.ffn.residual"],
     "equivalent_transformation": {"norm_conv": false, "qk": true, "vo": false, "ud": false},
     "profile": "aries", "target_device": null, "prediction": {}}

A flat QuantConfig JSON (schema 1) loads as a recipe with no overrides.
"""

from __future__ import annotations

import dataclasses
import json
import re
import typing
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping, Optional

from ..artifacts import atomic_write_json
from ..errors import BertnpuError, BertnpuWarning
from ..schema import check_schema_version, load_json_file, short_repr, show_key
from ..version import __version__
from .config import QuantConfig, warn_pointless_calibration
from .precision import DEFAULT_PROFILE, get_profile

SCHEMA_VERSION = 2
_FIX = "fix it, or write a new one with `bertnpu plan --out recipe.json`."
_PREDICTION_VALUES = (str, int, float, bool, type(None))
TRANSFORMATIONS = {
    "norm_conv": "NormConv: fold each LayerNorm's scale and shift into the Linears that read it",
    "qk": "Qk: rotate query and key weights by one orthogonal matrix per head (scores unchanged)",
    "vo": "Vo: rotate value and attention-output weights by one orthogonal matrix per head (output unchanged)",
    "ud": "Ud: rotate the FFN up/down weights (not simulated by bertnpu: GELU does not commute with a rotation)",
}


@dataclass(frozen=True)
class EquivalentTransformations:
    """qbcompiler's ``EquivalentTransformationConfig`` switches, by bertnpu's names."""

    norm_conv: bool = False
    qk: bool = False
    vo: bool = False
    ud: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, bool):
                raise BertnpuError(f"equivalent_transformation.{f.name}={value!r} is invalid; use true or false.")

    def enabled(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name)]


@dataclass(frozen=True)
class Recipe:
    """One compile recipe. ``activation_16bits`` holds bertnpu site names (``bertnpu sites``).

    Example:
        >>> r = Recipe(activation_16bits=("layer.0.ffn.residual",))
        >>> Recipe.from_dict(r.to_dict()) == r
        True
    """

    calibration: QuantConfig = QuantConfig()
    activation_16bits: tuple[str, ...] = ()
    equivalent_transformation: EquivalentTransformations = EquivalentTransformations()
    profile: str = DEFAULT_PROFILE
    target_device: Optional[str] = None
    prediction: Mapping[str, Any] = field(default_factory=dict)
    # the qbcompiler release (major.minor) the recipe is compiled with; None: the current one (bertnpu.device.qb_calls)
    qbcompiler_version: Optional[str] = None
    # qbcompiler's own operator names at 16 bits (`bertnpu mblt-ops`), for when the structural site mapping fails
    activation_16bits_operators: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        sites = self.activation_16bits
        if isinstance(sites, str) or not all(isinstance(s, str) for s in sites):
            raise BertnpuError(f"activation_16bits={sites!r} is invalid; give a list of site names such as [\"layer.0.ffn.residual\"].")
        object.__setattr__(self, "activation_16bits", tuple(dict.fromkeys(sites)))
        get_profile(self.profile)
        if self.target_device is not None and not isinstance(self.target_device, str):
            raise BertnpuError(f"target_device={self.target_device!r} is invalid; give qbcompiler's device name such as \"aries2\", or null.")
        object.__setattr__(self, "prediction", check_prediction(self.prediction))
        ops = self.activation_16bits_operators
        if isinstance(ops, str) or not all(isinstance(o, str) and o for o in ops):
            raise BertnpuError(f"activation_16bits_operators={ops!r} is invalid; give a list of operator names from `bertnpu mblt-ops FILE.mblt`.")
        object.__setattr__(self, "activation_16bits_operators", tuple(dict.fromkeys(ops)))
        version = self.qbcompiler_version
        if version is not None and not (isinstance(version, str) and re.fullmatch(r"\d+\.\d+(\.\d+)?", version)):
            raise BertnpuError(f"qbcompiler_version={version!r} is invalid; give a release such as \"1.3\", or null for the current one.")

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    def with_(self, **changes: Any) -> "Recipe":
        return replace(self, **changes)

    def with_16bits(self, sites: typing.Iterable[str], *, replace_sites: bool = False) -> "Recipe":
        """The one rule for changing the 16-bit sites: ``sites`` are added after the recipe's own (in order, a repeat
        kept once), or with ``replace_sites`` they replace them. The CLI's ``--a16`` adds; ``simulate(activation_16bits=...)``
        replaces (it brackets one recipe over site lists). Validated by ``__post_init__``, like every recipe.

        Example:
            >>> Recipe(activation_16bits=("a",)).with_16bits(("b", "a")).activation_16bits
            ('a', 'b')
        """
        if isinstance(sites, str):
            raise BertnpuError(f"activation_16bits={sites!r} is invalid; give a list of site names such as [\"layer.0.ffn.residual\"].")
        sites = tuple(sites)
        return self.with_(activation_16bits=sites if replace_sites else self.activation_16bits + sites)

    def check_sites(self, known: typing.Iterable[str]) -> None:
        """One sentence naming every 16-bit site that ``known`` (the model's sites) lacks."""
        known = set(known)
        unknown = [s for s in self.activation_16bits if s not in known]
        if unknown:
            raise BertnpuError(f"Unknown site(s) {', '.join(unknown)} in the recipe's activation_16bits; list this model's sites with `bertnpu sites`.")
        if known and known <= set(self.activation_16bits):
            warnings.warn(f"activation_16bits names all {len(known)} sites of the model, so no activation stays INT8: the NPU moves twice the "
                          "activation traffic and the INT8 simulation has nothing left to judge.", BertnpuWarning, stacklevel=2)

    def label(self) -> str:
        parts = [self.calibration.label()]
        if self.equivalent_transformation.enabled():
            parts.append("+".join(self.equivalent_transformation.enabled()))
        if self.activation_16bits:
            parts.append(f"{len(self.activation_16bits)} site(s) at 16 bits")
        return ", ".join(parts) + f" [{self.profile}]"

    # -- JSON ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, **_encode(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        if not isinstance(data, Mapping):
            raise BertnpuError(f"A recipe must be a JSON object, not a {type(data).__name__}; write one with `bertnpu plan` or Recipe().save(path).")
        # A dict built in memory may omit the version (read as 1: the layout decides); a file must carry it (see load).
        check_schema_version(data, "The recipe", _FIX, SCHEMA_VERSION, missing=1)
        if "calibration" not in data and "method" in data:  # a schema-1 QuantConfig file
            return cls(calibration=QuantConfig.from_dict(data))
        body = {k: v for k, v in data.items() if k not in ("schema_version", "tool")}
        return _decode(cls, body, "recipe")

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the recipe as JSON, stamped with the tool and schema version."""
        return atomic_write_json(path, {**self.to_dict(), "tool": f"bertnpu {__version__}"}, force=force)

    @classmethod
    def load(cls, path: str | Path) -> "Recipe":
        """A recipe file, or a QuantConfig file (loaded as a recipe with no overrides)."""
        path = Path(path)
        if path.is_dir():
            raise BertnpuError(f"Recipe path {str(path)!r} is a folder; pass the recipe JSON file inside it (e.g. recipe.json).")
        # bounded size and depth, no duplicate keys, UTF-8: one sentence each (bertnpu.schema)
        data = load_json_file(path, "recipe file", _FIX)
        if isinstance(data, Mapping) and "calibration" in data:
            # Recipe.save has stamped the version since the first nested recipe; a flat QuantConfig file may
            # lack it (see QuantConfig.load) and from_dict then reads it as version 1.
            check_schema_version(data, f"The recipe file {str(path)!r}", _FIX, SCHEMA_VERSION)
        try:
            recipe = cls.from_dict(data)
        except BertnpuError as exc:  # a field's sentence, told which file holds it
            text = str(exc)
            raise BertnpuError(text if str(path) in text else f"In the recipe file {str(path)!r}: {text}") from None
        warn_pointless_calibration(recipe.calibration, f"recipe file {path.name!r}")
        return recipe


def _interval(v: Any) -> bool:
    """A confidence interval as a prediction stores it: ``[lo, hi]``, two numbers (NaN for too few pairs)."""
    return isinstance(v, list) and len(v) == 2 and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)


def check_prediction(prediction: Any) -> dict[str, Any]:
    """What a prediction may hold: names mapped to numbers, text, true/false, null or an interval ``[lo, hi]``, or to one
    level of such tables."""
    if not isinstance(prediction, Mapping):
        raise BertnpuError(f"prediction={short_repr(prediction)} is invalid; give a JSON object such as {{\"test_spearman\": 0.81}} or {{}}.")
    for key, value in prediction.items():
        values = value.items() if isinstance(value, Mapping) else [(None, value)]
        for sub, v in values:
            if not isinstance(key, str) or not isinstance(sub, (str, type(None))) or not (isinstance(v, _PREDICTION_VALUES) or _interval(v)):
                name = f"prediction.{key}" + (f".{sub}" if sub is not None else "")
                raise BertnpuError(f"{name}={short_repr(v)} is invalid; a prediction holds numbers, text, true/false, null or intervals "
                                   "[lo, hi] (or one level of tables of them).")
    return {k: {s: list(x) if isinstance(x, list) else x for s, x in v.items()} if isinstance(v, Mapping) else (list(v) if isinstance(v, list) else v)
            for k, v in prediction.items()}


def load_recipe(path: Optional[str | Path]) -> Recipe:
    """The recipe (or QuantConfig) at ``path``; the tutorial's config with no overrides when ``path`` is None."""
    return Recipe() if path is None else Recipe.load(path)


# -- generic nested dataclass <-> JSON, so a field added later round-trips without new code ----
def _encode(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _encode(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, (tuple, list)):
        return [_encode(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): _encode(v) for k, v in obj.items()}
    return obj


def _decode(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise BertnpuError(f"{where} must be a JSON object, not {data!r}; see `bertnpu plan --help` for the recipe layout.")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known - ({"schema_version", "tool"} if cls is QuantConfig else set()))
    if unknown:
        raise BertnpuError(f"Unknown field(s) {', '.join(map(show_key, unknown[:5]))} in {where}; allowed: {', '.join(sorted(known))}.")
    kwargs = {}
    for name, value in data.items():
        if name not in known:
            continue
        hint = hints[name]
        origin = typing.get_origin(hint)
        if dataclasses.is_dataclass(hint):
            kwargs[name] = _decode(hint, value, f"{where}.{name}")
        elif origin is tuple:
            if not isinstance(value, list):
                raise BertnpuError(f"{where}.{name}={value!r} is invalid; give a JSON list.")
            kwargs[name] = tuple(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)
