"""Site -> operator mapping on synthetic graphs shaped like a parsed BERT, whose true mapping is known by construction."""

import random
from types import SimpleNamespace

import pytest

from bertnpu.device.mblt_map import EMBEDDINGS_REASON, graph_ops, map_sites
from bertnpu.errors import BertnpuError
from bertnpu.quant.sites import list_sites


class GraphBuilder:
    """Builds a BERT-shaped op list with opaque names; ``truth`` records which op each site is."""

    def __init__(self, seed=0, padding=True):
        self.rng = random.Random(seed)
        self.ops, self.truth, self.next_id = [], {}, 100
        self.padding = padding  # transparent ops between the real ones, as a parser emits them

    def tensor(self):
        self.next_id += 1
        return self.next_id

    def op(self, kind, inputs, site=None):
        out = self.tensor()
        name = f"op_{self.rng.getrandbits(40):010x}"  # opaque: a mapper cannot read roles from names
        self.ops.append(SimpleNamespace(name=name, layertype=f"qbcompiler.LayerType.{kind}", inputs=list(inputs), outputs=[out]))
        if site:
            self.truth[site] = name
        return out

    def pad(self, t, *kinds):
        for kind in kinds if self.padding else ():
            t = self.op(kind, [t])
        return t

    def layer(self, i, x, mask):
        p = f"layer.{i}."
        x_in = self.pad(x, "Requantize")
        q = self.op("Convolution", [x_in], p + "attention.query.out")
        k = self.op("Convolution", [x_in], p + "attention.key.out")
        v = self.op("Convolution", [x_in], p + "attention.value.out")
        qh = self.pad(q, "Reshape", "Transpose")
        kh = self.pad(k, "Reshape", "Transpose", "Transpose")
        vh = self.pad(v, "HeaderView", "Reshape", "Transpose")
        scores = self.op("MatMul", [qh, kh], p + "attention.scores")
        scaled = self.op("MultiplyConstant", [scores])
        masked = self.op("Adding", [scaled, mask])
        probs = self.op("Softmax", [self.pad(masked, "Requantize")], p + "attention.softmax.out")
        ctx = self.op("MatMul", [self.pad(probs, "Identity"), vh], p + "attention.output.in")
        ctx = self.pad(ctx, "Transpose", "Reshape")
        a = self.op("Convolution", [ctx], p + "attention.output.out")
        a = self.op("Adding", [self.pad(a, "Requantize"), x], p + "attention.residual")
        ln1 = self.op("LayerNormalization", [a], p + "attention.layernorm.out")
        h = self.op("Convolution", [self.pad(ln1, "Cast")], p + "ffn.intermediate.out")
        g = self.op("Gelu", [h], p + "ffn.gelu.out")
        o = self.op("Convolution", [self.pad(g, "Requantize")], p + "ffn.output.out")
        y = self.op("Adding", [o, self.pad(ln1, "Identity")], p + "ffn.residual")
        return self.op("LayerNormalization", [y], p + "ffn.layernorm.out")

    def bert(self, layers, pooler):
        x, mask_in = self.tensor(), self.tensor()
        mask = self.op("MultiplyConstant", [self.op("Cast", [mask_in])])
        for i in range(layers):
            x = self.layer(i, x, mask)
        if pooler:
            cls = self.op("HeaderView", [x])
            dense = self.op("Convolution", [cls], "pooler.dense.out")
            self.op("Tanh", [dense], "pooler.out")
        return SimpleNamespace(subgraphs=[SimpleNamespace(operators=self.ops)])


def _sites(layers, pooler):
    return [s.name for s in list_sites(layers, pooler)]


@pytest.mark.parametrize("layers,pooler,padding", [(1, False, True), (3, True, True), (5, False, False), (7, True, False)])
def test_every_site_found_by_structure(layers, pooler, padding):
    b = GraphBuilder(seed=layers, padding=padding)
    md = b.bert(layers, pooler)
    site_map = map_sites(graph_ops(md), _sites(layers, pooler))
    assert site_map.layers_found == layers
    assert site_map.operators == b.truth  # every site but the NPU input, and nothing else
    assert set(site_map.unmapped) == {"embeddings.out"} and site_map.unmapped["embeddings.out"] == EMBEDDINGS_REASON
    assert len(set(site_map.operators.values())) == len(site_map.operators)
    want = ["layer.0.attention.scores", f"layer.{layers - 1}.ffn.residual"]
    assert site_map.resolve(want) == [b.truth[s] for s in want]


