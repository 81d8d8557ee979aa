"""Rendered pages work offline: widget outputs become static snapshots of their saved state."""

import re

import nbformat
import pytest

from bertnpu.errors import BertnpuError
from bertnpu.ui.render import notebook_title, select_language, to_html
from bertnpu.ui.widget_snapshot import STATE_MIME, VIEW_MIME
from test_widget_snapshot import PNG, saved_state  # the widget state of a VBox(HBox(controls), readout, plot)


def _notebook():
    nb = nbformat.v4.new_notebook()
    en = nbformat.v4.new_markdown_cell("# 4. Tune percentile\n\nEnglish text")
    en.metadata["tags"] = ["lang-en"]
    ko = nbformat.v4.new_markdown_cell("# 4. percentile 조정\n\n한국어 설명")
    ko.metadata["tags"] = ["lang-ko"]
    cell = nbformat.v4.new_code_cell("display(explorer.widget)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={VIEW_MIME: {"model_id": "box", "version_major": 2, "version_minor": 0},
                                                                  "text/plain": "VBox(...)"})]
    nb.cells = [en, ko, cell]
    nb.metadata["widgets"] = {STATE_MIME: {"state": saved_state(), "version_major": 2, "version_minor": 0}}
    return nb


def test_page_needs_no_network_and_has_the_notebooks_title():
    nb = _notebook()
    html = to_html(nb)
    assert "<title>4. Tune percentile</title>" in html
    assert not re.search(r"<script", html) and "cdnjs" not in html and "unpkg" not in html and "jsdelivr" not in html
    assert "0.9910" in html and "19.91" in html and f"data:image/png;base64,{PNG}" in html
    assert "English text" in html and "한국어 설명" not in html
    assert VIEW_MIME in json_dumps(nb)  # the notebook itself is not changed by rendering


def json_dumps(nb) -> str:
    return nbformat.writes(nb)


def test_korean_page():
    html = to_html(_notebook(), lang="ko")
    assert "<title>4. percentile 조정</title>" in html and "한국어 설명" in html and "English text" not in html
    assert 'lang="ko"' in html


def test_language_is_checked():
    with pytest.raises(BertnpuError, match="Unknown notebook language 'fr'"):
        select_language(_notebook(), "fr")
    assert notebook_title(nbformat.v4.new_notebook()) == "bertnpu notebook"


def test_page_parameters_show_relative_paths_as_given_and_absolute_ones_as_placeholders(tmp_path, monkeypatch):
    from pathlib import Path

    from bertnpu.ui.render import page_parameters

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BERTNPU_STSB_DIR", str(tmp_path / "alice" / "stsb"))
    run, shown, redactor = page_parameters(Path("rendered"), model=None, stsb_dir="../data/stsb", calib_count=16, eval_pairs=30, lang="ko")
    assert run == shown == {"MODEL": None, "STSB_DIR": "../data/stsb", "WORKDIR": "rendered/work", "CALIB_COUNT": 16, "EVAL_PAIRS": 30, "LANG": "ko"}
    assert redactor.text(f"read {tmp_path}/rendered/work/stats.npz") == "read rendered/work/stats.npz"  # as given

    model = tmp_path / "alice" / "models" / "tiny"
    model.mkdir(parents=True)
    run, shown, redactor = page_parameters(tmp_path / "site", model=str(model), stsb_dir=None, calib_count=16, eval_pairs=0, lang="en")
    assert run["MODEL"] == str(model) and run["WORKDIR"] == str(tmp_path / "site" / "work")  # the notebooks run on the real paths
    assert (shown["MODEL"], shown["STSB_DIR"], shown["WORKDIR"]) == ("<model folder>", None, "<work folder>")
    # the STS-B folder the notebooks fall back to ($BERTNPU_STSB_DIR) is hidden in their outputs too
    assert redactor.text(f"{tmp_path}/alice/stsb/sts-dev.csv; {model}") == "<STS-B folder>/sts-dev.csv; <model folder>"

    run, shown, redactor = page_parameters(tmp_path / "site", model=str(model), stsb_dir=None, calib_count=16, eval_pairs=0, lang="en",
                                           show_paths=True)  # --show-paths
    assert shown == run and redactor.text(str(model)) == str(model)
