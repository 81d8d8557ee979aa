"""Stage 1, analyze: its JSON entry holds numbers and run-relative paths, never figure objects; files are never replaced silently."""

from __future__ import annotations

import json

import pytest
from matplotlib.figure import Figure

from bertnpu.errors import BertnpuError
from bertnpu import stages as st
from bertnpu.ui.stage_figures import present, stage_figures


def test_result_json_has_numbers_and_relative_paths_not_figures(tiny_model, tmp_path):
    r = present(st.analyze(st.AnalyzeInputs(tiny_model, out=tmp_path / "analysis", mblt=False)), tmp_path / "figures")
    assert isinstance(stage_figures(r)["placement"], Figure)
    d = r.to_dict(relative_to=tmp_path)
    json.dumps(d)  # JSON-ready
    assert "figures" not in d and "rows" not in d
    assert sorted(d["files"]) == ["analysis/ops.csv", "analysis/ops.json", "figures/placement.png"]
    ops = (tmp_path / "analysis" / "ops.csv").read_text().strip().splitlines()
    assert len(ops) - 1 == r.ops == len(json.loads((tmp_path / "analysis" / "ops.json").read_text()))
    with pytest.raises(BertnpuError, match="already exists"):
        st.analyze(st.AnalyzeInputs(tiny_model, out=tmp_path / "analysis", mblt=False))


@pytest.mark.parametrize("qbcompiler_double", [3], indirect=True)
def test_analysis_graph_under_qbcompiler_1_3_needs_a_target_device(qbcompiler_double, tiny_model, tmp_path):
    """1.3 builds the MBLT for a device: without one the op inventory stands and one sentence says why no .mblt was written;
    with one the graph is written; an unknown one is refused (issue 22)."""
    r = st.analyze(st.AnalyzeInputs(tiny_model, out=tmp_path / "a"))
    assert r.mblt is None and "target_device" in r.mblt_note and "aries-rb" in r.mblt_note and r.ops > 0
    r = st.analyze(st.AnalyzeInputs(tiny_model, out=tmp_path / "b", target_device="aries-rb"))
    assert r.mblt is not None and r.mblt.is_file() and r.mblt_note == ""
    calls = [json.loads(line) for line in qbcompiler_double.read_text().splitlines()]
    assert any(c.get("target_device") == "aries-rb" or c.get("kwargs", {}).get("target_device") == "aries-rb" for c in calls), calls[-1]
    with pytest.raises(BertnpuError, match="unknown"):
        st.analyze(st.AnalyzeInputs(tiny_model, out=tmp_path / "c", target_device="aries9"))
