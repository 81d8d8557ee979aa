"""Execute the notebooks with given parameters and write shareable HTML (widget state embedded)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from tqdm.auto import tqdm

from ..artifacts import atomic_write_text, check_writable
from ..errors import BertnpuError
from .public_paths import PathRedactor, public_path

NOTEBOOKS = ("01_analyze_model", "02_calibration_data", "03_activation_ranges", "04_tune_quantization", "05_compile_and_verify")


def notebooks_dir() -> Path:
    """The repository's notebooks folder (next to the package in a source checkout)."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    if not here.is_dir():
        raise BertnpuError("The notebooks folder was not found next to the bertnpu package; run from a source checkout (git clone) of bertnpu.")
    return here


def _parameters_source(parameters: dict[str, Any]) -> str:
    return "# injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())


def show_parameters(nb, parameters: dict[str, Any]):
    """Rewrite the injected-parameters cell of an executed notebook to show ``parameters`` (the page's view of the paths)."""
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = _parameters_source(parameters)
    return nb


def inject_parameters(nb, parameters: dict[str, Any]):
    """Insert a cell assigning ``parameters`` right after the cell tagged ``parameters`` (as papermill does)."""
    import nbformat

    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise BertnpuError("The notebook has no cell tagged 'parameters'; add the tag to its parameters cell.")
    cell = nbformat.v4.new_code_cell(_parameters_source(parameters))
    cell.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(index + 1, cell)
    return nb


def execute_notebook(path: str | os.PathLike, parameters: dict[str, Any], cwd: str | os.PathLike, timeout: int = 1200):
    """Run a notebook top to bottom with injected parameters; a cell error raises ``CellExecutionError``."""
    import tempfile

    import nbformat
    from jupyter_client.manager import KernelManager
    from nbclient import NotebookClient

    nb = inject_parameters(nbformat.read(path, as_version=4), parameters)
    env_backup = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # progress bars would only clutter the rendered page
    try:
        # IPC transport: a local kernel needs no TCP ports (and prints no "running over TCP without encryption" warning)
        with tempfile.TemporaryDirectory(prefix="bertnpu-kernel-") as sockets:
            km = KernelManager(kernel_name="python3", transport="ipc", ip=os.path.join(sockets, "kernel"))
            try:
                NotebookClient(nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd)}}, store_widget_state=True).execute()
            finally:
                if km.has_kernel:  # a kernel manager we pass in is ours to shut down
                    km.shutdown_kernel(now=True)
    finally:
        if env_backup is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = env_backup
    return nb


OFFLINE_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block extra_css -%}<style>{{ resources.bertnpu_css }}</style>{%- endblock extra_css -%}
"""
LANGUAGES = ("en", "ko")


def _first_heading(cells) -> str:
    for cell in cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "bertnpu notebook"


def notebook_title(nb) -> str:
    """The text of the notebook's first Markdown heading (``# 3. Activation ranges ...``)."""
    return _first_heading(nb.cells)


def _cells_of(nb, lang: str) -> list:
    drop = {f"lang-{other}" for other in LANGUAGES if other != lang}
    return [c for c in nb.cells if not drop & set(c.get("metadata", {}).get("tags", []))]


def page_title(nb, lang: str) -> str:
    """The title of ``nb``'s ``lang`` page (``nb`` is not changed)."""
    return _first_heading(_cells_of(nb, lang))


def select_language(nb, lang: str):
    """Keep the Markdown cells of ``lang`` (cells tagged ``lang-en`` / ``lang-ko``; untagged cells stay)."""
    if lang not in LANGUAGES:
        raise BertnpuError(f"Unknown notebook language {lang!r}; use one of {', '.join(LANGUAGES)}.")
    nb.cells = _cells_of(nb, lang)
    return nb


def to_html(nb, lang: str = "en", footer: str = "") -> str:
    """Self-contained HTML of an executed notebook: widgets become static snapshots of their saved
    state, and no script is fetched from the network (no require.js, widget manager, MathJax)."""
    import copy

    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    from .widget_snapshot import CSS, snapshot_widget_outputs

    nb = select_language(copy.deepcopy(nb), lang)
    snapshot_widget_outputs(nb)
    nb.metadata["title"] = notebook_title(nb)
    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"bertnpu_offline.html.j2": OFFLINE_TEMPLATE})],
                            template_file="bertnpu_offline.html.j2", language_code=lang)
    body, _ = exporter.from_notebook_node(nb, resources={"bertnpu_css": CSS})
    if footer:  # after the notebook's cells, inside <body>
        head, sep, tail = body.rpartition("</body>")
        body = head + footer + sep + tail if sep else body + footer
    return body


