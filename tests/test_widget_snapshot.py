"""Static snapshots of saved widget state: each widget kind's HTML from its state, nesting, and the swap in a notebook."""

import base64

import nbformat

from bertnpu.ui.widget_snapshot import STATE_MIME, VIEW_MIME, is_hidden, output_html, snapshot_widget_outputs, widget_html

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def saved_state():
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


def test_widget_html_shows_values_text_and_images():
    html = widget_html("box", saved_state())
    assert "percentile" in html and "0.9910" in html  # the slider's readout format
    assert "b.out" in html and "a.out" not in html  # the selected option only
    assert "x, z" in html
    assert "<span class='bertnpu-threshold'>19.91</span>" in html
    assert f"data:image/png;base64,{PNG}" in html
    # nesting: the row's controls come before the readout, the readout before the figure
    assert html.index("percentile") < html.index("bertnpu-threshold") < html.index("data:image/png")


def test_snapshot_replaces_every_widget_output():
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("display(explorer.widget)")
    cell.outputs = [nbformat.v4.new_output("display_data", data={VIEW_MIME: {"model_id": "box", "version_major": 2, "version_minor": 0},
                                                                  "text/plain": "VBox(...)"})]
    nb.cells = [nbformat.v4.new_markdown_cell("# t"), cell]
    nb.metadata["widgets"] = {STATE_MIME: {"state": saved_state(), "version_major": 2, "version_minor": 0}}
    assert snapshot_widget_outputs(nb) == 1
    out = nb.cells[1].outputs[0]
    assert set(out["data"]) == {"text/html"} and out["data"]["text/html"] == f"<div class='bertnpu-snapshot'>{widget_html('box', saved_state())}</div>"
    assert "widgets" not in nb.metadata


def _one(name, **state):
    return {"w": {"model_name": name, "state": state}}


def test_each_control_kind_shows_its_value():
    assert widget_html("w", _one("IntSliderModel", description="count", value=256)) == (
        "<span class='bertnpu-control bertnpu-slider'><span class='bertnpu-desc'>count</span><span class='bertnpu-value'>256</span></span>")
    assert ">0.25 - 0.75<" in widget_html("w", _one("FloatRangeSliderModel", description="r", value=[0.25, 0.75]))
    assert ">0.250 - 0.750<" in widget_html("w", _one("FloatRangeSliderModel", value=[0.25, 0.75], readout_format=".3f"))
    assert ">1.5<" in widget_html("w", _one("FloatSliderModel", value=1.5, readout_format=".2~s"))  # a d3 format Python lacks: plain
    assert ">True<" in widget_html("w", _one("CheckboxModel", description="force", value=True))
    assert ">b<" in widget_html("w", _one("ToggleButtonsModel", _options_labels=["a", "b"], index=1))
    assert "<span class='bertnpu-value'></span>" in widget_html("w", _one("DropdownModel", _options_labels=["a"], index=None))
    assert ">(none)<" in widget_html("w", _one("SelectMultipleModel", _options_labels=["a"], index=[]))
    assert ">3 / 8<" in widget_html("w", _one("IntProgressModel", value=3, max=8))
    assert "<pre class='bertnpu-value'>line 1\n&lt;2&gt;</pre>" in widget_html("w", _one("TextareaModel", description="log", value="line 1\n<2>"))
    assert widget_html("w", _one("LabelModel", value="<i>")) == "<span>&lt;i&gt;</span>"
    assert "title='needs a running kernel'>Go &amp; run<" in widget_html("w", _one("ButtonModel", description="Go & run"))


def test_unknown_or_missing_widgets_are_empty():
    assert widget_html("w", _one("PlayModel", value=3)) == ""
    assert widget_html("absent", {}) == ""
    state = {"box": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_gone", "IPY_MODEL_l"]}},
             "l": {"model_name": "LabelModel", "state": {"value": "kept"}}}
    assert widget_html("box", state) == "<div class='bertnpu-hbox'><span>kept</span></div>"


def test_output_html_of_each_output_kind():
    assert output_html({"output_type": "stream", "name": "stdout", "text": ["a < b\n", "c"]}) == "<pre>a &lt; b\nc</pre>"
    assert output_html({"output_type": "error", "ename": "ValueError", "evalue": "bad <x>", "traceback": []}) == "<pre>ValueError: bad &lt;x&gt;</pre>"
    assert output_html({"output_type": "display_data", "data": {"image/png": [PNG[:8], PNG[8:] + "\n"], "text/plain": "x"}}) == (
        f"<img alt='figure' src='data:image/png;base64,{PNG}'>")
    assert output_html({"output_type": "display_data", "data": {"text/html": ["<table>", "</table>"], "text/plain": "t"}}) == "<table></table>"
    assert output_html({"output_type": "execute_result", "data": {"text/plain": ["0.5", "<1>"]}}) == "<pre>0.5&lt;1&gt;</pre>"
    assert output_html({"output_type": "display_data", "data": {"application/json": {}}}) == ""


