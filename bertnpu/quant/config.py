"""The quantization config, in qbcompiler's vocabulary, with conversion to both API generations."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..version import __version__
from ..artifacts import atomic_write_json
from ..errors import BertnpuError, BertnpuWarning

SCHEMA_VERSION = 1
# Below this, MaxPercentile clips most of the top values it keeps apart: the tutorial uses 0.999, sweeps 0.99-1.0.
LOW_PERCENTILE = 0.5
METHODS = {0: "weight per-channel, activation per-layer", 1: "weight per-channel, activation multi-layer",
           2: "method 0 with activation zero-point", 3: "method 1 with activation zero-point"}
OUTPUTS = {0: "one scale per layer output", 1: "one scale per output channel", 2: "sigmoid-based"}
MODES = {0: "Max", 1: "MaxPercentile", 2: "Histogram"}


@dataclass(frozen=True)
class QuantConfig:
    """qbcompiler's calibration knobs. The default is Mobilint's tutorial config.

    method 0-3, output 0-2, mode 0 (Max) / 1 (MaxPercentile) / 2 (Histogram);
    ``percentile`` in (0, 1] and ``topk_ratio`` in (0, 1] are used by mode 1; ``bits`` is
    the integer width (8 on the NPU; other widths for what-if simulation).
    """

    method: int = 1
    output: int = 0
    mode: int = 1
    percentile: float = 0.999
    topk_ratio: float = 0.01
    bits: int = 8

    def __post_init__(self) -> None:
        for name, allowed in (("method", METHODS), ("output", OUTPUTS), ("mode", MODES)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
                raise BertnpuError(f"QuantConfig.{name}={value!r} is invalid; use one of {sorted(allowed)} ({'; '.join(f'{k}: {v}' for k, v in allowed.items())}).")
        for name in ("percentile", "topk_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise BertnpuError(f"QuantConfig.{name}={value!r} is invalid; it must lie in (0, 1], e.g. 0.999 for percentile or 0.01 for topk_ratio.")
        if isinstance(self.bits, bool) or not isinstance(self.bits, int) or not 2 <= self.bits <= 16:
            raise BertnpuError(f"QuantConfig.bits={self.bits!r} is invalid; use an integer from 2 to 16 (the NPU runs 8).")

    @property
    def zero_point(self) -> bool:
        """Methods 2 and 3 quantize activations asymmetrically (with a zero-point)."""
        return self.method in (2, 3)

    @property
    def multi_layer(self) -> bool:
        """Methods 1 and 3 share activation statistics across layers."""
        return self.method in (1, 3)

    def with_(self, **changes: Any) -> "QuantConfig":
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QuantConfig":
        from ..schema import show_key

        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known - {"schema_version", "tool"})
        if unknown:
            raise BertnpuError(f"Unknown QuantConfig field(s) {', '.join(map(show_key, unknown[:5]))}; allowed: {', '.join(sorted(known))}.")
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: str | Path, *, force: bool = False) -> Path:
        """Write the config as JSON, stamped with the tool and schema version."""
        return atomic_write_json(path, {**self.to_dict(), "schema_version": SCHEMA_VERSION, "tool": f"bertnpu {__version__}"}, force=force)

    @classmethod
    def load(cls, path: str | Path) -> "QuantConfig":
        from ..artifacts import read_json
        from ..schema import check_schema_version

        fix = "write one with QuantConfig().save(path) or `bertnpu sweep`, or fix it."
        # folder, missing, non-UTF-8, broken JSON, too big or deep, not an object: each one sentence
        data = read_json(path, "config file", fix)
        # QuantConfig.save always stamps a version, but a flat config speaks qbcompiler's vocabulary and is often
        # written by hand or by other tools without one: missing reads as version 1; 0, -1 or text are refused.
        check_schema_version(data, f"The config file {str(path)!r}", fix, SCHEMA_VERSION, missing=1)
        config = cls.from_dict(data)
        warn_pointless_calibration(config, f"config file {Path(path).name!r}")
        return config

    def legacy_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``QuantizationConfig.from_kwargs`` (qbcompiler 1.0.x)."""
        return {"quantization_method": self.method, "quantization_output": self.output, "quantization_mode": self.mode,
                "percentile": self.percentile, "topk_ratio": self.topk_ratio}

    def label(self) -> str:
        return f"method {self.method}, output {self.output}, {MODES[self.mode]}" + (
            f" p={self.percentile:g} topk={self.topk_ratio:g}" if self.mode == 1 else "") + ("" if self.bits == 8 else f", {self.bits}-bit")


def warn_pointless_calibration(config: QuantConfig, source: str) -> None:
    """One warning when a loaded config is legal but clips far more than anyone means to."""
    from .thresholds import clipped_share

    if config.mode == 1 and config.percentile < LOW_PERCENTILE:
        share = clipped_share(config.percentile, config.topk_ratio)
        warnings.warn(
            f"percentile={config.percentile:g} in the {source} clips {share:.3g} of every site's values (nearly all of the top "
            f"topk_ratio={config.topk_ratio:g} share MaxPercentile keeps apart), so the largest activations are cut off; "
            "the tutorial uses 0.999.", BertnpuWarning, stacklevel=3)


def warn_pointless_topk(config: QuantConfig, largest_count: int, source: str) -> None:
    """One warning when MaxPercentile clips nothing at any site: ``topk_ratio`` too small for the calibration set.

    ``largest_count``: the most values any site observed (see ``thresholds.clipped_count``).
    """
    from .thresholds import clipped_count

    # Only a topk_ratio below the tutorial's: with its 0.01 a small calibration set clips nothing too, but then the
    # set is what is too small (and valid files keep their quiet output).
    small = config.topk_ratio < QuantConfig().topk_ratio
    if small and config.mode == 1 and config.percentile < 1 and largest_count > 0 and clipped_count(largest_count, config.percentile, config.topk_ratio) == 0:
        warnings.warn(
            f"topk_ratio={config.topk_ratio:g} with percentile={config.percentile:g} in the {source} keeps fewer than one of even the largest "
            f"site's {largest_count} calibration values apart, so nothing is clipped and mode 1 acts as Max (mode 0).",
            BertnpuWarning, stacklevel=3)
