"""The memory this process uses: resident set size now and at its peak, read from ``/proc/self/status``.

``bertnpu run`` prints it at the end of every stage, so a user sees which stage needs how much
before a bigger model runs out of memory. Linux only: elsewhere the figures are ``None``.
"""

from __future__ import annotations

from typing import Optional


def _status_kib(field: str) -> Optional[int]:
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1])  # "VmRSS:   123456 kB"
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_bytes() -> Optional[int]:
    """Resident set size of this process now (bytes), or None where /proc is missing."""
    kib = _status_kib("VmRSS")
    return None if kib is None else kib * 1024


def peak_rss_bytes() -> Optional[int]:
    """The largest resident set size this process has had (bytes; ``VmHWM``), or None where /proc is missing."""
    kib = _status_kib("VmHWM")
    return None if kib is None else kib * 1024


def memory_line() -> str:
    """``memory 1.23 GB in use, peak 2.34 GB`` (GB = 10^9 bytes), or ``memory: unknown`` off Linux.

    Example:
        >>> memory_line()  # doctest: +SKIP
        'memory 1.23 GB in use, peak 2.34 GB'
    """
    now, peak = rss_bytes(), peak_rss_bytes()
    if now is None or peak is None:
        return "memory: unknown (no /proc/self/status)"
    return f"memory {now / 1e9:.2f} GB in use, peak {peak / 1e9:.2f} GB"


def release_free_memory() -> bool:
    """Hand the C heap's free pages back to the system (glibc ``malloc_trim``); False where that is not available.

    Why: tensors of many shapes (batches of every padded length, candidate after candidate) leave
    free pages inside the heap that glibc keeps (0.1 GB after a sweep candidate on a 4-layer
    BERT-base-size model). Trimming changes no value, only what the process keeps.
    """
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return False
    trim.argtypes = [ctypes.c_size_t]
    trim(0)
    return True
