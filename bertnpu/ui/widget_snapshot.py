"""Static HTML snapshots of saved ipywidgets state, so a rendered notebook needs no JavaScript.

A notebook executed with ``store_widget_state`` keeps every widget's last state in its
metadata; each widget output only names a model id. :func:`snapshot_widget_outputs` swaps
each such output for plain HTML built from that state: labels with their values, the HTML
widgets' text, and the Output widgets' images and text, nested as the boxes nest them.
"""

from __future__ import annotations

import html
from typing import Any

VIEW_MIME = "application/vnd.jupyter.widget-view+json"
STATE_MIME = "application/vnd.jupyter.widget-state+json"

CSS = """
.bertnpu-snapshot{font-family:system-ui,sans-serif;font-size:13px;margin:.3em 0}
.bertnpu-snapshot .bertnpu-hbox{display:flex;flex-wrap:wrap;gap:.4em 1.2em;align-items:center}
.bertnpu-snapshot .bertnpu-vbox{display:flex;flex-direction:column;gap:.3em}
.bertnpu-snapshot .bertnpu-control{white-space:nowrap}
.bertnpu-snapshot .bertnpu-control .bertnpu-desc{color:#555;margin-right:.4em}
.bertnpu-snapshot .bertnpu-control .bertnpu-value{font-weight:600;border:1px solid #ccc;border-radius:3px;padding:1px 6px;background:#fafafa}
.bertnpu-snapshot .bertnpu-button{border:1px solid #aaa;border-radius:3px;padding:1px 8px;background:#eee;color:#777}
.bertnpu-snapshot img{max-width:100%}
.bertnpu-snapshot pre{margin:0;white-space:pre-wrap;word-break:normal;overflow-wrap:break-word}
"""


def _model_id(ref: Any) -> str:
    return ref[len("IPY_MODEL_"):] if isinstance(ref, str) and ref.startswith("IPY_MODEL_") else str(ref)


def _format(value: Any, fmt: str | None) -> str:
    if isinstance(value, float) and fmt:
        try:
            return format(value, fmt)
        except ValueError:  # a d3 format Python does not know: fall back to plain
            return f"{value:g}"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _control(desc: str, value: str, cls: str = "") -> str:
    desc_html = f"<span class='bertnpu-desc'>{html.escape(desc)}</span>" if desc else ""
    return f"<span class='bertnpu-control {cls}'>{desc_html}<span class='bertnpu-value'>{html.escape(value)}</span></span>"


def output_html(output: dict) -> str:
    """HTML of one saved notebook output (image, HTML, text or stream)."""
    kind = output.get("output_type")
    if kind == "stream":
        return f"<pre>{html.escape(''.join(output.get('text', '')))}</pre>"
    if kind == "error":
        return f"<pre>{html.escape(output.get('ename', ''))}: {html.escape(output.get('evalue', ''))}</pre>"
    data = output.get("data", {})
    if "image/png" in data:
        png = data["image/png"]
        png = "".join(png) if isinstance(png, list) else png
        return f"<img alt='figure' src='data:image/png;base64,{png.strip()}'>"
    if "text/html" in data:
        value = data["text/html"]
        return "".join(value) if isinstance(value, list) else value
    if "text/plain" in data:
        value = data["text/plain"]
        return f"<pre>{html.escape(''.join(value) if isinstance(value, list) else value)}</pre>"
    return ""


def is_hidden(model_id: str, state: dict[str, dict]) -> bool:
    """Whether the saved widget's Layout hides it (``visibility: hidden`` or ``display: none``), as a
    finished ``tqdm.auto`` bar with ``leave=False`` does: the live page no longer shows it, so neither may the snapshot."""
    entry = state.get(model_id)
    layout = state.get(_model_id((entry or {}).get("state", {}).get("layout")), {}).get("state", {})
    return layout.get("visibility") == "hidden" or layout.get("display") == "none"


