"""Calibration folders under fuzzing: manifest.json, npy_files.txt and the .npy files themselves.

Property: ``load_calibration_set`` returns exactly the arrays the folder names (float32,
[1, seq_len, hidden], finite) or raises one BertnpuError sentence; never another exception.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from bertnpu.data.calibration import load_calibration_set
from bertnpu.errors import BertnpuError
from fuzz_json import assert_one_sentence, mutated, paths_of, strict_loads

HIDDEN = 8
_RNG = np.random.default_rng(0)
ARRAYS = [(_RNG.standard_normal((1, n, HIDDEN)) * 2).astype(np.float32) for n in (3, 5, 4)]
NAMES = [f"calib_{i:05d}.npy" for i in range(len(ARRAYS))]
MANIFEST = {"schema_version": 1, "tool": "bertnpu 0.3.0", "model": "tiny", "embedding_sha256": "0" * 64, "hidden_size": HIDDEN,
            "source": "sts-dev.csv", "count": 3, "seed": 0, "split": "validation", "column": "sentence1", "strategy": "random", "max_length": None,
            "samples": [{"file": n, "sentence": f"sentence {i}", "tokens": a.shape[1], "pair_score": 2.5} for i, (n, a) in enumerate(zip(NAMES, ARRAYS))]}
ROOT = Path(tempfile.mkdtemp(prefix="bertnpu-fuzz-calib-"))
FIELDS = {str(p[-1]) for p in paths_of(MANIFEST)} | {"manifest", "schema_version"}


def _fresh(name: str) -> Path:
    folder = ROOT / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for n, a in zip(NAMES, ARRAYS):
        np.save(folder / n, a)
    return folder


def _assert_valid(cs, expected_files: list[Path]) -> None:
    assert [Path(f).resolve() for f in cs.files] == [f.resolve() for f in expected_files]
    for f, a in zip(expected_files, cs.arrays):
        assert a.dtype == np.float32 and a.ndim == 3 and a.shape[0] == 1 and a.shape[2] == HIDDEN and np.isfinite(a).all()
        np.testing.assert_array_equal(a, np.load(f))


@given(mutated(MANIFEST))
def test_a_mutated_manifest_loads_the_files_it_names_or_is_one_sentence(data):
    folder = _fresh("manifest")
    (folder / "manifest.json").write_bytes(data)
    try:
        cs = load_calibration_set(folder)
    except BertnpuError as exc:
        assert_one_sentence(exc, FIELDS | {"manifest.json", "calib_", "Calibration"})
        return
    samples = strict_loads(data)["samples"]
    _assert_valid(cs, [folder / s["file"] for s in samples])
    assert all(s.get("tokens", a.shape[1]) == a.shape[1] for s, a in zip(samples, cs.arrays))  # the manifest agrees with the files
    assert cs.sentences == [s["sentence"] for s in samples]


_LINE = st.sampled_from(NAMES + ["missing.npy", "../outside.npy", "/nonexistent/x.npy", " ", "a\x00b", "x" * 5000, "."]) | st.text(max_size=20)


@given(st.lists(_LINE, max_size=6), st.sampled_from(["\n", "\r\n"]))
def test_any_file_list_loads_the_files_it_names_or_is_one_sentence(lines, newline):
    folder = _fresh("listing")
    (folder / "npy_files.txt").write_text(newline.join(lines), encoding="utf-8")
    try:
        cs = load_calibration_set(folder / "npy_files.txt")
    except BertnpuError as exc:
        assert_one_sentence(exc, ["npy_files.txt", "Calibration", "calibration"])
        return
    named = [line.strip() for line in newline.join(lines).splitlines() if line.strip()]
    _assert_valid(cs, [folder / n for n in named])


_DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.int32, np.uint8, np.complex64, np.bool_])
_ARRAYS = _DTYPES.flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=4, max_side=5)))


def _npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


@st.composite
def npy_files(draw) -> bytes:
    """An arbitrary array, a valid one with NaN/inf, or a valid file with its header or data damaged."""
    kind = draw(st.sampled_from(["array", "special", "damaged", "header"]))
    if kind == "array":
        return _npy_bytes(draw(_ARRAYS))
    good = ARRAYS[0].copy()
    if kind == "special":
        good[0, draw(st.integers(0, 2)), draw(st.integers(0, HIDDEN - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf, 3e38]))
        return _npy_bytes(good)
    data = _npy_bytes(good)
    if kind == "damaged":
        at = draw(st.integers(0, len(data) - 1))
        return data[:at] + draw(st.binary(max_size=8)) + data[at + draw(st.integers(0, 8)):]
    header_end = data.index(b"\n") + 1  # rewrite the header dict: shapes claiming terabytes, other dtypes, objects
    header = draw(st.sampled_from(["{'descr': '<f4', 'fortran_order': False, 'shape': (1, 100000000000, 8), }",
                                   "{'descr': '|O', 'fortran_order': False, 'shape': (1, 3, 8), }",
                                   "{'descr': '<f4', 'fortran_order': True, 'shape': (1, 3, 8), }",
                                   "{'descr': '<f4', 'fortran_order': False, 'shape': (1, -3, 8), }",
                                   "{'descr': 'zz', 'fortran_order': False, 'shape': (1, 3, 8), }",
                                   "{'descr': '<f4', 'shape': (1, 3, 8), }", "[1, 2]", "{" * 200])).encode()
    body = data[header_end:]
    header = header + b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + body


@given(npy_files())
def test_any_npy_file_is_a_valid_embedding_or_one_sentence(data):
    folder = _fresh("npy")
    (folder / NAMES[1]).write_bytes(data)
    try:
        cs = load_calibration_set(folder)  # no manifest: every .npy in the folder
    except BertnpuError as exc:
        assert_one_sentence(exc, [NAMES[1], "hidden size"])
        return
    _assert_valid(cs, [folder / n for n in NAMES])
