"""Every notebook runs top to bottom (small parameters); its key numbers equal the package's; outputs are not duplicated."""

import json
from pathlib import Path
import shutil
import re

import pytest

from bertnpu.ui.render import NOTEBOOKS, execute_notebook, inject_parameters, notebooks_dir, render_notebooks, to_html


@pytest.fixture(scope="module")
def params(tiny_model_dir, stsb_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("nbwork")
    return {"MODEL": str(tiny_model_dir), "STSB_DIR": str(stsb_dir), "WORKDIR": str(work), "CALIB_COUNT": 16, "EVAL_PAIRS": 40}


@pytest.fixture(scope="module")
def executed(params):
    """The five notebooks executed in order in one work folder (04 feeds 05), as ``bertnpu render`` runs them."""
    return {name: execute_notebook(notebooks_dir() / f"{name}.ipynb", params, cwd=params["WORKDIR"]) for name in NOTEBOOKS}


def _outputs(nb, kind):
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if kind in o.get("data", {})]


def _text(nb) -> str:
    parts = []
    for c in nb.cells:
        for o in c.get("outputs", []) if c.cell_type == "code" else []:
            parts.append(o.get("text", "") if o.get("output_type") == "stream" else o.get("data", {}).get("text/plain", ""))
    return "".join(parts)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_executes_cleanly(name, executed):
    nb = executed[name]
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert errors == []
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    text = _text(nb)
    assert "Loading weights" not in text and "Traceback" not in text  # quiet model loading
    stderr = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("name") == "stderr"]
    assert stderr == [], stderr
    html = to_html(nb)
    if name != "05_compile_and_verify":
        assert "data:image/png;base64" in html, "figures must be in the page"
    if name in ("02_calibration_data", "03_activation_ranges", "04_tune_quantization", "05_compile_and_verify"):
        assert nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    if name in ("01_analyze_model", "02_calibration_data", "03_activation_ranges", "04_tune_quantization"):
        assert "What it means:" in html  # every analysis ends with a computed conclusion


def test_widget_outputs_are_drawn_once(executed):
    """The explorer's histogram appears once on the page (no static copy that goes stale)."""
    for name in ("03_activation_ranges", "04_tune_quantization"):
        html = to_html(executed[name])
        assert html.count("bertnpu-threshold") == 1, name
        state = executed[name].metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
        plots = [m for m in state.values() if m["model_name"] == "OutputModel" and m["state"].get("outputs")]
        assert all(len(m["state"]["outputs"]) == 1 for m in plots)
    nb02 = executed["02_calibration_data"]
    assert _outputs(nb02, "image/png") == []  # the builder's figures live only in its Output widget
    state = nb02.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    figures = sum(len(m["state"].get("outputs", [])) for m in state.values() if m["model_name"] == "OutputModel")
    assert figures >= 3 and to_html(nb02).count('src="data:image/png;base64') == figures
    log = to_html(executed["05_compile_and_verify"])
    assert log.count("wrote compile bundle") == 1  # the compile log is shown once


def test_finished_progress_bars_leave_no_trace(executed):
    """Every tqdm bar a notebook showed while it ran is gone once finished: hidden (leave=False) in the saved
    widget state, so neither live Jupyter nor the rendered page keeps it (the review saw four finished bars)."""
    from bertnpu.ui.widget_snapshot import VIEW_MIME, is_hidden

    seen = 0
    for name, nb in executed.items():
        state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {}).get("state", {})
        shown = [o["data"][VIEW_MIME]["model_id"] for c in nb.cells for o in c.get("outputs", []) if VIEW_MIME in o.get("data", {})]
        # tqdm.notebook's bar: HBox(HTML description, FloatProgress, HTML counts)
        bars = [m for m in shown if state.get(m, {}).get("model_name") == "HBoxModel"
                and [state.get(c[len("IPY_MODEL_"):], {}).get("model_name") for c in state[m]["state"].get("children", [])]
                == ["HTMLModel", "FloatProgressModel", "HTMLModel"]]
        seen += len(bars)
        left = [state[state[m]["state"]["children"][0][len("IPY_MODEL_"):]]["state"].get("value") for m in bars if not is_hidden(m, state)]
        assert left == [], f"{name} keeps finished progress bars: {left}"
        assert not re.search(r"\u2007100%", to_html(nb)), name
    assert seen >= 4  # the check saw bars (sweep, sensitivity, planner, statistics ...), it is not vacuous


