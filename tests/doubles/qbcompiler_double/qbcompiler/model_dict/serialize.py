"""TEST DOUBLE of qbcompiler's load_mblt_model: reads the double's JSON graph into objects with
name, layertype, inputs and outputs, as the documented parsed-graph API exposes them."""

import json
from types import SimpleNamespace


def load_mblt_model(path):
    with open(path) as fh:
        data = json.load(fh)
    if data.get("format") != "mblt-test-double":
        raise ValueError(f"{path} is not an MBLT file written by the qbcompiler double")
    ops = [SimpleNamespace(name=o["name"], layertype=o["layertype"], inputs=list(o["inputs"]), outputs=list(o["outputs"]))
           for o in data["operators"]]
    return SimpleNamespace(subgraphs=[SimpleNamespace(operators=ops)]), None
