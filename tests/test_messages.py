"""The EN/KO message catalogue: complete, same fields and number formats in both languages; Korean text is Korean."""

import html
import re
import string

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.ui import conclusions
from bertnpu.ui.messages import LANGUAGES, MESSAGES, current_language, figure_text, korean_font, label, message, use_language

HANGUL = re.compile(r"[\uac00-\ud7a3]")

# Names a Korean page keeps in Latin letters: products, metrics, units and qbcompiler's own vocabulary.
PROPER_NAMES = {
    "FP32", "INT8", "INT16", "STS-B", "Spearman", "Pearson", "SQNR", "dB", "NPU", "CPU", "MaxPercentile", "Max", "Histogram", "method", "output",
    "mode", "percentile", "topk_ratio", "topk", "aries", "optimistic", "all-int8", "cosine", "recall", "LayerNorm", "LayerNormalization", "bertnpu",
    "qbcompiler", "qbruntime", "Mobilint", "ARIES", "MBLT", "Netron", "BERT", "GELU", "Linear", "softmax", "FLOPs", "FLOP", "abs-max", "Hugging",
    "Face", "Docker", "pooling", "mean", "cls", "max", "sha256", "vo", "smooth", "README",
}


def english_sentences(page: str, min_words: int = 4) -> list[str]:
    """Stretches of a page's visible text that read as English: between tags and Hangul, at least ``min_words``
    Latin words that are neither proper names (:data:`PROPER_NAMES`) nor parts of identifiers (``layer.3.ffn.output.out``,
    ``recall@10``, ``weight_dict.pth``). Code, preformatted output, styles and the head are not visible prose."""
    text = re.sub(r"(?is)<(style|script|pre|code|head)\b.*?</\1>", " ", page)
    text = html.unescape(re.sub(r"(?s)<[^>]+>", "\x00", text))
    found = []
    for run in re.split(r"[\x00\uac00-\ud7a3]+", text):
        tokens = re.findall(r"[^\s,;:()\[\]]+", run)
        words = [t.strip(".!?'\"") for t in tokens]
        words = [w for w in words if re.fullmatch(r"[A-Za-z][A-Za-z'-]+", w) and w not in PROPER_NAMES]
        if len(words) >= min_words:
            found.append(run.strip())
    return found


def _fields(template: str) -> list[tuple[str, str]]:
    return sorted((name, spec) for _, name, spec, _ in string.Formatter().parse(template) if name is not None)


def test_every_key_has_both_languages_with_the_same_fields_and_formats():
    assert len(MESSAGES) > 100
    for key, entry in MESSAGES.items():
        assert set(entry) == set(LANGUAGES), key
        assert _fields(entry["en"]) == _fields(entry["ko"]), key  # numbers read the same on both pages
        words = re.findall(r"[A-Za-z][A-Za-z-]+", re.sub(r"<[^>]+>|\{[^}]*\}", "", entry["ko"]))
        assert HANGUL.search(entry["ko"]) or all(w in PROPER_NAMES for w in words), key  # Korean, or names only


def test_message_formats_and_language_switch():
    try:
        assert use_language("ko") == "ko" and current_language() == "ko"
        assert message("split.exact", diff=3e-7, tol=1e-4) == "분할은 정확합니다: 가장 큰 차이 3.0e-07은 부동소수점 반올림입니다(0.0001 미만)."
        assert message("split.exact", "en", diff=3e-7, tol=1e-4).startswith("The split is exact: the largest difference, 3.0e-07,")
        assert label("column.site") == "사이트" and label("column.recall@10") == "recall@10"  # no entry: the name itself
    finally:
        use_language("en")
    with pytest.raises(BertnpuError, match="Unknown page language 'fr'"):
        use_language("fr")


NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?(?:e[-+]\d+)?")


@pytest.mark.parametrize("call", [
    lambda: conclusions.simulate_conclusion(0.8203, 0.8011, 0.973, 0.71),
    lambda: conclusions.simulate_conclusion(0.8203, 0.8199, 0.973, 0.71),
    lambda: conclusions.sqnr_conclusion({"layer.0.ffn.residual": 12.5, "layer.1.ffn.residual": 14.0, "layer.1.attention.residual": 41.0}),
    lambda: conclusions.sensitivity_conclusion([{"site": "layer.5.ffn.residual", "fp32": 0.82, "int8": 0.79, "recovered": 0.021, "only_delta": -0.012}]),
    lambda: conclusions.stability_conclusion({"layer.0.ffn.residual": 0.12, "layer.1.ffn.residual": 0.01}),
    lambda: conclusions.split_conclusion(2.5e-7),
    lambda: conclusions.placement_conclusion([{"block": "embeddings", "placement": "CPU", "flops": 10, "parameters": 900},
                                              {"block": "encoder", "placement": "NPU", "flops": 990, "parameters": 100}]),
    lambda: conclusions.comparison_conclusion([{"name": "FP32", "spearman": 0.8203, "cosine": 1.0, "recall@10": 1.0},
                                               {"name": "tutorial config", "spearman": 0.7912, "cosine": 0.95, "recall@10": 0.8},
                                               {"name": "planned recipe", "spearman": 0.8150, "cosine": 0.993, "recall@10": 0.93}]),
])
def test_conclusions_say_the_same_numbers_in_korean(call):
    """A conclusion on a Korean page is Korean and carries exactly the English sentence's numbers."""
    english = call()
    try:
        use_language("ko")
        korean = call()
    finally:
        use_language("en")
    assert HANGUL.search(korean) and not HANGUL.search(english)
    assert sorted(NUMBER.findall(korean)) == sorted(NUMBER.findall(english)), (english, korean)
    assert english_sentences(f"<p>{korean}</p>") == []


def test_the_checker_finds_english_prose_and_passes_korean_with_names_and_code():
    assert english_sentences("<p>This config keeps the STS-B ranking and its embeddings stay close.</p>")
    assert english_sentences("<div>검증 분할: method 1, output 0, MaxPercentile p=0.999 topk=0.01 (0.8123)</div>") == []
    assert english_sentences("<p>모델을 불러옵니다 <code>bertnpu render --out rendered --lang ko</code></p><pre>model: tiny bert with four layers</pre>") == []
    assert english_sentences("<p>임계값 <b>layer.3.ffn.output.out</b> recall@10 weight_dict.pth</p>") == []


def test_figure_titles_follow_the_page_language():
    from matplotlib.figure import Figure

    from bertnpu.ui.plan_plots import plot_site_map

    try:
        use_language("ko")
        fig = plot_site_map({}, ["layer.0.ffn.residual"], 2, "aries")
        title = fig.axes[0].get_title()
    finally:
        use_language("en")
    assert isinstance(fig, Figure)
    if korean_font() is None:  # no Hangul font: English rather than empty boxes
        assert title.startswith("16-bit sites")
    else:
        assert title == message("fig.site_map", "ko", profile="aries", note="") and HANGUL.search(title)
    assert figure_text("fig.plan", profile="aries") == "Plan: cheapest recipe within tolerance [profile aries]"
