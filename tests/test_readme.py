"""README.KR.md stays in step with README.md: same sections, commands, code, results and benchmarks."""

import re

from conftest import REPO

EN = (REPO / "README.md").read_text()
KO = (REPO / "README.KR.md").read_text()


def test_same_sections_in_the_same_order():
    english = re.findall(r"^## (.+)$", EN, flags=re.M)
    paired = re.findall(r"^## .+<!-- (.+) -->$", KO, flags=re.M)  # each Korean heading names its English one
    assert len(re.findall(r"^## ", KO, flags=re.M)) == len(paired)
    assert paired == english


def _commands(text):
    return [row.split(" | ")[0] for row in text.splitlines() if row.startswith("| `bertnpu ")]


def test_same_command_table():
    assert _commands(KO) == _commands(EN) and len(_commands(EN)) >= 10


def test_same_code_blocks():
    assert re.findall(r"```.*?```", KO, flags=re.S) == re.findall(r"```.*?```", EN, flags=re.S)


def test_same_results_and_benchmarks():
    def numbers(text, header):
        table = re.search(re.escape(header) + r"\n\| --- .*\n((?:\|.*\|\n)+)", text).group(1)
        return [row.rsplit("|", 2)[1].strip() for row in table.splitlines()]  # the value column

    assert numbers(KO, "| | Spearman |") == numbers(EN, "| | Spearman |")
    bench = [r.split(" | ")[0] for r in EN.splitlines() if r.startswith("| `bench_")]
    assert bench and bench == [r.split(" | ")[0] for r in KO.splitlines() if r.startswith("| `bench_")]
    assert re.findall(r"\d+(?:\.\d+)? (?:s|ms|GB)\b", "\n".join(r for r in KO.splitlines() if r.startswith("| `bench_"))) == \
        re.findall(r"\d+(?:\.\d+)? (?:s|ms|GB)\b", "\n".join(r for r in EN.splitlines() if r.startswith("| `bench_")))


def test_korean_mentions_what_a_user_must_do_first():
    assert "BERTNPU_STSB_DIR" in KO and "--lang ko" in KO and "Hangul" not in KO
    assert len(re.findall(r"[\uac00-\ud7a3]", KO)) > 2000  # a full translation, not a stub
