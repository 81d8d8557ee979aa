"""Site -> operator mapping: which operator of a parsed MBLT graph produces each bertnpu site's tensor.

qbcompiler's ``BitConfig.LayerOverrides(activation_16bits=[...])`` takes the compiler's internal
operator names and silently skips a name that matches nothing (``mobilint_sdk_facts.md``,
"Mixed precision"). So names are never guessed from strings here: every site is found by the
graph's structure, one encoder layer per ``Softmax`` in forward order:

* ``attention.scores``: the ``MatMul`` that reaches the ``Softmax`` through only transparent ops
  (and the ``Adding`` of the attention mask);
* ``attention.softmax.out``: the ``Softmax``; ``attention.output.in``: the ``MatMul`` reading it;
* ``attention.query.out`` / ``attention.key.out``: the ``Convolution`` behind the score MatMul's
  first / second input; ``attention.value.out``: the one behind the context MatMul's other input;
* ``attention.output.out``: the ``Convolution`` reading the context; ``attention.residual``: the
  ``Adding`` after it whose other input is the layer input; ``attention.layernorm.out``: the
  ``LayerNormalization`` after that; then ``ffn.intermediate.out`` (``Convolution``),
  ``ffn.gelu.out`` (``Gelu``), ``ffn.output.out`` (``Convolution``), ``ffn.residual`` (``Adding``
  whose other input is the attention LayerNorm), ``ffn.layernorm.out`` (``LayerNormalization``);
* ``pooler.dense.out``: the ``Convolution`` after the last layer; ``pooler.out``: the first
  non-transparent op after it (its type, e.g. ``Tanh``, is not published);
* ``embeddings.out`` is the NPU's input (computed on the CPU), not an operator's output.

The score site is the MatMul itself, as in the case Mobilint support discussed (the Q·Kᵀ
MatMul output is INT8 on ARIES); bertnpu's ``attention.scores`` tensor is that output after the
constant 1/sqrt(d) scale, which qbcompiler runs as a separate ``MultiplyConstant``.
Operators of all subgraphs are read as one list in their stored order; that activation ids
are unique across subgraphs is an assumption (not published).

Standalone on purpose (no bertnpu import but the error type): the compile bundle ships a copy
next to its script, to map sites inside Mobilint's image.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Optional, Sequence

try:
    from ..errors import BertnpuError
except ImportError:  # copied into a compile bundle, where bertnpu is not installed
    BertnpuError = ValueError

# ops that pass a tensor on without being a quantization site of their own (facts: "Reading the MBLT graph")
TRANSPARENT = frozenset({"MultiplyConstant", "Requantize", "Reshape", "Transpose", "HeaderView", "Identity", "Cast"})
EMBEDDINGS_REASON = "it is the NPU's input (the CPU part's output), not the output of an operator"


@dataclass(frozen=True)
class Op:
    """One operator of a parsed MBLT graph: ``kind`` is the layertype's text after the last dot."""

    name: str
    kind: str
    inputs: tuple
    outputs: tuple
    index: int


@dataclass
class SiteMap:
    """The operator name of every mapped site, and why each unmapped site has none."""

    operators: dict[str, str] = field(default_factory=dict)
    unmapped: dict[str, str] = field(default_factory=dict)
    layers_found: int = 0

    def resolve(self, sites: Iterable[str]) -> list[str]:
        """Operator names of ``sites`` in order; one sentence naming every site without an operator otherwise."""
        sites = list(sites)
        missing = [s for s in sites if s not in self.operators]
        if missing:
            first = missing[0]
            why = self.unmapped.get(first, "the compiled graph has no such site")
            raise BertnpuError(f"Site(s) {', '.join(missing)} map to no operator of the compiled MBLT graph ({first}: {why}); "
                               "remove them from the recipe's activation_16bits, since qbcompiler would silently keep them at 8 bits.")
        return [self.operators[s] for s in sites]


def _kind(layertype: Any) -> str:
    return str(getattr(layertype, "name", None) or layertype).rsplit(".", 1)[-1]


def graph_ops(model_dict: Any) -> list[Op]:
    """The operators of a parsed MBLT model (``load_mblt_model(path)[0]``), all subgraphs in stored order."""
    ops = []
    for sub in model_dict.subgraphs:
        for op in sub.operators:
            ops.append(Op(str(op.name), _kind(op.layertype), tuple(op.inputs), tuple(op.outputs), len(ops)))
    return ops