def widget_html(model_id: str, state: dict[str, dict]) -> str:
    """HTML of the widget ``model_id`` (and its children) from the saved ``state`` mapping; hidden widgets give ``""``."""
    entry = state.get(model_id)
    if entry is None or is_hidden(model_id, state):
        return ""
    name = entry.get("model_name", "")
    s = entry.get("state", {})
    desc = s.get("description", "") or ""
    if name in ("VBoxModel", "BoxModel", "GridBoxModel", "AccordionModel", "TabModel", "HBoxModel"):
        kind = "bertnpu-hbox" if name == "HBoxModel" else "bertnpu-vbox"
        return f"<div class='{kind}'>" + "".join(widget_html(_model_id(c), state) for c in s.get("children", [])) + "</div>"
    if name in ("HTMLModel", "HTMLMathModel"):
        return f"<div class='bertnpu-html'>{s.get('value', '')}</div>"
    if name == "LabelModel":
        return f"<span>{html.escape(str(s.get('value', '')))}</span>"
    if name == "OutputModel":
        return "<div class='bertnpu-output'>" + "".join(output_html(o) for o in s.get("outputs", [])) + "</div>"
    if name in ("FloatSliderModel", "FloatLogSliderModel", "IntSliderModel", "FloatTextModel", "IntTextModel", "BoundedIntTextModel",
                "BoundedFloatTextModel", "TextModel", "ComboboxModel", "CheckboxModel", "ToggleButtonModel"):
        cls = "bertnpu-slider" if "Slider" in name else ""
        return _control(desc, _format(s.get("value", ""), s.get("readout_format")), cls)
    if name in ("FloatRangeSliderModel", "IntRangeSliderModel"):
        lo, hi = s.get("value", ("", ""))
        return _control(desc, f"{_format(lo, s.get('readout_format'))} - {_format(hi, s.get('readout_format'))}", "bertnpu-slider")
    if name in ("DropdownModel", "RadioButtonsModel", "SelectModel", "ToggleButtonsModel"):
        labels, index = s.get("_options_labels", []), s.get("index")
        return _control(desc, labels[index] if isinstance(index, int) and 0 <= index < len(labels) else "")
    if name == "SelectMultipleModel":
        labels = s.get("_options_labels", [])
        chosen = [labels[i] for i in s.get("index", []) if 0 <= i < len(labels)]
        return _control(desc, ", ".join(chosen) or "(none)")
    if name == "TextareaModel":
        return (f"<div class='bertnpu-control'><span class='bertnpu-desc'>{html.escape(desc)}</span>"
                f"<pre class='bertnpu-value'>{html.escape(str(s.get('value', '')))}</pre></div>")
    if name in ("IntProgressModel", "FloatProgressModel"):
        return _control(desc, f"{_format(s.get('value', 0), None)} / {_format(s.get('max', 0), None)}")
    if name == "ButtonModel":
        return f"<span class='bertnpu-button' title='needs a running kernel'>{html.escape(desc)}</span>"
    return ""


def snapshot_widget_outputs(nb) -> int:
    """Replace each widget output of ``nb`` (in place) by a static HTML snapshot of its saved state
    (dropping the outputs of widgets the live page hides), and drop the widget state; returns how
    many widget outputs were replaced or dropped."""
    state = nb.metadata.get("widgets", {}).get(STATE_MIME, {}).get("state", {})
    replaced = 0
    for cell in nb.cells:
        kept = []
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if VIEW_MIME in data:
                model_id = data[VIEW_MIME].get("model_id", "")
                replaced += 1
                if is_hidden(model_id, state):  # e.g. a finished progress bar: the live page hides it, so the page drops it
                    continue
                output["data"] = {"text/html": f"<div class='bertnpu-snapshot'>{widget_html(model_id, state)}</div>"}
            kept.append(output)
        if "outputs" in cell:
            cell.outputs = kept
    nb.metadata.pop("widgets", None)
    return replaced
