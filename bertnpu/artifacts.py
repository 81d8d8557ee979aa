"""Atomic, never-silently-overwriting writes of files and folders, and safe reads of user files.

Temp files and folders are named ``.bertnpu-tmp-<pid>-<random>-<name>`` beside their
target, so a run killed with SIGKILL leaves recognisable leftovers; the next write into
that folder removes the ones whose process is gone.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from .errors import BertnpuError

TEMP_PREFIX = ".bertnpu-tmp-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _publish_permissions(path: Path, directory: bool) -> None:
    """Temp files are private (0600/0700); published artifacts get the usual umask-based modes."""
    mask = _umask()
    if directory:
        for root, dirs, files in os.walk(path):
            os.chmod(root, 0o777 & ~mask)
            for f in files:
                os.chmod(os.path.join(root, f), 0o666 & ~mask)
    else:
        os.chmod(path, 0o666 & ~mask)


def os_error_sentence(exc: OSError, path: str | os.PathLike) -> str:
    """One sentence for an OS error while writing ``path``: what happened and the fix."""
    where = repr(str(path))
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return f"No space left on the device while writing {where}; free some space or choose another output folder."
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"Cannot write {where} (permission denied or read-only file system); choose an output folder you can write to."
    if code in (errno.ENOTDIR, errno.EEXIST) or isinstance(exc, (NotADirectoryError, FileExistsError)):
        return f"Cannot create {where} because a part of its path is a file, not a folder; choose another output path."
    if code == errno.EISDIR:
        return f"{where} is a folder, not a file; choose a file path."
    if code == errno.ENAMETOOLONG:
        return f"The path {where} is too long for the file system; choose a shorter output path."
    return f"Could not write {where} ({exc.strerror or exc.__class__.__name__}); choose another output path."


def ensure_folder(path: str | os.PathLike) -> list[Path]:
    """Create ``path`` (and parents) as a folder, with one sentence when that is impossible.

    Returns the folders it created, deepest first, so a failed write can remove them again.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BertnpuError(f"{str(path)!r} is a file, not a folder; choose a folder path for the output.")
    created = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        created.append(probe)
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise BertnpuError(f"{str(probe)!r} is a file, not a folder; choose an output path below a folder.")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _remove_empty(created)
        raise BertnpuError(os_error_sentence(exc, path)) from None
    return created


def _remove_empty(folders: list[Path]) -> None:
    for folder in folders:  # deepest first
        try:
            folder.rmdir()
        except OSError:
            pass