class _Graph:
    def __init__(self, ops: Sequence[Op]):
        self.ops = list(ops)
        self.producer: dict[Any, Op] = {}
        self.consumers: dict[Any, list[Op]] = {}
        for op in self.ops:
            for t in op.outputs:
                self.producer[t] = op
            for t in op.inputs:
                self.consumers.setdefault(t, []).append(op)

    def back(self, tensor: Any, kind: str, through: frozenset = TRANSPARENT) -> list[Op]:
        """Ops of ``kind`` that produce ``tensor`` through only ``through`` ops."""
        found, seen, todo = {}, set(), [tensor]
        while todo:
            t = todo.pop()
            op = self.producer.get(t)
            if op is None or op.index in seen:
                continue
            seen.add(op.index)
            if op.kind == kind:
                found[op.index] = op
            elif op.kind in through:
                todo.extend(op.inputs)
        return [found[i] for i in sorted(found)]

    def forward(self, op: Op, kind: Optional[str], through: frozenset = TRANSPARENT) -> list[Op]:
        """Ops of ``kind`` (any non-transparent op when None) reading ``op``'s output through only ``through`` ops."""
        found, seen, todo = {}, set(), list(op.outputs)
        while todo:
            t = todo.pop()
            for c in self.consumers.get(t, []):
                if c.index in seen:
                    continue
                seen.add(c.index)
                if c.kind in through and (kind is None or c.kind != kind):
                    todo.extend(c.outputs)
                elif kind is None or c.kind == kind:
                    found[c.index] = c
        return [found[i] for i in sorted(found)]

    def reaches(self, tensor: Any, target: Any) -> bool:
        """Whether ``tensor`` is ``target`` or comes from it through only transparent ops."""
        seen, todo = set(), [tensor]
        while todo:
            t = todo.pop()
            if t == target:
                return True
            op = self.producer.get(t)
            if op is not None and op.kind in TRANSPARENT and op.index not in seen:
                seen.add(op.index)
                todo.extend(op.inputs)
        return False

    def origin(self, tensor: Any) -> Any:
        """The tensor behind ``tensor``'s chain of transparent ops (first input of each)."""
        seen = set()
        op = self.producer.get(tensor)
        while op is not None and op.kind in TRANSPARENT and op.inputs and op.index not in seen:
            seen.add(op.index)
            tensor = op.inputs[0]
            op = self.producer.get(tensor)
        return tensor


class _Unmapped(Exception):
    pass


def _one(found: list[Op], what: str) -> Op:
    if len(found) != 1:
        raise _Unmapped(f"expected one {what}, found {len(found)}" + (f" ({', '.join(o.name for o in found)})" if found else ""))
    return found[0]


def _other_input(g: _Graph, add: Op, known: Op) -> Any:
    """The input of ``add`` that does not come from ``known``."""
    rest = [t for t in add.inputs if not any(g.reaches(t, o) for o in known.outputs)]
    return rest[0] if len(rest) == 1 else None


