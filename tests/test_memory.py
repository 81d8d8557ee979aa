"""bertnpu.memory: resident memory now and at peak, against the kernel's other accounting and a known allocation."""

import re
import resource
import sys

import numpy as np
import pytest

from bertnpu.memory import memory_line, peak_rss_bytes, release_free_memory, rss_bytes

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")


@linux
def test_rss_grows_by_what_is_touched_and_peak_matches_getrusage():
    before = rss_bytes()
    block = np.ones(200 * 2**20, dtype=np.uint8)  # 200 MiB, every page written
    grown = rss_bytes() - before
    assert 190 * 2**20 <= grown <= 260 * 2**20
    peak = peak_rss_bytes()
    assert peak >= rss_bytes()
    # getrusage's ru_maxrss (KiB on Linux) is the same high-water mark, read another way
    assert abs(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - peak) <= 8 * 2**20
    del block


@linux
def test_memory_line_and_trim():
    line = memory_line()
    now, peak = map(float, re.fullmatch(r"memory (\d+\.\d\d) GB in use, peak (\d+\.\d\d) GB", line).groups())
    assert 0 < now <= peak
    assert abs(now - rss_bytes() / 1e9) < 0.05
    import platform

    assert release_free_memory() == (platform.libc_ver()[0] == "glibc")  # malloc_trim exists in glibc only
