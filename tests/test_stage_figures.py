"""Stage figures on the presentation side: drawn from a stage's typed result, written as PNGs safely, listed in its files."""

import pytest
from matplotlib.figure import Figure

from bertnpu import stages as st
from bertnpu.errors import BertnpuError
from bertnpu.ui.stage_figures import present, save_figures, stage_figures


def test_save_figures_writes_pngs_and_never_replaces_without_force(tmp_path):
    fig = Figure()
    fig.add_subplot().plot([0, 1], [1, 0])
    (path,) = save_figures({"line": fig}, tmp_path / "figs")
    assert path == tmp_path / "figs" / "line.png" and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(BertnpuError, match="already exists"):
        save_figures({"line": fig}, tmp_path / "figs")
    assert save_figures({"line": fig}, tmp_path / "figs", force=True) == (path,)
    assert save_figures({"line": fig}, None) == ()


def test_present_writes_the_stage_figures_and_lists_them(tiny_model, tmp_path):
    r = st.analyze(st.AnalyzeInputs(tiny_model, out=tmp_path / "analysis", mblt=False))
    assert all(p.suffix != ".png" for p in r.files)  # the stage itself draws nothing
    shown = present(r, tmp_path / "figures")
    assert shown.files == r.files + (tmp_path / "figures" / "placement.png",)
    assert (tmp_path / "figures" / "placement.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert present(r, None) is r and stage_figures(object()) == {}
    with pytest.raises(BertnpuError, match="already exists"):
        present(r, tmp_path / "figures")
