"""`bertnpu run` / `sweep` output folders: verified reuse, user files kept, a lock, fresh results for new data."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from bertnpu.cli import main
from bertnpu.project.folder import LOCK, MARKER, OutputFolder
from bertnpu.project import ProjectStore
from bertnpu.run_config import RunConfig
from bertnpu.run_config import RunConfig


@pytest.fixture
def stage_runner(tiny_model, tmp_path):
    """A project store whose one stage exports the tiny model's weight_dict.pth; counts the exports."""
    from bertnpu import stages as st

    out = tmp_path / "run"
    calls = []

    def work():
        calls.append(1)
        return st.export_embeddings(st.ExportInputs(tiny_model, out / "weight_dict.pth", force=True))

    def run_stage(key=None):
        lines = []
        store = ProjectStore(RunConfig.full(out=str(out)), log=lines.append)
        with store.writing("stages", "weight_dict.pth"):
            store.stage("embeddings", key or {"model": "tiny"}, work)
        return lines

    return out, calls, run_stage


def test_reused_stage_verifies_its_files_and_recomputes_saying_why(stage_runner):
    out, calls, run_stage = stage_runner
    run_stage()
    original = (out / "weight_dict.pth").read_bytes()
    marker = json.loads((out / "stages" / "embeddings.json").read_text())
    assert marker["files"]["weight_dict.pth"]["size"] == len(original)
    assert "files verified" in run_stage()[0] and len(calls) == 1

    with open(out / "weight_dict.pth", "r+b") as fh:
        fh.truncate(1000)
    lines = run_stage()
    assert f"recomputing (weight_dict.pth changed size ({len(original)} -> 1000 bytes))" in lines[0]
    assert len(calls) == 2 and (out / "weight_dict.pth").read_bytes() == original

    (out / "weight_dict.pth").unlink()
    assert "recomputing (weight_dict.pth is missing)" in run_stage()[0] and len(calls) == 3

    (out / "stages" / "embeddings.json").write_text('{"key": "ab')  # half-written by a kill
    assert "recomputing (its marker embeddings.json is unreadable)" in run_stage()[0] and len(calls) == 4

    run_stage({"model": "another"})  # changed inputs: a plain recompute
    assert len(calls) == 5 and (out / "weight_dict.pth").read_bytes() == original


