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
    import nbformat
    from nbclient import NotebookClient

    nb = inject_parameters(nbformat.read(path, as_version=4), parameters)
    env_backup = os.environ.get("TQDM_DISABLE")
    os.environ["TQDM_DISABLE"] = "1"  # progress bars would only clutter the rendered page
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}, store_widget_state=True).execute()
    finally:
        if env_backup is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = env_backup
    return nb


def to_html(nb) -> str:
    """nbconvert's HTML of an executed notebook; its widget state is embedded in the page."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(nb)
    return body


def render_notebooks(out: str | os.PathLike, *, model: Optional[str] = None, stsb_dir: Optional[str] = None, calib_count: int = 128,
                     eval_pairs: int = 0, force: bool = False, names=NOTEBOOKS) -> list[Path]:
    """Execute every notebook into ``out`` (shared work folder ``out/work``) and write ``.ipynb`` + ``.html`` for each."""
    import nbformat

    out = Path(out)
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
        written.append(atomic_write_text(out / f"{name}.html", to_html(nb), force=True))
    return written
