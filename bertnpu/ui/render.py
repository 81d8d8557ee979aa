"""Execute the notebooks with given parameters and write shareable HTML (widget state embedded)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

from tqdm.auto import tqdm

from ..artifacts import atomic_write_text, check_writable
from ..errors import BertnpuError

NOTEBOOKS = ("01_analyze_model", "02_calibration_data", "03_activation_ranges", "04_tune_quantization", "05_compile_and_verify")


def notebooks_dir() -> Path:
    """The repository's notebooks folder (next to the package in a source checkout)."""
    here = Path(__file__).resolve().parents[2] / "notebooks"
    if not here.is_dir():
        raise BertnpuError("The notebooks folder was not found next to the bertnpu package; run from a source checkout (git clone) of bertnpu.")
    return here


def inject_parameters(nb, parameters: dict[str, Any]):
    """Insert a cell assigning ``parameters`` right after the cell tagged ``parameters`` (as papermill does)."""
    import nbformat

    index = next((i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])), None)
    if index is None:
        raise BertnpuError("The notebook has no cell tagged 'parameters'; add the tag to its parameters cell.")
    source = "# injected parameters\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
    cell = nbformat.v4.new_code_cell(source)
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


def notebook_title(nb) -> str:
    """The text of the notebook's first Markdown heading (``# 3. Activation ranges ...``)."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return "bertnpu notebook"


def select_language(nb, lang: str):
    """Keep the Markdown cells of ``lang`` (cells tagged ``lang-en`` / ``lang-ko``; untagged cells stay)."""
    if lang not in LANGUAGES:
        raise BertnpuError(f"Unknown notebook language {lang!r}; use one of {', '.join(LANGUAGES)}.")
    drop = {f"lang-{other}" for other in LANGUAGES if other != lang}
    nb.cells = [c for c in nb.cells if not drop & set(c.get("metadata", {}).get("tags", []))]
    return nb


def to_html(nb, lang: str = "en") -> str:
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
    return body


def render_notebooks(out: str | os.PathLike, *, model: Optional[str] = None, stsb_dir: Optional[str] = None, calib_count: int = 256,
                     eval_pairs: int = 0, force: bool = False, names=NOTEBOOKS, lang: str = "en") -> list[Path]:
    """Execute every notebook into ``out`` (shared work folder ``out/work``) and write ``.ipynb`` + ``.html`` for each."""
    import nbformat

    out = Path(out)
    if lang not in LANGUAGES:
        raise BertnpuError(f"Unknown notebook language {lang!r}; use one of {', '.join(LANGUAGES)}.")
    for name in names:
        check_writable(out / f"{name}.html", force, "rendered notebook")
    work = (out / "work").resolve()
    work.mkdir(parents=True, exist_ok=True)
    params = {"MODEL": model, "STSB_DIR": str(Path(stsb_dir).resolve()) if stsb_dir else None, "WORKDIR": str(work),
              "CALIB_COUNT": calib_count, "EVAL_PAIRS": eval_pairs}
    written = []
    for name in tqdm(names, desc="render notebooks"):
        nb = execute_notebook(notebooks_dir() / f"{name}.ipynb", params, cwd=work)
        atomic_write_text(out / f"{name}.ipynb", nbformat.writes(nb), force=True)
        written.append(atomic_write_text(out / f"{name}.html", to_html(nb, lang), force=True))
    return written
