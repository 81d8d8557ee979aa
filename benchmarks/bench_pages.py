"""What issue 26 adds to `bertnpu render`: rewriting private paths, the index page and the footers.

Rendering is dominated by executing the five notebooks (minutes); this measures only the added
work on already executed notebooks, against the page conversion (`to_html`) every render did before,
measured in the same run.
Target: the added work stays a small fraction of the conversion (rendering time as before).
Run: .venv/bin/python benchmarks/bench_pages.py RENDERED_FOLDER   (a folder written by `bertnpu render`)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat

from _common import stsb_dir
from bertnpu.ui.pages_index import page_footer, render_index, run_facts
from bertnpu.ui.public_paths import PathRedactor
from bertnpu.ui.render import NOTEBOOKS, page_title, to_html


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "rendered")
    notebooks = {name: nbformat.read(folder / f"{name}.ipynb", as_version=4) for name in NOTEBOOKS if (folder / f"{name}.ipynb").is_file()}
    if not notebooks:
        sys.exit(f"no rendered notebooks in {folder}: run `bertnpu render --out {folder}` first")
    start = time.perf_counter()
    for nb in notebooks.values():
        to_html(nb, "en")
    convert = time.perf_counter() - start

    start = time.perf_counter()
    redactor = PathRedactor().add(folder / "work", "work").add(folder, "out").add(stsb_dir(), "stsb").add_defaults()
    for nb in notebooks.values():
        redactor.notebook(nb)  # in place, as render does (the reference above already ran)
    redact = time.perf_counter() - start
    start = time.perf_counter()
    facts = run_facts(folder / "work", model=None, stsb_dir=stsb_dir(), eval_pairs=0, lang="en")
    page_footer(facts)
    render_index(facts, [(name, page_title(nb, "en")) for name, nb in notebooks.items()])
    index = time.perf_counter() - start
    added = redact + index
    print(f"{len(notebooks)} pages: to_html {convert:.2f} s (as before); added: path rewriting {redact:.3f} s, index + footer facts {index:.3f} s "
          f"= {added:.3f} s, ratio {added / convert:.2f} of the conversion")


if __name__ == "__main__":
    main()