def page_parameters(out: Path, *, model: Optional[str], stsb_dir: Optional[str], calib_count: int, eval_pairs: int, lang: str,
                    show_paths: bool = False) -> tuple[dict[str, Any], dict[str, Any], PathRedactor]:
    """``(run, shown, redactor)``: the parameters the notebooks run with (paths as the user gave them; the kernel
    runs in the current folder), the same as a page shows them, and the redactor for the executed notebooks."""
    work = out / "work"
    run = {"MODEL": model, "STSB_DIR": stsb_dir, "WORKDIR": str(work), "CALIB_COUNT": calib_count, "EVAL_PAIRS": eval_pairs, "LANG": lang}
    redactor = PathRedactor()
    if show_paths:
        return run, dict(run), redactor
    env_stsb = None if stsb_dir else os.environ.get("BERTNPU_STSB_DIR")  # what the notebooks fall back to
    for path, kind in ((work, "work"), (out, "out"), (stsb_dir, "stsb"), (env_stsb, "stsb")):
        redactor.add(path, kind)
    if model and Path(model).expanduser().exists():  # a folder (a hub id is no path)
        redactor.add(model, "model")
    redactor.add_defaults()
    shown = {**run, "MODEL": public_path(model, "model"),
             "STSB_DIR": public_path(stsb_dir, "stsb"), "WORKDIR": public_path(work, "work")}
    return run, shown, redactor


def render_notebooks(out: str | os.PathLike, *, model: Optional[str] = None, stsb_dir: Optional[str] = None, calib_count: int = 256,
                     eval_pairs: int = 0, force: bool = False, names=NOTEBOOKS, lang: str = "en", show_paths: bool = False) -> list[Path]:
    """Execute every notebook into ``out`` (shared work folder ``out/work``) and write ``.ipynb`` + ``.html`` for each,
    and ``index.html`` beside them.

    Unless ``show_paths``, the pages show paths as the user gave them when relative and as a placeholder
    (``<STS-B folder>``, ``<work folder>``, ``<model folder>``) when absolute, in the parameters cell and in every output.
    """
    import nbformat

    from .pages_index import page_footer, render_index, run_facts

    out = Path(out)
    if lang not in LANGUAGES:
        raise BertnpuError(f"Unknown notebook language {lang!r}; use one of {', '.join(LANGUAGES)}.")
    for name in names:
        check_writable(out / f"{name}.html", force, "rendered notebook")
    check_writable(out / "index.html", force, "index page")
    run, shown, redactor = page_parameters(out, model=model, stsb_dir=stsb_dir, calib_count=calib_count, eval_pairs=eval_pairs, lang=lang,
                                           show_paths=show_paths)
    Path(run["WORKDIR"]).mkdir(parents=True, exist_ok=True)
    executed = []
    for name in tqdm(names, desc="render notebooks"):
        nb = execute_notebook(notebooks_dir() / f"{name}.ipynb", run, cwd=Path.cwd())
        show_parameters(nb, shown)
        executed.append((name, redactor.notebook(nb)))
    facts = run_facts(Path(run["WORKDIR"]), model=model, stsb_dir=stsb_dir or os.environ.get("BERTNPU_STSB_DIR"), eval_pairs=eval_pairs,
                      lang=lang, model_shown=redactor.text(model) if model else None)
    footer = page_footer(facts)
    written = []
    for name, nb in executed:
        atomic_write_text(out / f"{name}.ipynb", nbformat.writes(nb), force=True)
        written.append(atomic_write_text(out / f"{name}.html", to_html(nb, lang, footer=footer), force=True))
    titles = [(name, page_title(nb, lang)) for name, nb in executed]
    written.append(atomic_write_text(out / "index.html", redactor.text(render_index(facts, titles), in_html=True), force=True))
    return written
