"""``bertnpu doctor``: versions, detected NPUs, the compiler route and the test prerequisites on one screen (exit 0)."""

from __future__ import annotations

import argparse

from .common import command, emit_json, json_option, stsb_options


def _doctor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recipe", help="recipe JSON: name the qbcompiler Docker image of its qbcompiler_version (default: the current release)")


@command("doctor", "what this machine has for bertnpu: versions, NPUs, qbcompiler route, test prerequisites", stsb_options(), json_option,
         _doctor_options)
def _doctor(args) -> int:
    from ..device.doctor import doctor_report, format_doctor

    version = None
    if args.recipe:
        from ..quant.recipe import load_recipe

        version = load_recipe(args.recipe).qbcompiler_version
    report = doctor_report(recipe_version=version, stsb_dir=args.stsb_dir)
    if args.json:
        emit_json(report)
    else:
        print(format_doctor(report))
    return 0
