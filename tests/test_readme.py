"""README.md and every docs/ page stay in step with their Korean twins (README.KR.md, docs/X.KR.md): same sections in
the same order, same code blocks, same tables with the same numbers; the README stays short and its links resolve."""

import re
from collections import Counter

import pytest

from conftest import REPO

DOCS = REPO / "docs"
PAIRS = [(REPO / "README.md", REPO / "README.KR.md")] + [
    (page, page.with_name(page.name[:-len(".md")] + ".KR.md")) for page in sorted(DOCS.glob("*.md")) if not page.name.endswith(".KR.md")]
# pages the README links to that other issues write (the device runtime, the intervals); checked once they exist


@pytest.fixture(params=PAIRS, ids=[en.relative_to(REPO).as_posix() for en, _ in PAIRS])
def twins(request):
    en, ko = request.param
    assert ko.is_file(), f"{en.relative_to(REPO)} has no Korean twin {ko.name}"
    return en.read_text(), ko.read_text()


def test_the_docs_pages_exist():
    names = {en.name for en, _ in PAIRS}
    assert {"architecture.md", "npu-model.md", "precision.md", "sweep.md", "reliability.md", "benchmarks.md"} <= names


def test_same_sections_in_the_same_order(twins):
    en, ko = twins
    english = re.findall(r"^## (.+)$", en, flags=re.M)
    paired = re.findall(r"^## .+<!-- (.+) -->$", ko, flags=re.M)  # each Korean heading names its English one
    assert len(re.findall(r"^## ", ko, flags=re.M)) == len(paired)
    assert paired == english


def test_same_code_blocks(twins):
    en, ko = twins
    assert re.findall(r"```.*?```", ko, flags=re.S) == re.findall(r"```.*?```", en, flags=re.S)


def _tables(text: str) -> list[list[str]]:
    """Each Markdown table as its rows (header and separator included)."""
    tables, rows = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            tables.append(rows)
            rows = []
    return tables


def _decimals(rows: list[str]) -> Counter:
    # measured figures carry a decimal point; counts may move within a translated sentence, figures may not change
    return Counter(re.findall(r"(?<![\d.])\d+\.\d+(?![\d.])", "\n".join(rows)))


def test_same_tables_with_the_same_numbers(twins):
    en, ko = twins
    en_tables, ko_tables = _tables(en), _tables(ko)
    assert [len(t) for t in ko_tables] == [len(t) for t in en_tables]
    for e, k in zip(en_tables, ko_tables):
        assert _decimals(k) == _decimals(e), e[0]
    # the tables whose rows start with a command or script name keep that name in the first column
    firsts = lambda t: [r.split(" | ")[0] for r in t if r.startswith(("| `bertnpu ", "| `bench_"))]  # noqa: E731
    assert [firsts(t) for t in ko_tables] == [firsts(t) for t in en_tables]


def test_korean_is_a_full_translation(twins):
    en, ko = twins
    latin = len(re.findall(r"[A-Za-z]", re.sub(r"```.*?```|`[^`]*`|\|.*\|", "", en, flags=re.S)))  # prose only
    assert len(re.findall(r"[\uac00-\ud7a3]", ko)) > latin / 6, "the Korean page is not a translation of its English one"


def test_readme_is_short_and_leads_with_what_to_run():
    for name in ("README.md", "README.KR.md"):
        text = (REPO / name).read_text()
        assert len(text.splitlines()) <= 150, f"{name} has {len(text.splitlines())} lines"
        assert "bash .ci/setup && .venv/bin/bertnpu run --stsb-dir ../shared/data/stsbenchmark" in text
        assert "bash .ci/setup --browser && BERTNPU_STSB_DIR=../shared/data/stsbenchmark .venv/bin/python -m pytest" in text
    en, ko = (REPO / "README.md").read_text(), (REPO / "README.KR.md").read_text()
    commands = [r.split(" | ")[0] for r in en.splitlines() if r.startswith("| `bertnpu ")]
    assert len(commands) >= 10 and commands == [r.split(" | ")[0] for r in ko.splitlines() if r.startswith("| `bertnpu ")]
    assert "BERTNPU_STSB_DIR" in ko and "--lang ko" in ko and "Hangul" not in ko


def test_the_two_commands_are_what_ci_runs():
    """The README's install steps are .ci/setup's, and its test command is what .ci/run runs after it."""
    setup, run = (REPO / ".ci" / "setup").read_text(), (REPO / ".ci" / "run").read_text()
    assert "torch==2.13.0" in setup and '-e ".[dev]"' in setup and "chromium" in setup
    assert "bash .ci/setup --browser" in run and ".venv/bin/python -m pytest" in run


def test_links_and_the_picture_resolve():
    for page in [REPO / "README.md", REPO / "README.KR.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+://", target):
                continue
            path = (page.parent / target).resolve()
            assert path.exists(), f"{page.relative_to(REPO)} links to {target}, which does not exist"
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", (REPO / "README.md").read_text())
    assert pictures and all((REPO / p).stat().st_size < 200_000 for p in pictures)
    assert (REPO / pictures[0]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
