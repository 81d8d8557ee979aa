"""``bertnpu mblt-ops FILE.mblt``: the operator table of a compiled MBLT graph, with the site bertnpu maps to each operator.

For when the structural mapping fails on a real graph: the names printed here can go into a recipe's
``activation_16bits_operators``, which the compile checks against the graph.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import BertnpuError, command, emit_json, json_option, list_sites_of, load_model_arg, model_options, pooling_option


def _mblt_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="an .mblt file (from `bertnpu analyze`, compile_mblt or mblt_compile)")


@command("mblt-ops", "list the operators of an .mblt graph (name, type, producers, bertnpu's site guess); needs qbcompiler's reader",
         _mblt_options, model_options, pooling_option, json_option)
def _mblt_ops(args) -> int:
    from ..device.mblt_map import graph_ops, map_sites, operator_table
    from ..device.qb_calls import mblt_reader
    from ..device.qbcompiler_adapter import load_qbcompiler

    path = Path(args.file)
    if not path.is_file():
        raise BertnpuError(f"MBLT file {str(path)!r} does not exist; write one with `bertnpu analyze` or pass the right path.")
    load_qbcompiler()  # one sentence naming the Docker route where it is missing
    read = mblt_reader()
    if read is None:
        raise BertnpuError("The installed qbcompiler has no load_mblt_model (qbcompiler.model_dict.serialize or model_dict_legacy.serialize); "
                           "use qbcompiler 1.1 or newer.")
    try:
        parsed, _ = read(str(path))
    except (OSError, ValueError) as exc:
        raise BertnpuError(f"{str(path)!r} is not an MBLT file qbcompiler can read ({exc.__class__.__name__}: {exc}); pass the .mblt itself.") from None
    ops = graph_ops(parsed)
    model = load_model_arg(args)
    site_map = map_sites(ops, [s.name for s in list_sites_of(model)])
    rows = operator_table(ops, site_map)
    mapped = sum(1 for r in rows if r["site"])
    if args.json:
        emit_json({"file": str(path), "operators": rows, "unmapped": site_map.unmapped, "layers_found": site_map.layers_found})
        return 0
    width = max([len(r["name"]) for r in rows] + [8])
    print(f"{'operator':<{width}}  {'type':<18}  {'site (bertnpu guess)':<28}  producers")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['type']:<18}  {r['site'] or '-':<28}  {', '.join(r['producers']) or '(input)'}")
    print(f"{len(rows)} operators, {site_map.layers_found} encoder layer(s) found, {mapped} mapped to a bertnpu site; "
          f"{len(site_map.unmapped)} site(s) unmapped. Put operator names in the recipe's activation_16bits_operators to set them to 16 bits.")
    return 0
