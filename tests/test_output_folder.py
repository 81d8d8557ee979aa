"""The output folder's record of what bertnpu wrote, its refusal to touch the rest, and its lock."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from bertnpu.artifacts import atomic_write_text
from bertnpu.errors import BertnpuError
from bertnpu.project.folder import LOCK, MARKER, OutputFolder


def test_record_holds_size_and_sha256(tmp_path):
    with OutputFolder(tmp_path) as folder:
        atomic_write_text(tmp_path / "a.txt", "hello\n")
        (tmp_path / "calib").mkdir()
        (tmp_path / "calib" / "x.npy").write_bytes(b"123")
        folder.record("a.txt", "calib")
    files = json.loads((tmp_path / MARKER).read_text())["files"]
    assert files == {"a.txt": {"size": 6, "sha256": hashlib.sha256(b"hello\n").hexdigest()},
                     "calib/x.npy": {"size": 3, "sha256": hashlib.sha256(b"123").hexdigest()}}
    assert not (tmp_path / LOCK).exists()  # released


def test_user_files_are_refused_without_force_and_never_deleted(tmp_path):
    (tmp_path / "summary.json").write_text("the user's own\n")
    (tmp_path / "calib").mkdir()
    (tmp_path / "calib" / "notes.txt").write_text("mine")
    with OutputFolder(tmp_path) as folder:
        with pytest.raises(BertnpuError, match="summary.json' was not written by bertnpu; pass --force"):
            folder.check_free("summary.json")
        with pytest.raises(BertnpuError, match="notes.txt' was not written by bertnpu"):
            folder.remove("calib")
        folder.check_free("report.html")  # absent: free
    assert (tmp_path / "summary.json").read_text() == "the user's own\n"
    assert (tmp_path / "calib" / "notes.txt").read_text() == "mine"
    with OutputFolder(tmp_path, force=True) as folder:
        folder.check_free("summary.json")


def test_own_files_stay_bertnpus_and_edits_are_detected(tmp_path):
    with OutputFolder(tmp_path) as folder:
        (tmp_path / "w.pth").write_bytes(b"x" * 100)
        folder.record("w.pth")
    with OutputFolder(tmp_path) as folder:
        folder.check_free("w.pth")
        assert folder.changed("w.pth") is None
        recorded = folder.digests(["w.pth"])
    with open(tmp_path / "w.pth", "r+b") as fh:
        fh.truncate(10)
    with OutputFolder(tmp_path) as folder:
        folder.check_free("w.pth")  # still bertnpu's file to rewrite ...
        assert folder.changed("w.pth") == "w.pth changed size (100 -> 10 bytes)"  # ... but not to trust
        assert folder.differs(recorded) == "w.pth changed size (100 -> 10 bytes)"
    (tmp_path / "w.pth").write_bytes(b"y" * 100)
    with OutputFolder(tmp_path) as folder:
        assert folder.changed("w.pth") == "w.pth changed content (SHA-256 differs)"
        assert folder.differs(recorded) == "w.pth changed content (SHA-256 differs)"
    (tmp_path / "w.pth").unlink()
    with OutputFolder(tmp_path) as folder:
        assert folder.changed("w.pth") == "w.pth is missing" == folder.differs(recorded)


def test_a_damaged_record_owns_nothing(tmp_path):
    (tmp_path / "a.txt").write_text("a")
    (tmp_path / MARKER).write_text('{"files": {"a.txt": ')
    with OutputFolder(tmp_path) as folder:
        assert folder.foreign("a.txt") == ["a.txt"]


def test_second_process_is_refused_while_the_first_holds_the_lock(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import time\nfrom bertnpu.project.folder import OutputFolder\nwith OutputFolder({str(tmp_path)!r}):\n"
         "    print('locked', flush=True)\n    time.sleep(60)\n"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(BertnpuError, match=f"Another bertnpu process \\(pid {holder.pid}\\) is writing into"):
            with OutputFolder(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    with OutputFolder(tmp_path):  # the killed holder's lock is stale: taken over
        assert (tmp_path / LOCK).read_text().strip() == str(os.getpid())


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(BertnpuError, match="--out '.*f' is a file, not a folder"):
        with OutputFolder(tmp_path / "f"):
            pass


def test_claimed_files_stay_bertnpus_after_a_kill(tmp_path):
    with OutputFolder(tmp_path) as folder:
        folder.claim("sweep")
        (tmp_path / "sweep").mkdir()
        (tmp_path / "sweep" / "sweep_cache.jsonl").write_text('{"key": "a"}\n')  # then the run is killed
    with OutputFolder(tmp_path) as folder:
        folder.check_free("sweep")  # resumable: the half-written cache is bertnpu's own
        folder.record("sweep")
        assert folder.pending == [] and list(folder.written) == ["sweep/sweep_cache.jsonl"]
    (tmp_path / "sweep" / "notes.txt").write_text("user")
    with OutputFolder(tmp_path) as folder:
        with pytest.raises(BertnpuError, match="notes.txt' was not written by bertnpu"):
            folder.claim("sweep")


def test_a_failed_first_run_leaves_no_folder_and_preflight_writes_nothing(tmp_path):
    out = tmp_path / "new" / "run"
    with pytest.raises(BertnpuError, match="bad model"):
        with OutputFolder(out) as folder:
            folder.claim("summary.json")
            raise BertnpuError("bad model")
    assert list(tmp_path.iterdir()) == []
    out.mkdir(parents=True)
    (out / "sweep.csv").write_text("user")
    with pytest.raises(BertnpuError, match="sweep.csv' was not written by bertnpu"):
        OutputFolder(out).preflight(["sweep.csv"])
    assert [p.name for p in out.iterdir()] == ["sweep.csv"]