def test_structure_not_list_order_within_a_layer():
    b = GraphBuilder(seed=3)
    md = b.bert(3, False)
    random.Random(1).shuffle(md.subgraphs[0].operators)
    site_map = map_sites(graph_ops(md), _sites(3, False))
    # layers are numbered in the order their Softmax ops are listed; inside a layer only edges count
    true_layer = {b.truth[f"layer.{i}.attention.softmax.out"]: i for i in range(3)}
    order = [true_layer[o.name] for o in md.subgraphs[0].operators if o.layertype.endswith("Softmax")]
    roles = {s.split(".", 2)[2] for s in b.truth}
    assert len(roles) == 14
    for j, i in enumerate(order):
        for role in roles:
            assert site_map.operators[f"layer.{j}.{role}"] == b.truth[f"layer.{i}.{role}"]


def test_pooler_sites_without_a_pooler_in_the_graph():
    b = GraphBuilder()
    md = b.bert(3, pooler=False)
    site_map = map_sites(graph_ops(md), _sites(3, True))  # the model has a pooler, the compiled graph does not
    assert {"pooler.dense.out", "pooler.out"} <= set(site_map.unmapped)
    with pytest.raises(BertnpuError) as info:
        site_map.resolve(["layer.1.ffn.residual", "pooler.dense.out", "embeddings.out"])
    msg = str(info.value)
    assert "\n" not in msg
    assert "pooler.dense.out, embeddings.out map to no operator" in msg and "no pooler" in msg


def test_unexpected_structure_names_the_first_site():
    b = GraphBuilder()
    md = b.bert(3, False)
    gelu = next(o for o in md.subgraphs[0].operators if o.name == b.truth["layer.1.ffn.gelu.out"])
    gelu.layertype = "qbcompiler.LayerType.Erf"  # an activation the mapper does not know
    site_map = map_sites(graph_ops(md), _sites(3, False))
    assert site_map.operators["layer.0.ffn.gelu.out"] == b.truth["layer.0.ffn.gelu.out"]
    assert site_map.operators["layer.2.ffn.residual"] == b.truth["layer.2.ffn.residual"]
    # found before the break: kept; from the break on: unmapped, with the reason
    assert site_map.operators["layer.1.ffn.intermediate.out"] == b.truth["layer.1.ffn.intermediate.out"]
    assert "expected one Gelu, found 0" in site_map.unmapped["layer.1.ffn.gelu.out"]
    assert {"layer.1.ffn.gelu.out", "layer.1.ffn.output.out", "layer.1.ffn.residual", "layer.1.ffn.layernorm.out"} <= set(site_map.unmapped)
    with pytest.raises(BertnpuError, match=r"^Site\(s\) layer\.1\.ffn\.residual map to no operator .*\(layer\.1\.ffn\.residual: layer 1 .*Gelu"):
        site_map.resolve(["layer.0.ffn.residual", "layer.1.ffn.residual"])


def test_residual_that_does_not_add_the_layer_input_is_refused():
    b = GraphBuilder(padding=False)
    md = b.bert(2, False)
    ops = md.subgraphs[0].operators
    res = next(o for o in ops if o.name == b.truth["layer.1.attention.residual"])
    gelu0 = next(o for o in ops if o.name == b.truth["layer.0.ffn.gelu.out"])
    res.inputs[1] = gelu0.outputs[0]  # adds something other than the layer input
    site_map = map_sites(graph_ops(md), _sites(2, False))
    assert "does not add the layer input" in site_map.unmapped["layer.1.attention.residual"]
    assert site_map.operators["layer.0.attention.residual"] == b.truth["layer.0.attention.residual"]


def test_fewer_layers_in_the_graph_than_in_the_model():
    b = GraphBuilder()
    md = b.bert(2, False)
    site_map = map_sites(graph_ops(md), _sites(3, False))
    assert site_map.layers_found == 2
    assert "2 Softmax operator(s)" in site_map.unmapped["layer.2.attention.scores"]