def _process_start(pid: int) -> Optional[float]:
    """Start time (epoch seconds) of a live process, from /proc; None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_stale(entry: Path) -> bool:
    """A temp entry is stale when its writer process is gone (or the pid now names a younger process)."""
    try:
        pid = int(entry.name[len(TEMP_PREFIX):].split("-", 1)[0])
        mtime = entry.lstat().st_mtime
    except (ValueError, OSError):
        return False
    if pid == os.getpid():
        return False
    if not _pid_alive(pid):
        return True
    started = _process_start(pid)
    return started is not None and started > mtime + 1.0  # pid reused by a process born after the temp


def clean_stale_temps(folder: str | os.PathLike) -> list[Path]:
    """Remove temp files/folders left in ``folder`` by killed bertnpu processes; returns what was removed."""
    folder = Path(folder)
    removed = []
    try:
        entries = [e for e in folder.iterdir() if e.name.startswith(TEMP_PREFIX)]
    except OSError:
        return removed
    for entry in entries:
        if not _is_stale(entry):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
        except OSError:
            pass  # someone else removed it, or we may not: not our file to fight over
    return removed


def temp_name(target: Path, suffix: str = "") -> Path:
    """A recognisable temp path beside ``target`` (keeps the extension tools may check)."""
    return target.with_name(f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}-{target.name}{suffix}")


def _check_target(path: Path, force: bool, what: str) -> None:
    if path.is_dir() and what != "folder":
        raise BertnpuError(f"The {what} path {str(path)!r} is a folder; pass a file path instead.")
    if path.exists() and not force:
        raise BertnpuError(f"The {what} {str(path)!r} already exists; pass --force (force=True) to replace it, or choose another path.")


def check_writable(path: str | os.PathLike, force: bool, what: str = "file") -> Path:
    """Refuse to replace an existing artifact unless ``force`` is set (creates nothing)."""
    path = Path(path)
    _check_target(path, force, what)
    probe = path.parent
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise BertnpuError(f"{str(probe)!r} is a file, not a folder; choose an output path below a folder.")
    return path


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], None], *, force: bool = False, what: str = "file") -> Path:
    """Write a file through ``writer(tmp_path)`` into a temp name beside ``path``, then rename.

    An interrupt or error leaves no partial file at ``path``; OS errors (full disk,
    permissions) become one sentence.
    """
    path = check_writable(path, force, what)
    created = ensure_folder(path.parent)
    clean_stale_temps(path.parent)
    tmp_path = temp_name(path, path.suffix)
    try:
        try:
            fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.close(fd)
            writer(tmp_path)
            _publish_permissions(tmp_path, directory=False)
            os.replace(tmp_path, path)
        except OSError as exc:
            raise BertnpuError(os_error_sentence(exc, path)) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        _remove_empty(created)
        raise
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, force: bool = False, what: str = "file") -> Path:
    """Write bytes atomically."""
    return atomic_write(path, lambda p: p.write_bytes(data), force=force, what=what)


def atomic_write_text(path: str | os.PathLike, text: str, *, force: bool = False) -> Path:
    """Write text atomically (UTF-8)."""
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"), force=force)


def atomic_write_json(path: str | os.PathLike, data: Any, *, force: bool = False) -> Path:
    """Write JSON atomically with sorted keys, so equal data gives equal bytes."""
    return atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n", force=force)


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temp folder beside ``path``; on success it replaces ``path`` in one rename.

    On any error or interrupt the temp folder is removed and ``path`` is untouched.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise BertnpuError(f"{str(path)!r} is a file, not a folder; choose a folder path for the output.")
    if path.exists() and not force:
        raise BertnpuError(f"The folder {str(path)!r} already exists; pass --force (force=True) to replace it, or choose another path.")
    created = ensure_folder(path.parent)
    clean_stale_temps(path.parent)
    tmp = temp_name(path)
    try:
        tmp.mkdir(mode=0o700)
    except OSError as exc:
        _remove_empty(created)
        raise BertnpuError(os_error_sentence(exc, path)) from None
    try:
        try:
            yield tmp
            _publish_permissions(tmp, directory=True)
            if path.exists():
                old = temp_name(path, ".old")
                os.replace(path, old)
                os.replace(tmp, path)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, path)
        except OSError as exc:
            raise BertnpuError(os_error_sentence(exc, path)) from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _remove_empty(created)
        raise


def file_digest(path: str | os.PathLike) -> dict:
    """``{"size": bytes, "sha256": hex}`` of a file, for stage markers that verify what they reuse."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
    return {"size": size, "sha256": digest.hexdigest()}


def read_json(path: str | os.PathLike, what: str, fix: str, expect: type | tuple = dict) -> Any:
    """Parse a JSON file of the type ``expect``; every failure is one sentence ending in ``fix``."""
    from .schema import check_size, parse_json, read_text_file

    check_size(path, what, fix)  # size, depth, duplicate keys, huge integers: bounded before any use
    data = parse_json(read_text_file(path, what, fix), f"The {what} {str(path)!r}", fix)
    if not isinstance(data, expect):
        names = " or ".join(t.__name__ for t in (expect if isinstance(expect, tuple) else (expect,)))
        kind = {"dict": "JSON object", "list": "JSON list"}
        raise BertnpuError(
            f"The {what} {str(path)!r} holds a {kind.get(type(data).__name__, type(data).__name__)}, "
            f"not a {kind.get(names, names)}; {fix}"
        )
    return data


def path_inside(folder: str | os.PathLike, relative: str | os.PathLike, what: str, fix: str) -> Path:
    """``folder / relative`` with symlinks resolved, refused when it points outside ``folder``."""
    folder = Path(folder)
    root = folder.resolve()
    target = (folder / relative).resolve()
    if target != root and root not in target.parents:
        raise BertnpuError(f"The {what} {str(relative)!r} points outside {str(folder)!r} (to {str(target)!r}); {fix}")
    return target
