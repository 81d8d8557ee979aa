"""A single self-contained HTML page (figures embedded as PNG data URIs), readable offline."""

from __future__ import annotations

import base64
import html
import io
from typing import Any, Sequence

from matplotlib.figure import Figure


def figure_png(fig: Figure, dpi: int = 100) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def esc(value: Any) -> str:
    """Any value as HTML text: ``<``, ``>``, ``&`` and quotes escaped (paths and names are user input)."""
    return html.escape(str(value), quote=True)


def fill(template: str, **values: Any) -> str:
    """``template`` (trusted HTML written in bertnpu) with every value escaped before it goes in.

    Example:
        >>> fill("<b>{model}</b>", model="<img src=x onerror=alert(1)>")
        '<b>&lt;img src=x onerror=alert(1)&gt;</b>'
    """
    return template.format(**{k: esc(v) for k, v in values.items()})


def image(png: bytes, alt: str) -> str:
    """An ``<img>`` holding ``png`` as a data URI (the page needs no other file), ``alt`` escaped."""
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def details(label: str, body: str, open_: bool = False) -> str:
    """``body`` (trusted HTML) folded under a ``<summary>`` line ``label`` (escaped): long tables stay out of the way."""
    return f"<details{' open' if open_ else ''}><summary>{esc(label)}</summary>{body}</details>"


def table(rows: Sequence[dict], columns: Sequence[str] | None = None, digits: int = 4) -> str:
    """An HTML table of dict rows (floats rounded)."""
    if not rows:
        return "<p>(none)</p>"
    columns = list(columns or rows[0].keys())

    def cell(v: Any) -> str:
        if v is None:  # not measured (e.g. a sweep cell ranked by the proxy only): an empty cell
            return ""
        if isinstance(v, float):
            return f"{v:.{digits}f}" if abs(v) < 1e4 else f"{v:.3g}"
        return html.escape(str(v))

    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell(r.get(c, ''))}</td>" for c in columns) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_report(title: str, sections: Sequence[tuple[str, str, dict[str, bytes]]]) -> str:
    """HTML of ``sections``: (heading, html body, {figure alt text: png bytes})."""
    parts = [f"<h1>{html.escape(title)}</h1>"]
    for heading, body, figures in sections:
        parts.append(f"<section><h2>{html.escape(heading)}</h2>{body}")
        parts.extend(image(png, alt) for alt, png in figures.items())
        parts.append("</section>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             "table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
             "th{background:#f3f3f3}img{max-width:100%;display:block;margin:.5em 0}section{margin-bottom:2em}code{background:#f3f3f3;padding:1px 4px}"
             "details{margin:.5em 0 1em}summary{cursor:pointer;color:#245}"
             # the headline card: the answer a user reads first
             ".card{border:2px solid #2a6;border-radius:8px;padding:.6em 1.2em;background:#f6fbf7}"
             ".card table{border:0;margin:.3em 0}.card th,.card td{border:0;text-align:left;font-size:15px;padding:4px 10px;vertical-align:top}"
             ".card th{background:none;color:#555;font-weight:normal;width:14em}.card ol{margin:0;padding-left:1.2em}"
             ".card pre{white-space:pre-wrap;word-break:break-all;background:#eef2ef;padding:4px 8px;margin:.3em 0;font-size:12px}"
             ".warn{color:#a40}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
