import pytest
from matplotlib.figure import Figure

from bertnpu.model.analysis import block_summary, format_summary, model_summary, op_inventory
from bertnpu.ui.plots import plot_block_placement


@pytest.fixture(scope="module")
def inventory(tiny_model):
    return op_inventory(tiny_model, "Hello, my dog is cute")


def test_cpu_ops_are_embeddings_and_mask(inventory):
    cpu = [r for r in inventory if r["placement"] == "CPU"]
    assert {r["block"] for r in cpu} == {"embeddings", "attention mask"}
    assert [r["op"] for r in cpu if r["block"] == "embeddings"].count("index") == 2  # word and token-type lookups
    assert "layer_norm" in [r["op"] for r in cpu]
    assert all(r["placement"] == "NPU" for r in inventory if r["op"] in ("linear", "softmax", "gelu"))


def test_flops_match_the_formula(tiny_model, inventory):
    blocks = {b["block"]: b for b in block_summary(tiny_model, inventory)}
    n = len(tiny_model.tokenizer("Hello, my dog is cute")["input_ids"])
    h, i = 36, 70
    per_layer = 2 * n * (4 * h * h + 2 * h * i) + 2 * 2 * n * n * h
    assert [blocks[f"layer.{k}"]["flops"] for k in range(3)] == [per_layer] * 3
    assert blocks["pooler"]["flops"] == 2 * h * h
    assert sum(b["parameters"] for b in blocks.values()) == sum(p.numel() for p in tiny_model.bert.parameters())
    assert [r["op"] for r in inventory if r["block"] == "layer.0"].count("linear") == 6


def test_summary_and_figure(tiny_model, inventory):
    s = model_summary(tiny_model)
    assert (s["layers"], s["heads"], s["hidden_size"]) == (3, 3, 36)
    assert "LayerNorm" in format_summary(s)
    fig = plot_block_placement(block_summary(tiny_model, inventory))
    assert isinstance(fig, Figure)


def test_cli_analyze(tiny_model_dir, tmp_path, capsys):
    from bertnpu.cli import main

    assert main(["analyze", "--model", str(tiny_model_dir), "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "qbcompiler is not installed" in out and "layer.2" in out
    assert (tmp_path / "ops.csv").is_file() and (tmp_path / "placement.png").stat().st_size > 1000