def _map_layer(g: _Graph, softmax: Op, put) -> Op:
    """Map one encoder layer around its ``softmax``; returns the layer's output LayerNormalization."""
    scores = _one([m for t in softmax.inputs for m in g.back(t, "MatMul", TRANSPARENT | {"Adding"})], "MatMul before the Softmax")
    put("attention.scores", scores)
    put("attention.softmax.out", softmax)
    ctx = _one(g.forward(softmax, "MatMul"), "MatMul reading the Softmax")
    put("attention.output.in", ctx)
    if len(scores.inputs) != 2:
        raise _Unmapped(f"the score MatMul {scores.name} has {len(scores.inputs)} inputs, expected 2")
    q = _one(g.back(scores.inputs[0], "Convolution"), "query Convolution")
    k = _one(g.back(scores.inputs[1], "Convolution"), "key Convolution")
    put("attention.query.out", q)
    put("attention.key.out", k)
    v_in = [t for t in ctx.inputs if not any(g.reaches(t, o) for o in softmax.outputs)]
    v = _one([c for t in v_in for c in g.back(t, "Convolution")], "value Convolution")
    put("attention.value.out", v)
    out = _one(g.forward(ctx, "Convolution"), "attention output Convolution")
    put("attention.output.out", out)
    res1 = _one(g.forward(out, "Adding"), "attention residual Adding")
    other = _other_input(g, res1, out)
    if other is None or not q.inputs or g.origin(other) != g.origin(q.inputs[0]):
        raise _Unmapped(f"the Adding {res1.name} after the attention output does not add the layer input")
    put("attention.residual", res1)
    ln1 = _one(g.forward(res1, "LayerNormalization"), "LayerNormalization after the attention residual")
    put("attention.layernorm.out", ln1)
    inter = _one(g.forward(ln1, "Convolution"), "FFN intermediate Convolution")
    put("ffn.intermediate.out", inter)
    gelu = _one(g.forward(inter, "Gelu"), "Gelu")
    put("ffn.gelu.out", gelu)
    ffn_out = _one(g.forward(gelu, "Convolution"), "FFN output Convolution")
    put("ffn.output.out", ffn_out)
    res2 = _one(g.forward(ffn_out, "Adding"), "FFN residual Adding")
    other = _other_input(g, res2, ffn_out)
    if other is None or g.origin(other) != ln1.outputs[0]:
        raise _Unmapped(f"the Adding {res2.name} after the FFN output does not add the attention LayerNorm output")
    put("ffn.residual", res2)
    ln2 = _one(g.forward(res2, "LayerNormalization"), "LayerNormalization after the FFN residual")
    put("ffn.layernorm.out", ln2)
    return ln2


def map_sites(ops: Sequence[Op], sites: Sequence[str]) -> SiteMap:
    """Find the operator of every site in ``sites`` (a model's site names in forward order).

    Example:
        >>> site_map = map_sites(graph_ops(load_mblt_model("m.mblt")[0]), [s.name for s in list_sites(model)])  # doctest: +SKIP
        >>> site_map.resolve(["layer.0.ffn.residual"])  # doctest: +SKIP
        ['...']
    """
    roles = list(dict.fromkeys(s.split(".", 2)[2] for s in sites if s.startswith("layer.")))
    g = _Graph(ops)
    result = SiteMap()
    softmaxes = [op for op in g.ops if op.kind == "Softmax"]
    result.layers_found = len(softmaxes)
    taken: dict[int, str] = {}
    last_ln: Optional[Op] = None

    for i, softmax in enumerate(softmaxes):
        def put(role: str, op: Op, i: int = i) -> None:
            site = f"layer.{i}.{role}"
            if op.index in taken:
                raise _Unmapped(f"{op.name} was already mapped to {taken[op.index]}")
            taken[op.index] = site
            result.operators[site] = op.name

        try:
            last_ln = _map_layer(g, softmax, put)
        except _Unmapped as exc:
            for role in roles:
                site = f"layer.{i}.{role}"
                if site not in result.operators:
                    result.unmapped[site] = f"layer {i} (around Softmax {softmax.name}): {exc}"
            last_ln = None

    if last_ln is not None and len(softmaxes):
        convs = g.forward(last_ln, "Convolution")
        if len(convs) == 1:
            result.operators["pooler.dense.out"] = convs[0].name
            after = g.forward(convs[0], None)
            if len(after) == 1:
                result.operators["pooler.out"] = after[0].name
    for site in sites:
        if site in result.operators or site in result.unmapped:
            continue
        if site == "embeddings.out":
            result.unmapped[site] = EMBEDDINGS_REASON
        elif site.startswith("pooler."):
            result.unmapped[site] = "the graph has no single Convolution (and activation after it) reading the last layer's output, i.e. no pooler in the compiled graph"
        elif site.startswith("layer."):
            result.unmapped[site] = f"the graph has {len(softmaxes)} Softmax operator(s), so only {len(softmaxes)} encoder layer(s) were found"
        else:
            result.unmapped[site] = "bertnpu knows no operator for this site"
    result.operators = {s: n for s, n in result.operators.items() if s in set(sites)}
    return result


def operator_table(ops: Sequence[Op], site_map: SiteMap) -> list[dict]:
    """One row per operator: name, type, the operators producing its inputs, and the bertnpu site it maps to (or "")."""
    producer = {t: op.name for op in ops for t in op.outputs}
    site_of = {name: site for site, name in site_map.operators.items()}
    return [{"name": op.name, "type": op.kind, "producers": [producer[t] for t in op.inputs if t in producer],
             "site": site_of.get(op.name, "")} for op in ops]
