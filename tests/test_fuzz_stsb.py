"""STS-B csv files under fuzzing: pairs exactly as the file's lines say, or one sentence."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

from hypothesis import given, strategies as st

from bertnpu.data.stsb import read_stsb_file
from bertnpu.errors import BertnpuError
from fuzz_json import assert_one_sentence

ROOT = Path(tempfile.mkdtemp(prefix="bertnpu-fuzz-stsb-"))
_SCORE = st.sampled_from(["0", "5.000", "2.5", "-0", "nan", "inf", "-1", "5.0001", "1e9", "", "x", "1_0", "0x1", " 3 "]) | st.floats().map(str)
_TEXT = st.text(alphabet=st.characters(blacklist_characters="\t\n", blacklist_categories=("Cs",)), max_size=15)


@st.composite
def stsb_lines(draw) -> str:
    fields = ["main-captions", "MSRvid", "2012test", f"{draw(st.integers(0, 9999)):04d}", draw(_SCORE), draw(_TEXT), draw(_TEXT)]
    fields += draw(st.lists(_TEXT, max_size=2))
    if draw(st.integers(0, 9)) == 0:
        fields = fields[: draw(st.integers(0, 6))]
    return "\t".join(fields) + draw(st.sampled_from(["", "\r"]))


@st.composite
def stsb_files(draw) -> bytes:
    text = "\n".join(draw(st.lists(stsb_lines(), max_size=6))) + draw(st.sampled_from(["", "\n"]))
    data = text.encode("utf-8")
    if draw(st.integers(0, 5)) == 0:
        at = draw(st.integers(0, len(data)))
        data = data[:at] + b"\xff\xfe" + data[at:]
    return data


@given(stsb_files())
def test_a_fuzzed_stsb_file_is_read_as_written_or_one_sentence(data):
    path = ROOT / "sts-dev.csv"
    path.write_bytes(data)
    try:
        pairs = read_stsb_file(path, "validation")
    except BertnpuError as exc:
        assert_one_sentence(exc, ["sts-dev.csv"])
        return
    lines = data.decode("utf-8").split("\n")
    if lines[-1] == "":
        lines.pop()
    fields = [line.rstrip("\r").split("\t") for line in lines]
    assert pairs.sentence1 == [f[5] for f in fields] and pairs.sentence2 == [f[6] for f in fields]
    assert [float(f[4]) for f in fields] == pairs.scores.tolist()
    assert len(pairs) > 0 and all(math.isfinite(s) and 0 <= s <= 5 for s in pairs.scores)
