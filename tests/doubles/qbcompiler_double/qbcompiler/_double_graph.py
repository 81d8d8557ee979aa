"""Part of the qbcompiler TEST DOUBLE: the synthetic BERT-shaped MBLT graph its mblt_compile writes.

Not Mobilint's format: a JSON list of operators (name, layertype, inputs, outputs), shaped like a
parsed BERT encoder with the transparent ops a parser emits between the real ones. Operator names
follow the torch module path (the real compiler's naming is not published; bertnpu must not rely on it).
"""


def inner_bert(model):
    """The BertModel inside ``model`` (the model itself, or a wrapper holding one)."""
    for module in model.modules():
        if type(module).__name__ == "BertModel":
            return module
    raise TypeError("the qbcompiler double compiles BERT models only")


def bert_graph(num_layers, pooler):
    ops = []
    counter = [0]

    def tensor():
        counter[0] += 1
        return counter[0]

    def op(name, kind, inputs):
        out = tensor()
        ops.append({"name": name, "layertype": f"LayerType.{kind}", "inputs": list(inputs), "outputs": [out]})
        return out

    x, mask_in = tensor(), tensor()
    mask = op("/extended_attention_mask/Mul", "MultiplyConstant", [op("/extended_attention_mask/Cast", "Cast", [mask_in])])
    for i in range(num_layers):
        p = f"/encoder/layer.{i}"
        s = f"{p}/attention/self"
        q = op(f"{s}/query/Conv", "Convolution", [x])
        k = op(f"{s}/key/Conv", "Convolution", [x])
        v = op(f"{s}/value/Conv", "Convolution", [x])
        qh = op(f"{s}/Transpose", "Transpose", [op(f"{s}/Reshape", "Reshape", [q])])
        kh = op(f"{s}/Transpose_2", "Transpose", [op(f"{s}/Transpose_1", "Transpose", [op(f"{s}/Reshape_1", "Reshape", [k])])])
        vh = op(f"{s}/Transpose_3", "Transpose", [op(f"{s}/Reshape_2", "Reshape", [v])])
        scores = op(f"{s}/MatMul", "MatMul", [qh, kh])
        masked = op(f"{s}/Add", "Adding", [op(f"{s}/Div", "MultiplyConstant", [scores]), mask])
        probs = op(f"{s}/Softmax", "Softmax", [op(f"{s}/Softmax_requantize", "Requantize", [masked])])
        ctx = op(f"{s}/MatMul_1", "MatMul", [probs, vh])
        ctx = op(f"{s}/Reshape_3", "Reshape", [op(f"{s}/Transpose_4", "Transpose", [ctx])])
        a = op(f"{p}/attention/output/dense/Conv", "Convolution", [ctx])
        a = op(f"{p}/attention/output/Add", "Adding", [a, x])
        ln1 = op(f"{p}/attention/output/LayerNorm", "LayerNormalization", [a])
        h = op(f"{p}/intermediate/dense/Conv", "Convolution", [ln1])
        g = op(f"{p}/intermediate/intermediate_act_fn/Gelu", "Gelu", [h])
        o = op(f"{p}/output/dense/Conv", "Convolution", [g])
        y = op(f"{p}/output/Add", "Adding", [o, ln1])
        x = op(f"{p}/output/LayerNorm", "LayerNormalization", [y])
    if pooler:
        dense = op("/pooler/dense/Conv", "Convolution", [op("/pooler/HeaderView", "HeaderView", [x])])
        op("/pooler/activation/Tanh", "Tanh", [dense])
    return ops


def graph_of(model, returns):
    """The graph of ``model`` as traced: the pooler only when it is on the output path."""
    bert = inner_bert(model)
    return bert_graph(bert.config.num_hidden_layers, returns == "pooler_output" and bert.pooler is not None)