def _run_argv(tiny_model_dir, stsb_dir, out, *extra):
    return ["run", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--out", str(out), "--quick", *extra]


def test_run_refuses_user_files_and_deletes_nothing(tiny_model_dir, stsb_dir, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "calib").mkdir(parents=True)
    (out / "weight_dict.pth").write_bytes(b"the user's weights")
    (out / "calib" / "notes.txt").write_text("mine")
    (out / "unrelated.txt").write_text("mine too")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert main(_run_argv(tiny_model_dir, stsb_dir, out)) == 2
    err = capsys.readouterr().err.strip().split("\n")
    assert len(err) == 1 and "was not written by bertnpu; pass --force" in err[0]
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing replaced, deleted or added


def test_run_and_sweep_out_that_is_a_file(tiny_model_dir, stsb_dir, tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(_run_argv(tiny_model_dir, stsb_dir, f)) == 2
    assert main(["sweep", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--stats", "s.npz", "--out", str(f)]) == 2
    err = capsys.readouterr().err.strip().split("\n")
    assert len(err) == 2 and all("is a file, not a folder" in line for line in err)
    assert [p.name for p in tmp_path.iterdir()] == ["file"] and f.read_text() == "x"


def test_second_run_into_a_locked_folder_is_refused(tiny_model_dir, stsb_dir, tmp_path, capsys):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", f"import time\nfrom bertnpu.project.folder import OutputFolder\n"
                               f"with OutputFolder({str(out)!r}):\n    print('locked', flush=True)\n    time.sleep(60)\n"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert main(_run_argv(tiny_model_dir, stsb_dir, out)) == 2
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    err = capsys.readouterr().err.strip().split("\n")
    assert len(err) == 1 and f"Another bertnpu process (pid {holder.pid}) is writing into" in err[0]
    assert sorted(p.name for p in out.iterdir()) == [LOCK]  # only the killed holder's stale lock


@pytest.fixture(scope="module")
def stats_file(tiny_stats, tmp_path_factory):
    return tiny_stats.save(tmp_path_factory.mktemp("stats") / "stats.npz")


def _flip_validation(stsb_dir, into):
    shutil.copytree(stsb_dir, into)
    lines = (into / "sts-dev.csv").read_text(encoding="utf-8").split("\n")
    out = []
    for line in lines:
        fields = line.split("\t")
        if len(fields) >= 7:
            fields[4] = repr(5.0 - float(fields[4]))
        out.append("\t".join(fields))
    (into / "sts-dev.csv").write_text("\n".join(out), encoding="utf-8")


def test_sweep_with_flipped_scores_gives_fresh_results_and_needs_force_for_user_files(tiny_model_dir, stsb_dir, stats_file, tmp_path, capsys):
    out = tmp_path / "sweep"
    flipped = tmp_path / "flipped"
    _flip_validation(stsb_dir, flipped)

    def sweep(data, *extra):
        argv = ["sweep", "--model", str(tiny_model_dir), "--stsb-dir", str(data), "--stats", str(stats_file), "--out", str(out),
                "--limit", "60", "--percentiles", "0.999,1.0", "--topk-ratios", "0.1", "--methods", "0", "--json", *extra]
        code = main(argv)
        captured = capsys.readouterr()
        return code, captured

    code, first = sweep(stsb_dir)
    assert code == 0
    rows = {(r["percentile"], r["topk_ratio"]): r["spearman"] for r in json.loads((out / "sweep.json").read_text())}
    code, again = sweep(flipped)
    assert code == 0
    flipped_rows = {(r["percentile"], r["topk_ratio"]): r["spearman"] for r in json.loads((out / "sweep.json").read_text())}
    # 5 - score reverses every rank: each config's fresh Spearman is exactly the negation, not the cached value
    assert flipped_rows.keys() == rows.keys()
    assert all(flipped_rows[k] == pytest.approx(-rows[k], abs=1e-12) and rows[k] != 0 for k in rows)

    (out / "sweep.csv").write_text("the user's edited table\n")  # bertnpu's file, edited: still bertnpu's to rewrite
    (out / "notes.txt").write_text("unrelated, kept")
    assert sweep(stsb_dir)[0] == 0 and (out / "notes.txt").read_text() == "unrelated, kept"
    table = (out / "sweep.csv").read_text()
    assert table != "the user's edited table\n" and "percentile" in table.split("\n")[0]

    written = json.loads((out / MARKER).read_text())["files"]
    (out / "recommended_config.json").unlink()
    del written["recommended_config.json"]
    (out / MARKER).write_text(json.dumps({"files": written}))
    (out / "recommended_config.json").write_text('{"mine": true}\n')  # a file bertnpu did not write
    code, refused = sweep(stsb_dir)
    assert code == 2 and "recommended_config.json' was not written by bertnpu; pass --force" in refused.err
    assert json.loads((out / "recommended_config.json").read_text()) == {"mine": True}
    assert sweep(stsb_dir, "--force")[0] == 0
    assert "mine" not in json.loads((out / "recommended_config.json").read_text())


@pytest.mark.parametrize("command,says", [("run", "the stages finished so far were kept in OUT (rerun the same command to resume)"),
                                          ("sweep", "the configs scored so far were kept in OUT/sweep_cache.jsonl"),
                                          ("calib", "files finished before the interrupt were kept, and no partial file was written")])
def test_interrupt_message_says_what_was_kept(command, says, monkeypatch, capsys):
    import dataclasses

    from bertnpu import cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setitem(cli.COMMANDS, command, dataclasses.replace(cli.COMMANDS[command], handler=interrupted))
    assert main([command, "--out", "OUT"]) == 130
    err = capsys.readouterr().err.strip().split("\n")
    assert len(err) == 1 and says in err[0] and "no partial output was kept" not in err[0]


def _TinyRun(**changes) -> RunConfig:  # noqa: N802
    """`run --quick` shrunk further, so two runs fit in a test."""
    changes.pop("quick")
    return RunConfig.quick(calib_count=16, validation_pairs=80, test_pairs=60, **changes)


def test_run_with_flipped_validation_scores_gives_fresh_results(tiny_model_dir, stsb_dir, tmp_path):
    from bertnpu.ui.run import run_pipeline

    out = tmp_path / "out"
    flipped = tmp_path / "flipped"
    _flip_validation(stsb_dir, flipped)
    first = run_pipeline(_TinyRun(model=str(tiny_model_dir), stsb_dir=str(stsb_dir), out=str(out), quick=True), log=lambda line: None)
    lines = []
    again = run_pipeline(_TinyRun(model=str(tiny_model_dir), stsb_dir=str(flipped), out=str(out), quick=True), log=lines.append)
    assert again["inputs"]["stsb_sha256"] != first["inputs"]["stsb_sha256"]
    assert "sweep" not in again["reused_stages"] and "evaluation" not in again["reused_stages"]

    def scores(summary, field):
        return {(r["method"], r["percentile"], r["topk_ratio"]): r.get(field) for r in summary["sweep"]["rows"]}

    compared = 0
    for field in ("spearman", "proxy_spearman"):
        old, new = scores(first, field), scores(again, field)
        for key in old:
            if old[key] is not None and new.get(key) is not None:
                assert new[key] == pytest.approx(-old[key], abs=1e-9)  # 5 - score reverses every rank
                compared += 1
    assert compared >= 1
    assert again["evaluation"]["fp32"] == first["evaluation"]["fp32"]  # the test split was not flipped