def test_notebook_04_numbers_equal_the_package(executed, params, tiny_model, stsb_dir):
    """The FP32 test Spearman printed in 04 equals evaluate_sts; the recommendation equals the sweep stage's recommended row."""
    from bertnpu.data.stsb import load_stsb
    from bertnpu.model.sentence_encoder import SentenceEncoder
    from bertnpu.tune.evaluate import evaluate_sts

    text = _text(executed["04_tune_quantization"])
    printed = float(re.search(r"FP32 test Spearman: ([0-9.]+)", text).group(1))
    want = evaluate_sts(SentenceEncoder(tiny_model, progress=False), load_stsb("test", stsb_dir).subset(params["EVAL_PAIRS"]))["spearman"]
    assert printed == pytest.approx(want, abs=5e-5)
    rows = json.loads((notebooks_dir().parent / params["WORKDIR"] / "sweep" / "sweep.json").read_text())
    best = max((r for r in rows if r["spearman"] is not None), key=lambda r: r["spearman"])  # cells not confirmed on the full split have None
    pick = next(r for r in rows if r["recommended"])  # the simplest cell tied with the best (tune.sweep.RECOMMENDATION_RULE)
    assert pick["tied_with_best"] and f"validation Spearman {pick['spearman']:.4f} [{pick['spearman_ci'][0]:.4f}, " in text
    assert f"tied with the best, {best['spearman']:.4f})" in text
    from bertnpu.run_config import RunConfig

    run = RunConfig.full()
    assert {r["method"] for r in rows} == set(run.methods)  # the same search as `bertnpu run`
    if hasattr(run, "outputs"):
        assert {r["output"] for r in rows} == set(run.outputs)
    assert "planned recipe" in text or "planned recipe" in to_html(executed["04_tune_quantization"])
    # 05 compiles (or bundles) what 04 planned, the recipe `bertnpu run` compiles
    from bertnpu.quant.recipe import Recipe

    planned = Recipe.load(Path(params["WORKDIR"]) / "recipe.json")
    text05 = _text(executed["05_compile_and_verify"])
    assert "planned (notebook 4's Plan panel" in text05 and f"recipe: {planned.label()}" in text05


def test_notebook_04_table_is_the_evaluate_stage(executed, params):
    """The closing table of 04, read back from the executed notebook, equals the evaluate stage run here on the
    notebook's own work folder (stats, recommended and planned recipes): every row, Spearman, cosine and recall@10."""
    from bertnpu.quant.recipe import Recipe
    from bertnpu.stages import EvaluateInputs, evaluate
    from bertnpu.ui.comparison import comparison_rows
    from bertnpu.ui.range_tables import format_value
    from bertnpu.ui.project import open_project

    work = Path(params["WORKDIR"])
    ws = open_project(work, model=params["MODEL"], stsb_dir=params["STSB_DIR"], calib_count=params["CALIB_COUNT"], eval_pairs=params["EVAL_PAIRS"])
    want = comparison_rows(evaluate(EvaluateInputs(ws.model, ws.stats, ws.pairs("test"), recommended=Recipe.load(work / "recommended_recipe.json"),
                                                   planned=Recipe.load(work / "recipe.json"), calib=ws.calibration, progress=False)))
    tables = [o["data"]["text/html"] for o in _outputs(executed["04_tune_quantization"], "text/html") if ">recall@10</th>" in o["data"]["text/html"]]
    assert len(tables) == 1
    cells = [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", tables[0])[1:]]
    header = re.findall(r"<th[^>]*>(.*?)</th>", tables[0])
    assert [c[0] for c in cells] == [r["name"] for r in want] == ["FP32", "tutorial config", "recommended", "planned recipe"]
    for got, row in zip(cells, want):
        for column in ("spearman", "spearman 95% CI", "vs FP32 (paired 95% CI)", "pearson", "cosine", "recall@10"):
            assert got[header.index(column)] == format_value(row[column]), (row["name"], column)

def test_notebooks_only_call_the_package():
    import nbformat

    for name in NOTEBOOKS:
        nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
        code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        for word in ("def ", "class ", "try:", "__import__"):
            assert word not in code, (name, word)  # wiring only: logic lives in bertnpu
        assert sum("parameters" in c.metadata.get("tags", []) for c in nb.cells) == 1
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "committed notebooks carry no outputs"
        # the defaults are `bertnpu run`'s own: read from the one run configuration, not written out again
        assert "RUN = RunConfig.full()" in code and "CALIB_COUNT = RUN.calib_count" in code and "EVAL_PAIRS = RUN.test_pairs" in code
        assert not re.search(r"CALIB_COUNT = \d", code)


def test_every_narrative_cell_has_its_korean_pair():
    import nbformat

    for name in NOTEBOOKS:
        nb = nbformat.read(notebooks_dir() / f"{name}.ipynb", as_version=4)
        md = [c for c in nb.cells if c.cell_type == "markdown"]
        tags = [tuple(c.metadata.get("tags", [])) for c in md]
        assert tags == [("lang-en",), ("lang-ko",)] * (len(md) // 2), name
        for en, ko in zip(md[::2], md[1::2]):
            assert re.search(r"[\uac00-\ud7a3]", ko.source), ko.source[:60]  # Hangul
            assert en.source.count("#") == ko.source.count("#")  # same headings
            code = lambda s: {c.replace(".KR.md", ".md") for c in re.findall(r"`([^`]+)`", s)}  # noqa: E731  (a Korean cell names the Korean page)
            assert code(en.source) == code(ko.source), (name, en.source[:40])


def test_inject_parameters_overrides_defaults():
    import nbformat

    nb = inject_parameters(nbformat.read(notebooks_dir() / "02_calibration_data.ipynb", as_version=4), {"CALIB_COUNT": 7})
    idx = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    assert nb.cells[idx + 1].source.endswith("CALIB_COUNT = 7")


def test_render_writes_offline_html(params, tmp_path):
    paths = render_notebooks(tmp_path / "site", model=params["MODEL"], stsb_dir=params["STSB_DIR"], calib_count=16, eval_pairs=30,
                             names=("03_activation_ranges",), lang="ko")
    html = paths[0].read_text()
    assert "data:image/png;base64" in html and "<title>3. " in html and 'lang="ko"' in html
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)  # base64 can spell anything
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"cdnjs|unpkg|jsdelivr|https?://[^\s\"']+\.js", text)
    assert "활성값" in html and "Activation ranges of every" not in html  # Korean narrative only
    nb = json.loads((tmp_path / "site" / "03_activation_ranges.ipynb").read_text())
    assert nb["metadata"]["widgets"]  # the .ipynb keeps the live widget state


