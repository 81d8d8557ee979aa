"""``bertnpu render``: the notebooks as shareable pages."""

from __future__ import annotations

import argparse

from .common import command, force_option, model_options, out_option, stsb_options, whole_number


def _render_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calib-count", type=whole_number(1), default=256, help="calibration samples (default 256, as `bertnpu run`)")
    p.add_argument("--eval-pairs", type=whole_number(2, zero="all pairs"), default=0, help="first N pairs of each split (0: all)")
    p.add_argument("--lang", choices=("en", "ko"), default="en", help="language of the pages (narrative, conclusions, labels, tables)")
    p.add_argument("--show-paths", action="store_true",
                   help="keep absolute paths on the pages (private use); by default they show as <STS-B folder>, <work folder>, <model folder>")


@command("render", "execute all notebooks and write shareable HTML", model_options, stsb_options(), out_option("folder for the HTML pages"),
         _render_options, force_option("rendered file"))
def _render(args) -> int:
    from ..ui.render import render_notebooks

    paths = render_notebooks(args.out, model=args.model, stsb_dir=args.stsb_dir, calib_count=args.calib_count, eval_pairs=args.eval_pairs,
                             force=args.force, lang=args.lang, show_paths=args.show_paths)
    print("wrote " + ", ".join(str(p) for p in paths) + " (self-contained: they open offline, widgets as static snapshots; start at index.html)")
    return 0
