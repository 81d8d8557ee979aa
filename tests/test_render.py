"""Rendered pages work offline: widget outputs become static snapshots of their saved state."""

import base64
import re

import nbformat
import pytest

from bertnpu.errors import BertnpuError
from bertnpu.ui.render import notebook_title, select_language, to_html
from bertnpu.ui.widget_snapshot import STATE_MIME, VIEW_MIME, snapshot_widget_outputs, widget_html

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def _state():
    """Saved ipywidgets state of a VBox(HBox(slider, dropdown), HTML readout, Output with a PNG), as nbclient stores it."""
    def model(name, **state):
        return {"model_name": name, "model_module": "@jupyter-widgets/controls", "model_module_version": "2.0.0", "state": state}

    return {
        "box": model("VBoxModel", children=["IPY_MODEL_row", "IPY_MODEL_readout", "IPY_MODEL_plot"]),
        "row": model("HBoxModel", children=["IPY_MODEL_slider", "IPY_MODEL_site", "IPY_MODEL_keep", "IPY_MODEL_go"]),
        "slider": model("FloatSliderModel", description="percentile", value=0.991, readout_format=".4f"),
        "site": model("DropdownModel", description="site", _options_labels=["a.out", "b.out"], index=1),
        "keep": model("SelectMultipleModel", description="keep FP32", _options_labels=["x", "y", "z"], index=[0, 2]),
        "go": model("ButtonModel", description="Simulate INT8"),
        "readout": model("HTMLModel", value="threshold <span class='bertnpu-threshold'>19.91</span>"),
        "plot": {"model_name": "OutputModel", "model_module": "@jupyter-widgets/output", "state": {
            "outputs": [{"output_type": "display_data", "data": {"image/png": PNG, "text/plain": "<Image>"}, "metadata": {}}]}},
    }


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
    nb.metadata["widgets"] = {STATE_MIME: {"state": _state(), "version_major": 2, "version_minor": 0}}
    return nb


def test_widget_html_shows_values_text_and_images():
    html = widget_html("box", _state())
    assert "percentile" in html and "0.9910" in html  # the slider's readout format
    assert "b.out" in html and "a.out" not in html  # the selected option only
    assert "x, z" in html
    assert "<span class='bertnpu-threshold'>19.91</span>" in html
    assert f"data:image/png;base64,{PNG}" in html
    # nesting: the row's controls come before the readout, the readout before the figure
    assert html.index("percentile") < html.index("bertnpu-threshold") < html.index("data:image/png")


def test_snapshot_replaces_every_widget_output():
    nb = _notebook()
    assert snapshot_widget_outputs(nb) == 1
    out = nb.cells[2].outputs[0]
    assert set(out["data"]) == {"text/html"} and "bertnpu-snapshot" in out["data"]["text/html"]
    assert "widgets" not in nb.metadata


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