def test_markup_in_a_model_folder_name_stays_text_in_rendered_pages(params, tmp_path):
    evil = tmp_path / "<img src=x onerror=alert(1)>"
    shutil.copytree(params["MODEL"], evil)
    paths = render_notebooks(tmp_path / "site", model=str(evil), stsb_dir=params["STSB_DIR"], calib_count=16, eval_pairs=30,
                             names=("01_analyze_model",), show_paths=True)  # --show-paths: the folder's name is on the page
    html = paths[0].read_text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # the name is on the page, as text
    assert "<img src=x" not in html and "onerror=alert(1)>" not in html.replace("&gt;", "")


def test_published_pages_show_no_private_path_and_korean_pages_are_korean(tiny_model_dir, stsb_dir, tmp_path_factory, monkeypatch):
    """`bertnpu render --lang ko` run as a user would, from a folder with a recognisable absolute path: no output file
    names that folder, the STS-B folder behind its symlink, the home folder or the host; every Korean page has no
    English prose outside code; index.html links the five pages in order and every page links back, with its footer."""
    import getpass
    import socket

    from bertnpu.ui.pages_index import INDEX
    from test_messages import english_sentences

    home = tmp_path_factory.mktemp("bertnpu-secret-home-XYZ")
    model = home / "models" / "tiny"
    shutil.copytree(tiny_model_dir, model)
    (home / "data").mkdir()
    (home / "data" / "stsb").symlink_to(Path(stsb_dir).resolve())  # given absolute, through a link: neither spelling may show
    (home / "project").mkdir()
    monkeypatch.chdir(home / "project")
    paths = render_notebooks("rendered", model=str(model), stsb_dir=str(home / "data" / "stsb"), calib_count=16, eval_pairs=30, lang="ko")
    site = home / "project" / "rendered"
    assert [p.name for p in paths] == [f"{n}.html" for n in NOTEBOOKS] + [INDEX]
    secrets = [str(home), "bertnpu-secret-home-XYZ", str(Path(stsb_dir).resolve()), str(Path.home()) + "/", f"/{getpass.getuser()}/"]
    if len(socket.gethostname()) >= 6:  # a short host name ("vm") would match ordinary words
        secrets.append(socket.gethostname())
    files = [p for p in site.iterdir() if p.is_file()]
    assert len(files) == 2 * len(NOTEBOOKS) + 1
    for f in files:
        text = re.sub(r"[A-Za-z0-9+/=]{200,}", "", f.read_text())  # base64 images can spell anything
        assert [s for s in secrets if s in text] == [], f.name
    nb = json.loads((site / "04_tune_quantization.ipynb").read_text())
    injected = next("".join(c["source"]) for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
    assert "MODEL = '<model folder>'" in injected and "STSB_DIR = '<STS-B folder>'" in injected and "WORKDIR = 'rendered/work'" in injected
    assert "LANG = 'ko'" in injected
    index = (site / INDEX).read_text()
    assert re.findall(r"href='(\d\d_[a-z_]+\.html)'", index) == [f"{n}.html" for n in NOTEBOOKS]
    evaluation = json.loads((site / "work" / "evaluation.json").read_text())
    assert f"FP32의 Spearman은 {evaluation['fp32']['spearman']:.4f}" in index and f"{evaluation['planned']['spearman']:.4f}" in index
    for name in NOTEBOOKS:
        page = (site / f"{name}.html").read_text()
        assert f"href='{INDEX}'" in page and "bertnpu-footer" in page and "언어: 한국어" in page, name
        assert english_sentences(page) == [], name
        if name != "05_compile_and_verify":
            assert "의미:" in page, name  # the conclusions are Korean
    assert english_sentences(index) == []
