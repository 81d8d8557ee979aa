"""index.html and the page footer: the headline numbers are the evaluation's, links go both ways, every value is escaped."""

import re

from bertnpu.quant.recipe import Recipe
from bertnpu.ui.pages_index import RunFacts, page_footer, recipe_in_words, render_index
from bertnpu.version import __version__

PAGES = [("01_analyze_model", "1. Analyze the model"), ("04_tune_quantization", "4. Tune <percentile>")]


def _facts(**kw) -> RunFacts:
    recipe = Recipe.from_dict({"calibration": {"method": 1, "mode": 1, "percentile": 0.999, "topk_ratio": 0.01},
                               "activation_16bits": ["layer.5.ffn.residual"]})
    evaluation = {"split": "test", "pairs": 1379, "fp32": {"spearman": 0.82032, "spearman_ci": [0.80411, 0.83512]},
                  "planned": {"spearman": 0.81549, "recipe": recipe.to_dict()}}
    base = dict(lang="en", model="<img src=x onerror=alert(1)>", model_hash="ab" * 32, stsb_hash="cd" * 32, eval_pairs=0,
                date="2026-12-04 12:00 UTC", evaluation=evaluation)
    return RunFacts(**{**base, **kw})


def test_index_headline_is_the_evaluation():
    page = render_index(_facts(), PAGES)
    text = re.sub(r"<[^>]+>", "", page)
    assert "FP32 scores Spearman 0.8203; the planned recipe, predicted for the NPU by simulation, scores 0.8155 (drop 0.0048)" in text
    assert "(95% interval 0.8041 to 0.8351)" in text  # a number a user acts on carries its uncertainty, when the evaluation has it
    assert "1,379 pairs" in text
    assert "1 activation site(s) at 16 bits (layer.5.ffn.residual)" in text and "device profile aries" in text


def test_index_links_pages_in_order_and_escapes_everything():
    page = render_index(_facts(), PAGES)
    assert re.findall(r"href='([^']+)'", page) == ["01_analyze_model.html", "04_tune_quantization.html", "index.html"]
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "4. Tune &lt;percentile&gt;" in page
    assert not re.search(r"<script|https?://", page)  # offline


def test_footer_names_version_model_hashes_date_and_language():
    footer = page_footer(_facts(eval_pairs=40))
    assert f"bertnpu {__version__}" in footer and "sha256 abababababababab" in footer and "STS-B sha256 cdcdcdcdcdcdcdcd" in footer
    assert "first 40 pairs of each split" in footer and "2026-12-04 12:00 UTC" in footer and "language: English" in footer
    assert "href='index.html'" in footer
    ko = page_footer(_facts(lang="ko", model_hash=None))
    assert "언어: 한국어" in ko and "sha256 알 수 없음" in ko and "전체 페이지" in ko


def test_korean_index_and_missing_evaluation():
    ko = render_index(_facts(lang="ko"), PAGES)
    assert "<html lang='ko'>" in ko and "FP32의 Spearman은 0.8203" in ko and "16비트 활성값 사이트 1개" in ko
    none = render_index(_facts(evaluation=None), PAGES)
    assert "No evaluation was found in the work folder" in none
    assert recipe_in_words(Recipe().to_dict(), "en") == ("The recipe: calibration method 1, output 0, MaxPercentile p=0.999 topk=0.01; "
                                                         "every activation at 8 bits; no equivalent transformation; device profile aries.")
