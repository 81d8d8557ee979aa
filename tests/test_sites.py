"""Site names: stable, unique, one per tensor the NPU quantizes."""

from bertnpu.quant.sites import list_sites


def test_site_names():
    names = [s.name for s in list_sites(2)]
    assert names[0] == "embeddings.out" and names[-2:] == ["pooler.dense.out", "pooler.out"]
    assert len(names) == 1 + 2 * 14 + 2 and len(set(names)) == len(names)
    for required in ("layer.1.attention.query.out", "layer.1.attention.softmax.out", "layer.1.ffn.intermediate.out",
                     "layer.1.ffn.gelu.out", "layer.1.attention.residual", "layer.1.ffn.layernorm.out", "layer.0.attention.scores"):
        assert required in names
