"""Atomic writes, stale temps after a kill, one sentence for OS errors, safe reads of user files."""

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bertnpu.artifacts import (TEMP_PREFIX, atomic_directory, atomic_write, atomic_write_json, clean_stale_temps, file_digest,
                               os_error_sentence, path_inside, read_json)
from bertnpu.errors import BertnpuError


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_failed_write_leaves_nothing(tmp_path):
    def boom(p: Path):
        p.write_text("half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "new" / "deeper" / "a.json", boom)
    assert list(tmp_path.iterdir()) == []  # no file, no temp, no folder made for it


def test_existing_file_needs_force(tmp_path):
    target = tmp_path / "a.json"
    target.write_text("user's own\n")
    with pytest.raises(BertnpuError, match="already exists; pass --force"):
        atomic_write_json(target, {"x": 1})
    assert target.read_text() == "user's own\n"
    atomic_write_json(target, {"x": 1}, force=True)
    assert json.loads(target.read_text()) == {"x": 1}


def test_temp_of_a_sigkilled_writer_is_removed_by_the_next_write(tmp_path):
    script = (
        "import time, sys\n"
        "from bertnpu.artifacts import atomic_write\n"
        "def slow(p):\n"
        "    p.write_text('partial')\n"
        "    print('writing', flush=True)\n"
        "    time.sleep(60)\n"
        f"atomic_write({str(tmp_path / 'out.txt')!r}, slow)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(f"{TEMP_PREFIX}{proc.pid}-") and left[0].endswith("out.txt.txt")
    clean_stale_temps(tmp_path)  # the writer is alive: its temp stays
    assert [p.name for p in tmp_path.iterdir()] == left
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    assert [p.name for p in tmp_path.iterdir()] == left  # SIGKILL runs no cleanup
    atomic_write_json(tmp_path / "other.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.json"]


def test_stale_temp_folders_are_removed_and_other_files_kept(tmp_path):
    dead = _dead_pid()
    (tmp_path / f"{TEMP_PREFIX}{dead}-0000-calib").mkdir()
    (tmp_path / f"{TEMP_PREFIX}{dead}-0000-calib" / "calib_00000.npy").write_bytes(b"x")
    (tmp_path / f"{TEMP_PREFIX}{os.getpid()}-0000-mine").write_text("in use")
    (tmp_path / ".hidden-user-file").write_text("keep")
    (tmp_path / f"{TEMP_PREFIX}notapid-x").write_text("keep: not a name bertnpu makes")
    with atomic_directory(tmp_path / "calib") as tmp:
        (tmp / "a.txt").write_text("a")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f"{TEMP_PREFIX}{os.getpid()}-0000-mine", ".hidden-user-file", f"{TEMP_PREFIX}notapid-x", "calib"])
    assert (tmp_path / "calib" / "a.txt").read_text() == "a"


@pytest.mark.parametrize("code,phrase", [(errno.ENOSPC, "No space left"), (errno.EACCES, "permission denied"),
                                         (errno.EROFS, "read-only"), (errno.ENOTDIR, "is a file, not a folder")])
def test_os_errors_become_one_sentence(tmp_path, code, phrase):
    def fail(p: Path):
        raise OSError(code, os.strerror(code))

    with pytest.raises(BertnpuError, match=phrase) as info:
        atomic_write(tmp_path / "sub" / "f.bin", fail)
    assert "\n" not in str(info.value) and str(info.value).endswith(".")
    assert list(tmp_path.iterdir()) == []
    assert os_error_sentence(OSError(code, "x"), "p").count(";") == 1


def test_output_below_a_file_is_refused_before_writing(tmp_path):
    (tmp_path / "f").write_text("user")
    with pytest.raises(BertnpuError, match="is a file, not a folder"):
        atomic_write_json(tmp_path / "f" / "x" / "a.json", {})
    with pytest.raises(BertnpuError, match="is a file, not a folder"):
        with atomic_directory(tmp_path / "f" / "d"):
            pass
    assert [p.name for p in tmp_path.iterdir()] == ["f"]


def test_read_json_one_sentence_per_fault(tmp_path):
    f = tmp_path / "c.json"
    cases = [(b"\x80\xff", "not UTF-8 text \\(bad byte on line 1\\)"), (b'{"a":\n', "not valid JSON .* line 2"), (b"[1]", "holds a JSON list, not a JSON object")]
    for data, phrase in cases:
        f.write_bytes(data)
        with pytest.raises(BertnpuError, match=phrase):
            read_json(f, "config", "fix it.")
    with pytest.raises(BertnpuError, match="is a folder"):
        read_json(tmp_path, "config", "fix it.")
    f.write_text('{"a": 1}')
    assert read_json(f, "config", "fix it.") == {"a": 1}


def test_path_inside_follows_symlinks(tmp_path):
    inner = tmp_path / "in"
    inner.mkdir()
    (inner / "ok.txt").write_text("ok")
    (tmp_path / "secret").write_text("s")
    (inner / "link").symlink_to(tmp_path / "secret")
    assert path_inside(inner, "ok.txt", "file", "fix.") == (inner / "ok.txt").resolve()
    for bad in ("../secret", "link", str(tmp_path / "secret")):
        with pytest.raises(BertnpuError, match="points outside"):
            path_inside(inner, bad, "file", "fix.")


def test_file_digest_matches_hashlib(tmp_path):
    import hashlib

    data = os.urandom(3 << 20)
    (tmp_path / "b").write_bytes(data)
    assert file_digest(tmp_path / "b") == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
