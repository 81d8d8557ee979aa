"""Every value that reaches report.html is escaped."""

import html
from html.parser import HTMLParser

from bertnpu.ui.report import details, esc, fill, image, render_report, table

MARKUP = '<img src=x onerror="alert(1)">&<script>alert(2)</script>'


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: str):
    parser = _Tags()
    parser.feed(page)
    return parser.tags


def test_fill_escapes_values_not_the_template():
    out = fill("<b>{model}</b> ({n} pairs)", model=MARKUP, n=3)
    assert out.startswith("<b>") and out.endswith("</b> (3 pairs)")
    assert html.unescape(out[3:-len("</b> (3 pairs)")]) == MARKUP  # the text round-trips exactly
    assert [t for t, _ in _tags(out)] == ["b"]


def test_table_escapes_keys_and_values():
    t = table([{MARKUP: MARKUP, "x": 0.5}])
    assert {tag for tag, _ in _tags(t)} == {"table", "thead", "tbody", "tr", "th", "td"}
    assert esc(MARKUP).count("&lt;") == MARKUP.count("<")


def test_details_and_image_escape_their_label():
    folded = details(MARKUP, "<table></table>")
    assert [t for t, _ in _tags(folded)] == ["details", "summary", "table"]  # the body is trusted HTML, the label text
    assert html.unescape(folded[len("<details><summary>"):folded.index("</summary>")]) == MARKUP
    assert " open" in details("x", "", open_=True).split(">")[0]
    tags = _tags(image(b"png", MARKUP))
    assert len(tags) == 1 and tags[0][1]["alt"] == MARKUP and set(tags[0][1]) == {"alt", "src"}


def test_report_page_has_no_tag_from_a_value():
    page = render_report(f"bertnpu report: {MARKUP}", [(MARKUP, fill("<p>{x}</p>", x=MARKUP), {MARKUP: b"png"})])
    tags = _tags(page)
    assert not any(t in ("script",) for t, _ in tags)
    imgs = [a for t, a in tags if t == "img"]
    assert len(imgs) == 1 and imgs[0]["alt"] == MARKUP and "onerror" not in imgs[0]  # the figure, with its alt text as text


def test_model_picker_shows_a_markup_folder_name_as_text(tiny_model_dir, tmp_path):
    """A model folder named like markup: the widget's HTML value holds it as text (loaded, and when refused)."""
    import shutil

    from bertnpu.ui.widgets import ModelPicker

    folder = tmp_path / '<img src=x onerror="alert(1)">'
    shutil.copytree(tiny_model_dir, folder)
    picker = ModelPicker(str(folder))
    picker.load()
    assert picker.model is not None and picker.model.config.hidden_size == 36
    assert [t for t, _ in _tags(picker.status.value)] == ["b"] and html.unescape(picker.status.value).count(str(folder)) == 1
    (folder / "tokenizer.json").unlink()
    picker.load()
    assert [t for t, _ in _tags(picker.status.value)] == ["span"] and "no tokenizer files" in picker.status.value
    assert str(folder) in html.unescape(picker.status.value)
