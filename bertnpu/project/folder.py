"""An output folder that knows what bertnpu wrote into it.

``.bertnpu-written.json`` lists every file bertnpu wrote (size and SHA-256). A file that is
not listed belongs to the user: it is never replaced or deleted without ``force``. A listed
file stays bertnpu's to rewrite, but a reused result is verified against its recorded size and
hash, so a truncated or edited file is recomputed instead of trusted. ``.bertnpu.lock`` keeps a second
process from writing into the same folder at the same time.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Optional

from ..artifacts import TEMP_PREFIX, _pid_alive, _process_start, atomic_write_json, ensure_folder, file_digest
from ..errors import BertnpuError

MARKER = ".bertnpu-written.json"
LOCK = ".bertnpu.lock"
_OWN_NAMES = (MARKER, LOCK)


class OutputFolder:
    """Use as a context manager: it takes the lock on enter and releases it on exit.

    Example:
        >>> with OutputFolder("out") as folder:
        ...     folder.check_free("summary.json")       # refuses a user's file without force
        ...     atomic_write_json(folder.path / "summary.json", {}, force=True)
        ...     folder.record("summary.json")
    """

    def __init__(self, path: str | os.PathLike, *, force: bool = False, option: str = "--out"):
        self.path = Path(path)
        self.force = force
        self.option = option
        self.written: dict[str, dict] = {}
        self.pending: list[str] = []  # claimed before writing: owned even when a kill stops the writer half-way
        self._locked = False
        self._created: list[Path] = []

    def preflight(self, rels: Iterable[str]) -> None:
        """Before any work: refuse an --out that is a file, or foreign files at ``rels`` (without force); writes nothing."""
        if self.path.exists() and not self.path.is_dir():
            raise BertnpuError(f"{self.option} {str(self.path)!r} is a file, not a folder; choose a folder for the output.")
        if self.path.is_dir():
            self.written, self.pending = self._read_marker()
            self.check_free(rels)

    # ---- lock -------------------------------------------------------------------------------
    def __enter__(self) -> "OutputFolder":
        if self.path.exists() and not self.path.is_dir():
            raise BertnpuError(f"{self.option} {str(self.path)!r} is a file, not a folder; choose a folder for the output.")
        self._created = ensure_folder(self.path)
        self._lock()
        try:
            self.written, self.pending = self._read_marker()
        except BaseException:
            self._unlock()
            raise
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._unlock()
        if exc_type is not None and self._created:
            self._remove_if_untouched()

    def _remove_if_untouched(self) -> None:
        """A run that failed before writing anything leaves no folder behind (only ones this run created)."""
        entries = list(self.path.iterdir()) if self.path.is_dir() else []
        if all(e.name == MARKER for e in entries):
            for e in entries:
                e.unlink(missing_ok=True)
            for folder in self._created:  # deepest first
                try:
                    folder.rmdir()
                except OSError:
                    break

    def _lock(self) -> None:
        lock = self.path / LOCK
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                if self._lock_is_live(lock):
                    holder = lock.read_text(errors="replace").split()[0] if lock.exists() else "?"
                    raise BertnpuError(
                        f"Another bertnpu process (pid {holder}) is writing into {str(self.path)!r}; wait for it to finish, or choose another {self.option}."
                    ) from None
                lock.unlink(missing_ok=True)  # left by a killed run
                continue
            except OSError as exc:
                from ..artifacts import os_error_sentence

                raise BertnpuError(os_error_sentence(exc, lock)) from None
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()}\n")
            self._locked = True
            return
        raise BertnpuError(f"Could not take the lock {str(lock)!r}; remove it if no bertnpu process is running, then retry.")

    @staticmethod
    def _lock_is_live(lock: Path) -> bool:
        try:
            pid = int(lock.read_text().split()[0])
            mtime = lock.stat().st_mtime
        except (OSError, ValueError, IndexError):
            return True  # being written this instant, or not ours to judge: treat as held
        if pid == os.getpid() or not _pid_alive(pid):
            return False
        started = _process_start(pid)
        return started is None or started <= mtime + 1.0

    def _unlock(self) -> None:
        if self._locked:
            (self.path / LOCK).unlink(missing_ok=True)
            self._locked = False

    # ---- record -------------------------------------------------------------------------------
    def _read_marker(self) -> tuple[dict[str, dict], list[str]]:
        marker = self.path / MARKER
        if not marker.is_file():
            return {}, []
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
            files, pending = data["files"], data.get("pending", [])
            assert isinstance(files, dict) and all(isinstance(v, dict) for v in files.values())
            assert isinstance(pending, list) and all(isinstance(p, str) for p in pending)
            return files, pending
        except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError):
            return {}, []  # a damaged record owns nothing: every file is then treated as the user's

    def _save_marker(self) -> None:
        atomic_write_json(self.path / MARKER, {"files": self.written, "pending": sorted(set(self.pending))}, force=True)

    def claim(self, *rels: str) -> None:
        """Before writing ``rels``: refuse foreign files there (without force), then mark them bertnpu's.

        A run killed half-way leaves its claims, so the next run may resume into them.
        """
        self.check_free(rels)
        self.pending.extend(r for r in rels if r not in self.pending)
        self._save_marker()

    def _pending_covers(self, rel: str) -> bool:
        return any(rel == p or rel.startswith(p.rstrip("/") + "/") for p in self.pending)

    def _files_under(self, rel: str) -> list[str]:
        target = self.path / rel
        if target.is_dir() and not target.is_symlink():
            return sorted(str(p.relative_to(self.path)) for p in target.rglob("*") if p.is_file() or p.is_symlink())
        return [rel] if target.exists() or target.is_symlink() else []

    def record(self, *rels: str) -> None:
        """Record files (or every file of folders) as written by bertnpu, with size and hash."""
        for rel in rels:
            prefix = rel.rstrip("/") + "/"
            for key in [k for k in self.written if k.startswith(prefix)]:
                del self.written[key]  # a replaced folder forgets its old files
            for f in self._files_under(rel):
                self.written[f] = file_digest(self.path / f)
            if rel in self.pending:
                self.pending.remove(rel)
        self._save_marker()

    def settle(self) -> None:
        """After a finished run: record every claimed path that exists and drop the claims, so a
        file a user puts there later is theirs again."""
        existing = [r for r in self.pending if (self.path / r).exists()]
        self.pending = []
        self.record(*existing)

    def digests(self, rels: Iterable[str]) -> dict[str, dict]:
        """``{file: {size, sha256}}`` of ``rels`` (folders expanded to their files), for a stage marker."""
        return {f: file_digest(self.path / f) for rel in rels for f in self._files_under(rel)}

    def differs(self, recorded: dict[str, dict]) -> Optional[str]:
        """Why the files now differ from ``recorded`` (from :meth:`digests`); None when every file is as recorded."""
        for f, rec in recorded.items():
            p = self.path / f
            if not p.is_file():
                return f"{f} is missing"
            now = file_digest(p)
            if now["size"] != rec.get("size"):
                return f"{f} changed size ({rec.get('size')} -> {now['size']} bytes)"
            if now["sha256"] != rec.get("sha256"):
                return f"{f} changed content (SHA-256 differs)"
        return None

    def forget(self, *rels: str) -> None:
        for rel in rels:
            prefix = rel.rstrip("/") + "/"
            for key in [k for k in self.written if k == rel or k.startswith(prefix)]:
                del self.written[key]
        self._save_marker()

    def changed(self, rel: str) -> Optional[str]:
        """Why ``rel`` (a file, or a folder's files) is not as bertnpu wrote it; None when it is."""
        target = self.path / rel
        recorded = [k for k in self.written if k == rel or k.startswith(rel.rstrip("/") + "/")]
        if not recorded:
            return f"{rel} was not written by bertnpu" if target.exists() else f"{rel} is missing"
        for key in recorded:
            f = self.path / key
            if not f.is_file():
                return f"{key} is missing"
            if f.is_symlink():
                return f"{key} was replaced by a link"
            now = file_digest(f)
            if now["size"] != self.written[key]["size"]:
                return f"{key} changed size ({self.written[key]['size']} -> {now['size']} bytes)"
            if now["sha256"] != self.written[key]["sha256"]:
                return f"{key} changed content (SHA-256 differs)"
        extra = set(self._files_under(rel)) - set(recorded)
        if extra:
            return f"{sorted(extra)[0]} was added by someone else"
        return None

    def foreign(self, rel: str) -> list[str]:
        """Files at ``rel`` that bertnpu did not write (not in its record, not claimed by a run)."""
        out = []
        for f in self._files_under(rel):
            name = Path(f).name
            if name in _OWN_NAMES or name.startswith(TEMP_PREFIX) or self._pending_covers(f):
                continue
            if f not in self.written:
                out.append(f)
        return out

    def check_free(self, rels: Iterable[str]) -> None:
        """Refuse (without force) when writing ``rels`` would replace a file bertnpu did not write."""
        if self.force:
            return
        for rel in [rels] if isinstance(rels, str) else rels:
            theirs = self.foreign(rel)
            if theirs:
                raise BertnpuError(
                    f"{str(self.path / theirs[0])!r} was not written by bertnpu; "
                    f"pass --force to replace it, or choose another {self.option}."
                )

    def remove(self, rel: str) -> None:
        """Delete a file or folder bertnpu wrote; anything else in it stays (and is refused without force)."""
        self.check_free(rel)
        target = self.path / rel
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        self.forget(rel)
