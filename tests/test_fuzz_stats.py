"""stats.npz under fuzzing: its JSON metadata, its arrays and its bytes.

Property: ``load_stats`` returns statistics equal to what the file holds for exactly the sites its
metadata lists, or raises one BertnpuError sentence; never another exception.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from bertnpu.errors import BertnpuError
from bertnpu.quant.observers import SiteObserver, bootstrap_weights
from bertnpu.quant.sites import list_sites
from bertnpu.quant.stats import ActivationStats, load_stats
from fuzz_json import assert_one_sentence, mutated, paths_of

ROOT = Path(tempfile.mkdtemp(prefix="bertnpu-fuzz-stats-"))


def _valid_stats() -> ActivationStats:
    """Real observers of a one-layer model's sites, fed with random values (built once for the module)."""
    sites = list_sites(1, has_pooler=False)[:3]  # three sites keep each fuzzed file small (a histogram is 2560 bins)
    gen = torch.Generator().manual_seed(0)
    observers = {}
    for s in sites:
        obs = SiteObserver(4)
        values = torch.randn(30, 4, generator=gen) * 3
        obs.update(values, torch.full((30,), 2), torch.arange(30) % 3, bootstrap_weights(np.arange(3)))
        observers[s.name] = obs
    meta = {"schema_version": 1, "tool": "bertnpu 0.3.0", "model": "tiny", "model_sha256": "a" * 64, "calibration_sha256": "b" * 64,
            "samples": 3, "sites": [s.__dict__ for s in sites]}
    return ActivationStats(sites, observers, meta)


STATS = _valid_stats()
VALID = ROOT / "valid.npz"
STATS.save(VALID)
with np.load(VALID) as _data:
    CONTENT = {k: _data[k] for k in _data.files}
META = json.loads(CONTENT["__meta__"].tobytes())
FIELDS = {str(p[-1]) for p in paths_of(META)} | {"stats file", "metadata", "site", ".npz"}


def _npz(content: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **content)
    return buf.getvalue()


def _check(data: bytes) -> None:
    path = ROOT / "fuzzed.npz"
    path.write_bytes(data)
    try:
        stats = load_stats(path)
    except BertnpuError as exc:
        assert_one_sentence(exc, FIELDS | {"fuzzed.npz"})
        return
    with np.load(path) as archive:  # what the file holds, read independently
        meta = json.loads(archive["__meta__"].tobytes())
        assert [s.__dict__ for s in stats.sites] == meta["sites"]
        for site in stats.sites:
            for key, value in stats[site.name].to_arrays().items():
                np.testing.assert_array_equal(value, archive[f"{site.name}/{key}"])
            assert stats[site.name].count >= 0 and np.all(np.asarray(stats[site.name].channel_absmax) >= 0)


@given(mutated(META))
def test_mutated_metadata_is_read_as_written_or_one_sentence(meta_bytes):
    _check(_npz({**CONTENT, "__meta__": np.frombuffer(meta_bytes, dtype=np.uint8)}))


_KEYS = sorted(k for k in CONTENT if k != "__meta__")
_ANY_ARRAY = st.sampled_from([np.float64, np.float32, np.int64, np.uint8, np.bool_]).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6)))


@st.composite
def array_faults(draw) -> bytes:
    content = dict(CONTENT)
    key = draw(st.sampled_from(_KEYS))
    kind = draw(st.sampled_from(["drop", "replace", "special", "negative", "extra"]))
    if kind == "drop":
        del content[key]
    elif kind == "replace":
        content[key] = draw(_ANY_ARRAY)
    elif kind == "special":
        a = content[key].astype(np.float64).copy()
        if a.size:
            a.flat[draw(st.integers(0, a.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, -1.0, 0.5, 1e300]))
        content[key] = a.astype(content[key].dtype)
    elif kind == "negative":
        content[key] = -np.abs(content[key]) - 1
    else:
        content[draw(st.text(max_size=10))] = draw(_ANY_ARRAY)
    return _npz(content)


@given(array_faults())
def test_damaged_arrays_are_refused_in_one_sentence(data):
    _check(data)


@st.composite
def byte_faults(draw) -> bytes:
    data = _npz(CONTENT)
    kind = draw(st.sampled_from(["truncate", "flip", "random", "compressed_bomb"]))
    if kind == "truncate":
        return data[: draw(st.integers(0, len(data) - 1))]
    if kind == "flip":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + bytes([data[at] ^ draw(st.integers(1, 255))]) + data[at + 1:]
    if kind == "random":
        return draw(st.binary(max_size=200))
    buf = io.BytesIO()  # a member that claims to inflate to 4 GB from a few MB: refused before np.load inflates it
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        info = zipfile.ZipInfo("__meta__.npy")
        zf.writestr(info, _npz({"__meta__": CONTENT["__meta__"]})[:10])
    raw = bytearray(buf.getvalue())
    # patch the declared uncompressed size in the central directory: zipfile trusts it for infolist()
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 24: cd + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    return bytes(raw)


@given(byte_faults())
def test_damaged_bytes_are_refused_in_one_sentence(data):
    _check(data)


def test_the_valid_file_loads_unchanged():
    stats = load_stats(VALID)
    assert [s.name for s in stats.sites] == [s.name for s in STATS.sites]
    for name, obs in STATS.observers.items():
        for key, value in obs.to_arrays().items():
            np.testing.assert_array_equal(stats[name].to_arrays()[key], value)
