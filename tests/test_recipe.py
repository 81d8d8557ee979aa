"""Recipe: every field through JSON and back, a field added later included; old QuantConfig files; bad files in one sentence."""

import json
from dataclasses import dataclass, field

import pytest

from bertnpu.errors import BertnpuError, BertnpuWarning
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.recipe import SCHEMA_VERSION, EquivalentTransformations, Recipe, load_recipe


def _full():
    return Recipe(calibration=QuantConfig(method=3, output=1, mode=2, percentile=0.99, topk_ratio=0.1, bits=6),
                  activation_16bits=("layer.0.ffn.residual", "pooler.out"),
                  equivalent_transformation=EquivalentTransformations(norm_conv=True, qk=True, vo=False, ud=True),
                  profile="optimistic", target_device="aries2", prediction={"spearman": {"aries": 0.81, "all-int8": 0.77}, "note": "x"})


def test_every_field_round_trips_through_a_file(tmp_path):
    r = _full()
    path = r.save(tmp_path / "recipe.json")
    raw = json.loads(path.read_text())
    assert raw["schema_version"] == SCHEMA_VERSION and raw["tool"].startswith("bertnpu ")
    assert raw["calibration"] == {"method": 3, "output": 1, "mode": 2, "percentile": 0.99, "topk_ratio": 0.1, "bits": 6}
    assert raw["equivalent_transformation"] == {"norm_conv": True, "qk": True, "vo": False, "ud": True}
    back = Recipe.load(path)
    assert back == r and hash(back) == hash(r)
    assert back.prediction == {"spearman": {"aries": 0.81, "all-int8": 0.77}, "note": "x"}


@dataclass(frozen=True)
class _Budget:
    max_sites: int = 8
    tolerance: float = 0.005


@dataclass(frozen=True)
class _RecipeV3(Recipe):
    """A later recipe: a scalar and a nested dataclass field added, with no new JSON code."""

    calibration_samples: int = 256
    budget: _Budget = field(default_factory=_Budget)


def test_a_field_added_later_round_trips():
    r = _RecipeV3(activation_16bits=("pooler.out",), calibration_samples=512, budget=_Budget(max_sites=4, tolerance=0.01))
    data = json.loads(json.dumps(r.to_dict()))
    assert data["budget"] == {"max_sites": 4, "tolerance": 0.01} and data["calibration_samples"] == 512
    back = _RecipeV3.from_dict(data)
    assert back == r and isinstance(back.budget, _Budget)
    with pytest.raises(BertnpuError, match="Unknown field"):  # today's Recipe names what it cannot read
        Recipe.from_dict(data)


def test_a_quantconfig_file_loads_as_a_recipe(tmp_path):
    cfg = QuantConfig(method=0, percentile=0.99)
    path = cfg.save(tmp_path / "cfg.json")
    assert load_recipe(path) == Recipe(calibration=cfg)
    assert load_recipe(None) == Recipe() and Recipe().calibration == QuantConfig()


@pytest.mark.parametrize("data,needle", [
    ({"schema_version": SCHEMA_VERSION + 1}, "newer than this bertnpu reads"),
    ({"schema_version": "2"}, "schema_version='2' is invalid"),
    ({"calibration": {"method": 9}}, "QuantConfig.method=9"),
    ({"activation_16bits": "layer.0.ffn.residual"}, "give a JSON list"),
    ({"equivalent_transformation": {"qk": "yes"}}, "equivalent_transformation.qk='yes'"),
    ({"profile": "fast"}, "Unknown precision profile 'fast'"),
    ({"target_device": 3}, "target_device=3 is invalid"),
    ([1, 2], "must be a JSON object"),
])
def test_bad_recipes_are_one_sentence(data, needle):
    with pytest.raises(BertnpuError, match=needle.replace("(", r"\(").replace("[", r"\[")) as info:
        Recipe.from_dict(data)
    assert "\n" not in str(info.value)


def test_sixteen_bit_sites_are_checked_and_deduplicated():
    r = Recipe(activation_16bits=("pooler.out", "pooler.out", "embeddings.out"))
    assert r.activation_16bits == ("pooler.out", "embeddings.out")
    with pytest.warns(BertnpuWarning, match="names all 2 sites of the model, so no activation stays INT8"):
        r.check_sites(["embeddings.out", "pooler.out"])
    with pytest.raises(BertnpuError, match="Unknown site\\(s\\) pooler.out"):
        r.check_sites(iter(["embeddings.out"]))
    assert "2 site(s) at 16 bits" in r.label() and r.label().endswith("[aries]")


def test_with_16bits_is_the_one_merge_rule():
    """Adding (the CLI's --a16) keeps the recipe's sites first and a repeat once; replacing (simulate's activation_16bits) drops them."""
    from bertnpu.quant.simulate import as_recipe

    base = Recipe(activation_16bits=("layer.0.ffn.residual", "layer.1.ffn.residual"))
    added = base.with_16bits(("layer.2.ffn.residual", "layer.0.ffn.residual"))
    assert added.activation_16bits == ("layer.0.ffn.residual", "layer.1.ffn.residual", "layer.2.ffn.residual")
    assert base.with_16bits(["layer.2.ffn.residual"], replace_sites=True).activation_16bits == ("layer.2.ffn.residual",)
    assert as_recipe(base, activation_16bits=["layer.2.ffn.residual"]) == base.with_16bits(("layer.2.ffn.residual",), replace_sites=True)
    with pytest.raises(BertnpuError, match="activation_16bits='layer.0.ffn.residual' is invalid"):
        base.with_16bits("layer.0.ffn.residual")


def test_a_bad_field_names_the_recipe_file_that_holds_it(tmp_path):
    import json

    from bertnpu.errors import BertnpuError
    from bertnpu.quant.recipe import Recipe

    path = tmp_path / "edited.json"
    path.write_text(json.dumps({**Recipe().to_dict(), "prediction": [1, 2]}))
    with pytest.raises(BertnpuError) as exc:
        Recipe.load(path)
    text = str(exc.value)
    assert text.startswith(f"In the recipe file {str(path)!r}: prediction=[1, 2] is invalid") and "\n" not in text
