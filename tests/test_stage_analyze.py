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
