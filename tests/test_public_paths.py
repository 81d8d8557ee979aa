"""What a page may show of a local path: relative as given, absolute as a placeholder, in every spelling."""

import os

import nbformat

from bertnpu.ui.public_paths import PathRedactor, public_path


def test_public_path():
    assert public_path("../shared/data/stsbenchmark", "stsb") == "../shared/data/stsbenchmark"
    assert public_path("/home/alice/data/stsbenchmark", "stsb") == "<STS-B folder>"
    assert public_path("~/data", "work") == "<work folder>"  # ~ is the home folder: absolute
    assert public_path("/home/alice/data", "stsb", show_paths=True) == "/home/alice/data"
    assert public_path(None, "model") is None


def test_redactor_rewrites_every_spelling(tmp_path):
    real = tmp_path / "private-alice" / "stsb"
    real.mkdir(parents=True)
    link = tmp_path / "link-to-stsb"
    link.symlink_to(real)
    work = tmp_path / "private-alice" / "out" / "work"
    r = PathRedactor().add(link, "stsb").add(work, "work").add(work.parent, "out", shown="out")
    text = f"read {real}/sts-test.csv and {link}; wrote {work}/plan/recipe.json into {work.parent}"
    assert r.text(text) == "read <STS-B folder>/sts-test.csv and <STS-B folder>; wrote <work folder>/plan/recipe.json into out"
    escaped = f"<span>{str(tmp_path)}/a&amp;b</span>"
    r2 = PathRedactor().add(tmp_path / "a&b", "model")
    assert r2.text(escaped) == "<span>&lt;model folder&gt;</span>"  # the HTML spelling of a path gets the HTML spelling of its placeholder
    assert r.text("nothing private") == "nothing private"


def test_redactor_rewrites_a_notebook_but_not_its_images(tmp_path):
    secret = str(tmp_path / "secret")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(f"WORKDIR = {secret!r}")
    cell.outputs = [nbformat.v4.new_output("stream", text=f"wrote {secret}/x\n"),
                    nbformat.v4.new_output("display_data", data={"text/html": f"<b>{secret}</b>", "image/png": f"AAAA{secret}"})]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"state": {"m": {"state": {"value": f"cached in {secret}/plan", "outputs": [{"data": {"image/png": secret}}]}}}}
    PathRedactor().add(secret, "work").notebook(nb)
    assert cell.source == "WORKDIR = '<work folder>'"
    assert cell.outputs[0]["text"] == "wrote <work folder>/x\n" and cell.outputs[1]["data"]["text/html"] == "<b>&lt;work folder&gt;</b>"
    assert cell.outputs[1]["data"]["image/png"] == f"AAAA{secret}"  # binary payloads are never rewritten
    assert nb.metadata["widgets"]["state"]["m"]["state"]["value"] == "cached in <work folder>/plan"


def test_defaults_cover_home_and_current_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home-of-alice"))
    r = PathRedactor().add_defaults()
    assert r.text(f"{tmp_path}/rendered/work") == "./rendered/work"
    assert r.text(f"{tmp_path}/home-of-alice/models") == "~/models"
    assert os.sep.join(["", "usr", "lib"]) not in r.paths()


def test_placeholders_in_html_are_escaped(tmp_path):
    """In HTML a raw <work folder> would be an unknown tag, hidden by the browser: HTML outputs get it escaped."""
    secret = str(tmp_path / "secret")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("x")
    cell.outputs = [nbformat.v4.new_output("display_data", data={"text/html": f"<b>{secret}</b>", "text/plain": secret})]
    nb.cells = [cell]
    nb.metadata["widgets"] = {"state": {"h": {"model_name": "HTMLModel", "state": {"value": f"cached in {secret}", "description": secret}}}}
    PathRedactor().add(secret, "work").notebook(nb)
    assert cell.outputs[0]["data"]["text/html"] == "<b>&lt;work folder&gt;</b>" and cell.outputs[0]["data"]["text/plain"] == "<work folder>"
    state = nb.metadata["widgets"]["state"]["h"]["state"]
    assert state["value"] == "cached in &lt;work folder&gt;" and state["description"] == "<work folder>"


def test_report_html_shows_no_private_path(tmp_path):
    from bertnpu.ui.public_paths import report_redactor

    model = tmp_path / "alice-models" / "tiny"
    model.mkdir(parents=True)
    summary = {"inputs": {"model": str(model), "stsb": str(tmp_path / "alice-data" / "sts-dev.csv")}}
    page = f"<pre>{model}</pre><p>{tmp_path}/alice-data/sts-dev.csv, written to {tmp_path}/out/report.html</p>"
    assert report_redactor(summary, tmp_path / "out").text(page, in_html=True) == (
        "<pre>&lt;model folder&gt;</pre><p>&lt;STS-B folder&gt;/sts-dev.csv, written to &lt;output folder&gt;/report.html</p>")


def test_a_path_cut_short_by_a_repr_goes_too(tmp_path):
    secret = str(tmp_path / "alice" / "models" / "tiny")
    r = PathRedactor().add(secret, "model")
    cut = f"VBox(children=(Combobox(value='{secret[:-6]}\u2026"
    assert r.text(cut) == "VBox(children=(Combobox(value='<model folder>\u2026"
    assert r.text("HBox(children=(Label(value='/tmp\u2026") == "HBox(children=(Label(value='/tmp\u2026"  # too short to be private
