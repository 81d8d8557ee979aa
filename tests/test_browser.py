"""Real browser: JupyterLab on localhost, Playwright driving Debian's chromium, notebook 04's percentile slider."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from bertnpu.ui.render import inject_parameters, notebooks_dir
from conftest import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = REPO / "test-artifacts"

pytestmark = pytest.mark.browser


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def jupyterlab(tmp_path, tiny_model_dir, stsb_dir):
    import nbformat

    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed; .ci/run installs Debian's chromium package")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    root = tmp_path / "lab"
    root.mkdir()
    nb = inject_parameters(nbformat.read(notebooks_dir() / "04_tune_quantization.ipynb", as_version=4),
                           {"MODEL": str(tiny_model_dir), "STSB_DIR": str(stsb_dir), "WORKDIR": str(root / "work"), "CALIB_COUNT": 64, "EVAL_PAIRS": 30})
    # the explorer and Simulate cells only: the sweep, planner and test-table cells are not what this test measures
    nb.cells = [c for c in nb.cells if not any(word in c.source for word in ("sweep", "site_sensitivity", "PlanPanel", "planner", "comparison_rows"))]
    nbformat.write(nb, root / "04_tune_quantization.ipynb")
    port, token = _free_port(), "bertnpu-test"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"), JUPYTERLAB_SETTINGS_DIR=str(tmp_path / "settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp_path / "ws"))
    log = open(tmp_path / "jupyterlab.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
                             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
                             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--allow-root"],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.time() + 90
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("JupyterLab did not start: " + (tmp_path / "jupyterlab.log").read_text()[-2000:])
                time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/lab/tree/04_tune_quantization.ipynb?token={token}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]

# Arms a watcher: on the next pointer release it notes the time, then waits for the explorer's
# histogram <img> to be replaced and stores the elapsed ms in window.__bertnpuRedraw (-1: no redraw).
ARM_REDRAW_WATCH = """() => {
  // the explorer's histogram: the image in the widget box that holds the threshold readout
  const plotImg = () => {
    const readout = document.querySelector('.bertnpu-threshold');
    let box = readout ? readout.parentElement : null;
    while (box && !box.querySelector('img')) box = box.parentElement;
    return box ? box.querySelector('img') : null;
  };
  const before = plotImg() ? plotImg().src : null;
  window.__bertnpuRedraw = null;
  document.addEventListener('pointerup', () => {
    const t0 = performance.now();
    const check = () => {
      const now = plotImg();
      if (now && now.src !== before && now.complete) { window.__bertnpuRedraw = performance.now() - t0; return; }
      if (performance.now() - t0 > 15000) { window.__bertnpuRedraw = -1; return; }
      requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  }, {once: true, capture: true});
}"""


def test_percentile_slider_moves_the_threshold(jupyterlab):
    """Live JupyterLab: the percentile slider moves the drawn threshold; prints slider release -> redrawn histogram times."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        try:
            page.goto(jupyterlab)
            page.wait_for_selector(".jp-Notebook", timeout=60_000)
            threshold = page.locator(".bertnpu-threshold").first
            for attempt in range(3):
                # a Run All issued before the kernel is connected is dropped: wait for "Idle" first
                page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=90_000)
                page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
                page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
                try:
                    threshold.wait_for(timeout=120_000)
                    break
                except Exception:
                    if attempt == 2:
                        raise
            page.locator(".bertnpu-int8").first.wait_for(timeout=120_000)  # Simulate finished: the kernel is free
            def type_into_slider(index: int, text: str) -> str:
                """Type a value into the index-th slider's editable readout; wait until the threshold text changes."""
                shown = threshold.inner_text()
                page.locator(".widget-hslider .widget-readout").nth(index).click()
                page.keyboard.press("Control+A")
                page.keyboard.type(text)
                page.keyboard.press("Enter")
                deadline = time.time() + 60
                while threshold.inner_text() == shown and time.time() < deadline:
                    time.sleep(0.25)
                return shown

            before = type_into_slider(0, "0.9900")  # the percentile slider
            after = threshold.inner_text()
            # topk_ratio 1: every percentile step then changes the clipped count, so each release redraws
            type_into_slider(1, "1.0000")
            # slider release -> redrawn histogram: drag the handle, release, wait for the new image
            handle = page.locator(".widget-hslider .noUi-handle, .widget-hslider .ui-slider-handle").first
            timings = []
            for step in range(6):
                box = handle.bounding_box()
                x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
                page.mouse.move(x, y)
                page.mouse.down()
                page.mouse.move(x + (25 if step % 2 == 0 else -25), y, steps=4)
                page.evaluate(ARM_REDRAW_WATCH)
                page.mouse.up()
                page.wait_for_function("() => window.__bertnpuRedraw !== null", timeout=30_000)
                took = float(page.evaluate("() => window.__bertnpuRedraw"))
                if took >= 0:
                    timings.append(took)
            page.screenshot(path=str(ARTIFACTS / "browser_04_tune_quantization.png"), full_page=False)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "browser_04_failure.png"))
            raise
        finally:
            browser.close()
    assert after != before, f"threshold stayed at {before}"
    assert float(after) > 0
    assert timings, "no slider release redrew the histogram"
    timings.sort()
    print(f"\nslider release -> redrawn histogram in the browser: median {timings[len(timings) // 2]:.0f} ms, "
          f"min {timings[0]:.0f} ms, max {timings[-1]:.0f} ms over {len(timings)} releases (target < 300 ms)")


def test_rendered_page_works_offline(tmp_path, tiny_model_dir, stsb_dir):
    """`bertnpu render`'s page in chromium with the network off: no failed or outside requests; the
    Simulate result and the sliders' values are visible; the title is the notebook's."""
    from playwright.sync_api import sync_playwright

    from bertnpu.ui.render import render_notebooks

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page_path = render_notebooks(tmp_path / "site", model=str(tiny_model_dir), stsb_dir=str(stsb_dir), calib_count=16, eval_pairs=30,
                                 names=("04_tune_quantization",))[0]
    failed, outside = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(("file:", "data:")) else None)
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        title = page.title()
        simulate = page.locator(".bertnpu-int8").first.inner_text()
        sliders = page.locator(".bertnpu-slider").all_inner_texts()
        visible = page.locator(".bertnpu-simulate").first.is_visible() and page.locator(".bertnpu-threshold").first.is_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "rendered_04_offline.png"), full_page=False)
        browser.close()
    assert failed == [] and outside == [], (failed, outside)
    assert title.startswith("4. Tune percentile")
    assert visible and -1 <= float(simulate) <= 1
    assert any("percentile" in s and "0.9990" in s for s in sliders) and any("topk_ratio" in s for s in sliders), sliders
