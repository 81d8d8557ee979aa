"""Precision profiles: the activation bit width the NPU uses by default at each site role, with its evidence.

Mobilint publishes little about which tensors its compiler keeps above 8 bits. A profile is
one reading of what is known; every role says where its bit width comes from, either a fact
in ``shared/reference/mobilint_sdk_facts.md`` (section "Mixed precision and equivalent
transformations") or "not published". Simulating under all three profiles brackets what the
unknowns can cost.

* ``aries`` (default): INT8 everywhere except the softmax output (and the requantize before
  the softmax) at 16 bits, as Mobilint support stated for ARIES. The requantize reads the
  INT8 Q·Kᵀ MatMul output, so it adds no error of its own: bertnpu models it by keeping the
  ``attention.scores`` site at 8 bits.
* ``all-int8``: every site at 8 bits (bertnpu's behaviour before profiles).
* ``optimistic``: LayerNorm outputs, residual sums, GELU and the softmax at 16 bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from ..errors import BertnpuError

FACTS = "shared/reference/mobilint_sdk_facts.md"
STATED = f"Mobilint support, quoted in {FACTS} ('Mixed precision'): softmax and the requantize before it run at 16 bits on ARIES"
SCORE_INT8 = f"Mobilint support, quoted in {FACTS} ('Mixed precision'): the Q·Kᵀ MatMul output is INT8"
NOT_PUBLISHED = "not published"
ASSUMED_16 = "not published; assumed 16 bits to bound the best case"
ASSUMED_8 = "not published; assumed INT8 (the compiler's default activation width)"

LAYERNORM_ROLES = ("attention.layernorm.out", "ffn.layernorm.out")
RESIDUAL_ROLES = ("attention.residual", "ffn.residual")
GELU_ROLES = ("ffn.gelu.out",)
SOFTMAX_ROLES = ("attention.softmax.out",)
SCORE_ROLES = ("attention.scores",)

# roles whose 16-bit override was seen to change nothing on the device (so it is no lever to plan with)
LAYERNORM_OVERRIDE_NO_EFFECT = (f"an ARIES user's measurement quoted in {FACTS} ('Mixed precision'): a 16-bit override of every "
                                "LayerNormalization left the compiled .mxq byte-identical, so the compiler does not honour it")
NO_EFFECT_OVERRIDES = {r: LAYERNORM_OVERRIDE_NO_EFFECT for r in LAYERNORM_ROLES}


@dataclass(frozen=True)
class RolePrecision:
    """Activation bit width of one site role and where that number comes from."""

    bits: int
    evidence: str


@dataclass(frozen=True)
class PrecisionProfile:
    """Default activation bits per site role; roles not listed use ``default``."""

    name: str
    description: str
    default: RolePrecision
    roles: Mapping[str, RolePrecision] = field(default_factory=dict)

    def role_precision(self, role: str) -> RolePrecision:
        return self.roles.get(role, self.default)

    def bits_for(self, site: str) -> int:
        """Bit width of a site name (``layer.3.ffn.residual`` -> its role ``ffn.residual``)."""
        return self.role_precision(site_role(site)).bits

    def sixteen_bit_roles(self) -> list[str]:
        return sorted(r for r, p in self.roles.items() if p.bits == 16)


def site_role(site: str) -> str:
    """``layer.3.ffn.residual`` -> ``ffn.residual``; names outside the layers are their own role."""
    return site.split(".", 2)[-1] if site.startswith("layer.") else site


def override_no_effect(site: str) -> str | None:
    """Why a 16-bit override of ``site`` is known to change nothing on the device (``None``: no such observation).

    Example:
        >>> override_no_effect("layer.2.attention.layernorm.out") is not None, override_no_effect("layer.2.ffn.residual")
        (True, None)
    """
    return NO_EFFECT_OVERRIDES.get(site_role(site))


def _profile(name: str, description: str, sixteen: Iterable[str], evidence16: str) -> PrecisionProfile:
    roles = {r: RolePrecision(8, SCORE_INT8) for r in SCORE_ROLES}
    roles.update({r: RolePrecision(16, STATED) for r in SOFTMAX_ROLES})
    roles.update({r: RolePrecision(16, evidence16) for r in sixteen})
    return PrecisionProfile(name, description, RolePrecision(8, ASSUMED_8), roles)


PROFILES: dict[str, PrecisionProfile] = {
    "aries": _profile("aries", "INT8 except the softmax (and the requantize before it) at 16 bits, as Mobilint stated for ARIES", (), STATED),
    "all-int8": PrecisionProfile("all-int8", "every activation INT8 (the pessimistic bound)", RolePrecision(8, ASSUMED_8),
                                 {r: RolePrecision(8, f"assumed INT8 for this bound, although {STATED}") for r in SOFTMAX_ROLES}),
    "optimistic": _profile("optimistic", "LayerNorm outputs, residual sums, GELU and softmax at 16 bits (the optimistic bound)",
                           LAYERNORM_ROLES + RESIDUAL_ROLES + GELU_ROLES, ASSUMED_16),
}
DEFAULT_PROFILE = "aries"
PROFILE_NAMES = tuple(PROFILES)


def get_profile(name: str) -> PrecisionProfile:
    """The profile called ``name``; one sentence naming the allowed names otherwise."""
    try:
        return PROFILES[name]
    except (KeyError, TypeError):
        raise BertnpuError(f"Unknown precision profile {name!r}; use one of {', '.join(PROFILE_NAMES)}.") from None


def site_bits(sites: Iterable[str], profile: str | PrecisionProfile = DEFAULT_PROFILE, activation_16bits: Iterable[str] = ()) -> dict[str, int]:
    """Activation bit width of every site: the profile's default, raised to 16 for ``activation_16bits``.

    Example:
        >>> site_bits(["layer.0.attention.softmax.out", "layer.0.ffn.residual"], "aries", ["layer.0.ffn.residual"])
        {'layer.0.attention.softmax.out': 16, 'layer.0.ffn.residual': 16}
    """
    prof = get_profile(profile) if isinstance(profile, str) else profile
    names = list(sites)
    extra = set(activation_16bits)
    unknown = sorted(extra - set(names))
    if unknown:
        raise BertnpuError(f"Unknown site(s) {', '.join(unknown)} in activation_16bits; list the sites with `bertnpu sites`.")
    return {s: 16 if s in extra else prof.bits_for(s) for s in names}


def profile_table(profile: str | PrecisionProfile) -> list[dict]:
    """Rows ``role, bits, evidence`` of a profile (its listed roles, then the default), for tables and reports."""
    prof = get_profile(profile) if isinstance(profile, str) else profile
    rows = [{"role": r, "bits": p.bits, "evidence": p.evidence} for r, p in sorted(prof.roles.items())]
    rows.append({"role": "(every other site)", "bits": prof.default.bits, "evidence": prof.default.evidence})
    return rows
