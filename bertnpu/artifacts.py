"""Atomic, never-silently-overwriting writes of files and folders."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import BertnpuError


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


def check_writable(path: str | os.PathLike, force: bool, what: str = "file") -> Path:
    """Refuse to replace an existing artifact unless ``force`` is set."""
    path = Path(path)
    if path.exists() and not force:
        raise BertnpuError(f"The {what} {str(path)!r} already exists; pass --force (force=True) to replace it, or choose another path.")
    if not path.parent.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
    return path


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], None], *, force: bool = False, what: str = "file") -> Path:
    """Write a file through ``writer(tmp_path)`` into a temp name beside ``path``, then rename.

    An interrupt or error leaves no partial file at ``path``.
    """
    path = check_writable(path, force, what)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".tmp{path.suffix}", dir=path.parent)  # keep the extension tools may check
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        writer(tmp_path)
        _publish_permissions(tmp_path, directory=False)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    return path


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
    if path.exists() and not force:
        raise BertnpuError(f"The folder {str(path)!r} already exists; pass --force (force=True) to replace it, or choose another path.")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        _publish_permissions(tmp, directory=True)
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
