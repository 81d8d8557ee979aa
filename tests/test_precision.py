"""Precision profiles: bit widths per role, their evidence, and site_bits."""

from pathlib import Path

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.quant.precision import NOT_PUBLISHED, PROFILE_NAMES, get_profile, profile_table, site_bits, site_role
from bertnpu.quant.sites import list_sites

FACTS = Path(__file__).resolve().parents[2] / "shared" / "reference" / "mobilint_sdk_facts.md"


def _sixteen(profile):
    return {s: b for s, b in site_bits([x.name for x in list_sites(2)], profile).items() if b == 16}


def test_profiles_by_hand():
    assert PROFILE_NAMES == ("aries", "all-int8", "optimistic")
    assert set(_sixteen("aries")) == {"layer.0.attention.softmax.out", "layer.1.attention.softmax.out"}
    assert _sixteen("all-int8") == {}
    roles = {"attention.softmax.out", "attention.layernorm.out", "ffn.layernorm.out", "attention.residual", "ffn.residual", "ffn.gelu.out"}
    assert set(_sixteen("optimistic")) == {f"layer.{i}.{r}" for i in range(2) for r in roles}
    for name in PROFILE_NAMES:  # the score MatMul output is INT8 in every profile, as Mobilint stated
        assert get_profile(name).bits_for("layer.3.attention.scores") == 8


def test_every_role_names_its_evidence():
    for name in PROFILE_NAMES:
        rows = profile_table(name)
        assert rows[-1]["role"] == "(every other site)"
        for row in rows:
            assert row["evidence"] and (NOT_PUBLISHED in row["evidence"] or "mobilint_sdk_facts.md" in row["evidence"]), (name, row)
    softmax = get_profile("aries").role_precision("attention.softmax.out")
    assert softmax.bits == 16 and "mobilint_sdk_facts.md" in softmax.evidence
    assert NOT_PUBLISHED in get_profile("optimistic").role_precision("ffn.residual").evidence


@pytest.mark.skipif(not FACTS.is_file(), reason="the shared facts file is beside the checkout")
def test_cited_facts_are_in_the_facts_file():
    text = FACTS.read_text(encoding="utf-8")
    assert "softmax and the requantize right before it already run at 16 bits" in text
    assert "score MatMul (Q·Kᵀ) output is INT8" in text
    assert "16-bit override of every LayerNormalization was\n  a no-op (identical `.mxq` bytes)" in text  # override_no_effect's evidence


def test_override_no_effect_names_layernorm_outputs_only():
    from bertnpu.quant.precision import override_no_effect

    moot = [s.name for s in list_sites(3) if override_no_effect(s.name)]
    assert moot == [f"layer.{i}.{r}" for i in range(3) for r in ("attention.layernorm.out", "ffn.layernorm.out")]
    assert "mobilint_sdk_facts.md" in override_no_effect("layer.0.ffn.layernorm.out")


def test_site_bits_overrides_and_errors():
    sites = ["layer.0.ffn.residual", "layer.0.attention.softmax.out", "embeddings.out"]
    assert site_bits(sites, "aries", ["embeddings.out"]) == {"layer.0.ffn.residual": 8, "layer.0.attention.softmax.out": 16, "embeddings.out": 16}
    assert site_role("layer.11.ffn.gelu.out") == "ffn.gelu.out" and site_role("pooler.out") == "pooler.out"
    with pytest.raises(BertnpuError, match=r"Unknown site\(s\) layer.9.x in activation_16bits"):
        site_bits(sites, "aries", ["layer.9.x"])
    with pytest.raises(BertnpuError, match="Unknown precision profile 'int4'; use one of aries, all-int8, optimistic"):
        site_bits(sites, "int4")