def test_snapshot_leaves_other_outputs_and_counts_widgets():
    nb = nbformat.v4.new_notebook()
    plain = nbformat.v4.new_output("stream", name="stdout", text="hello")
    view = {VIEW_MIME: {"model_id": "l", "version_major": 2, "version_minor": 0}}
    cells = [nbformat.v4.new_code_cell("x"), nbformat.v4.new_code_cell("y")]
    cells[0].outputs = [plain, nbformat.v4.new_output("display_data", data=view)]
    cells[1].outputs = [nbformat.v4.new_output("display_data", data=dict(view))]
    nb.cells = cells
    nb.metadata["widgets"] = {STATE_MIME: {"state": {"l": {"model_name": "LabelModel", "state": {"value": "v"}}}}}
    assert snapshot_widget_outputs(nb) == 2
    assert nb.cells[0].outputs[0] == plain
    assert nb.cells[1].outputs[0]["data"] == {"text/html": "<div class='bertnpu-snapshot'><span>v</span></div>"}
    bare = nbformat.v4.new_notebook()
    bare.cells = [nbformat.v4.new_code_cell("z")]
    bare.cells[0].outputs = [nbformat.v4.new_output("display_data", data=dict(view))]
    assert snapshot_widget_outputs(bare) == 1  # no saved state: an empty snapshot, never the widget's JSON
    assert bare.cells[0].outputs[0]["data"] == {"text/html": "<div class='bertnpu-snapshot'></div>"}


def finished_bar_state(visibility="hidden", display=None):
    """A finished ``tqdm.auto`` bar with ``leave=False`` as nbclient saved it in notebook 03 (bertnpu render):
    HBox(HTML, FloatProgress, HTML) whose Layout tqdm set to ``visibility: hidden`` when it closed the bar."""
    def model(name, **state):
        return {"model_name": name, "state": state}

    return {
        "bar": model("HBoxModel", children=["IPY_MODEL_left", "IPY_MODEL_progress", "IPY_MODEL_right"], layout="IPY_MODEL_barlayout"),
        "barlayout": {"model_name": "LayoutModel", "model_module": "@jupyter-widgets/base", "state": {"visibility": visibility, "display": display}},
        "left": model("HTMLModel", value="activation\u2007stats:\u2007100%"),
        "progress": model("FloatProgressModel", value=8.0, max=8.0),
        "right": model("HTMLModel", value="\u20078/8\u2007[01:17&lt;00:00,\u2007\u20075.85s/it]"),
        "label": model("LabelModel", value="87 sites"),
    }


def test_hidden_widgets_leave_no_trace_in_the_snapshot():
    state = finished_bar_state()
    assert is_hidden("bar", state) and not is_hidden("label", state) and not is_hidden("absent", state)
    assert widget_html("bar", state) == ""
    assert is_hidden("bar", finished_bar_state(visibility=None, display="none"))
    shown = finished_bar_state(visibility=None)
    assert not is_hidden("bar", shown) and "8 / 8" in widget_html("bar", shown)  # a bar left on screen (leave=True) stays
    # inside a box, only the hidden child goes
    state["box"] = {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_bar", "IPY_MODEL_label"]}}
    assert widget_html("box", state) == "<div class='bertnpu-vbox'><span>87 sites</span></div>"
    # in a notebook, the hidden bar's output is dropped, the cell's other outputs stay in order
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("stats = ws.stats")
    text = nbformat.v4.new_output("stream", name="stdout", text="87 sites over 256 calibration samples\n")
    cell.outputs = [nbformat.v4.new_output("display_data", data={VIEW_MIME: {"model_id": "bar", "version_major": 2, "version_minor": 0},
                                                                  "text/plain": "activation stats:   0%|"}),
                    text,
                    nbformat.v4.new_output("display_data", data={VIEW_MIME: {"model_id": "label", "version_major": 2, "version_minor": 0}})]
    nb.cells = [cell]
    nb.metadata["widgets"] = {STATE_MIME: {"state": state}}
    assert snapshot_widget_outputs(nb) == 2
    assert [o["output_type"] for o in nb.cells[0].outputs] == ["stream", "display_data"]
    assert nb.cells[0].outputs[0] == text
    assert nb.cells[0].outputs[1]["data"] == {"text/html": "<div class='bertnpu-snapshot'><span>87 sites</span></div>"}
    assert "s/it" not in nbformat.writes(nb)
