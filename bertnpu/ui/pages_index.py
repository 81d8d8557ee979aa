"""The entry page of rendered notebooks (``index.html``) and the footer every page carries.

The facts come from the render's work folder (``evaluation.json`` written by notebook 4,
``recipe.json``, ``stats.npz``'s model hash) and the STS-B splits; everything is escaped
and nothing is fetched, so the pages open offline.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from ..version import __version__
from .messages import message
from .report import esc

INDEX = "index.html"


@dataclass(frozen=True)
class RunFacts:
    """What produced a set of pages: versions, inputs and the headline numbers (``None`` where unknown)."""

    lang: str
    model: str
    model_hash: Optional[str]
    stsb_hash: Optional[str]
    eval_pairs: int
    date: str
    evaluation: Optional[dict]


def _model_hash(work: Path) -> Optional[str]:
    """The model's SHA-256 as the statistics recorded it (no model load needed)."""
    import numpy as np

    path = work / "stats.npz"
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as data:
        if "__meta__" not in data.files:
            return None
        meta = json.loads(data["__meta__"].tobytes().decode("utf-8"))
    return meta.get("model_sha256") if isinstance(meta, dict) else None


def _stsb_hash(stsb_dir: Optional[str]) -> Optional[str]:
    """One SHA-256 over the three splits' pairs (sentences and scores), as read by bertnpu."""
    from ..data.stsb import load_stsb
    from ..errors import BertnpuError

    digest = hashlib.sha256()
    try:
        for split in ("train", "validation", "test"):
            digest.update(load_stsb(split, stsb_dir).content_hash().encode())
    except BertnpuError:  # no local copy and no hub: the footer says "unknown"
        return None
    return digest.hexdigest()


def run_facts(work: Path, *, model: Optional[str], stsb_dir: Optional[str], eval_pairs: int, lang: str,
              model_shown: Optional[str] = None) -> RunFacts:
    from ..model.load import DEFAULT_MODEL_NAME

    evaluation = None
    if (work / "evaluation.json").is_file():
        evaluation = json.loads((work / "evaluation.json").read_text())
    return RunFacts(lang=lang, model=model_shown or model or DEFAULT_MODEL_NAME, model_hash=_model_hash(work), stsb_hash=_stsb_hash(stsb_dir),
                    eval_pairs=eval_pairs, date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                    evaluation=evaluation)


def page_footer(facts: RunFacts) -> str:
    """The footer of every page: bertnpu version, model and its hash, STS-B hash, date, language, and a link to the index."""
    unknown = message("footer.unknown", facts.lang)
    text = message("footer.text", facts.lang, version=__version__, model=facts.model, model_hash=(facts.model_hash or unknown)[:16],
                   stsb_hash=(facts.stsb_hash or unknown)[:16],
                   pairs=message("footer.pairs", facts.lang, n=facts.eval_pairs) if facts.eval_pairs else "", date=facts.date)
    return (f"<footer class='bertnpu-footer' style='margin:2em auto;max-width:1100px;padding:.6em 1em;border-top:1px solid #ccc;"
            f"font:13px system-ui,sans-serif;color:#555'><a href='{INDEX}'>{esc(message('footer.index', facts.lang))}</a> · {esc(text)}</footer>")


def recipe_in_words(recipe: dict, lang: str) -> str:
    """The recipe as one sentence: calibration config, 16-bit sites, transformations, device profile."""
    from ..quant.recipe import Recipe

    r = Recipe.from_dict(recipe)
    sites = (message("index.sites", lang, n=len(r.activation_16bits), sites=", ".join(r.activation_16bits)) if r.activation_16bits
             else message("index.sites_none", lang))
    enabled = r.equivalent_transformation.enabled()
    transforms = message("index.transforms", lang, names=", ".join(enabled)) if enabled else message("index.transforms_none", lang)
    return message("index.recipe", lang, calibration=r.calibration.label(), sites=sites, transforms=transforms, profile=r.profile)


def headline(facts: RunFacts) -> str:
    """HTML of the answer: FP32 vs the planned recipe on the test split, and the recipe in words."""
    ev = facts.evaluation or {}
    planned = ev.get("planned")
    if not ev.get("fp32") or not planned:
        return f"<p>{esc(message('index.no_result', facts.lang))}</p>"
    fp32, got = ev["fp32"]["spearman"], planned["spearman"]

    def ci(entry: dict) -> str:
        lo_hi = entry.get("spearman_ci")
        return message("index.ci", facts.lang, lo=lo_hi[0], hi=lo_hi[1]) if lo_hi and len(lo_hi) == 2 else ""

    line = message("index.headline", facts.lang, pairs=message("index.pairs", facts.lang, n=ev.get("pairs", 0)), fp32=fp32,
                   planned=got, drop=round(fp32, 4) - round(got, 4))
    cis = " ".join(x for x in (ci(ev["fp32"]), ci(planned)) if x)
    body = f"<p class='bertnpu-headline'><b>{esc(line)}</b>{esc(cis)}</p>"
    if planned.get("recipe"):
        body += f"<p class='bertnpu-recipe'>{esc(recipe_in_words(planned['recipe'], facts.lang))}</p>"
    return body


def render_index(facts: RunFacts, pages: Sequence[tuple[str, str]]) -> str:
    """``index.html``: headline, the pages in order with one line each (``pages``: (notebook name, title)), footer."""
    title = message("index.title", facts.lang, model=facts.model)
    items = "".join(f"<li><a href='{esc(name)}.html'>{esc(page_title)}</a>: {esc(message('page.' + name, facts.lang))}</li>"
                    for name, page_title in pages)
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}"
             ".bertnpu-headline{font-size:1.1em}li{margin:.4em 0}")
    return (f"<!doctype html><html lang='{esc(facts.lang)}'><head><meta charset='utf-8'><title>{esc(title)}</title><style>{style}</style></head>"
            f"<body><h1>{esc(title)}</h1>{headline(facts)}<h2>{esc(message('index.pages', facts.lang))}</h2><ol>{items}</ol>"
            f"{page_footer(facts)}</body></html>\n")

