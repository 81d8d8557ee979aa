"""256 calibration samples built and written: bertnpu vs the tutorial's one-sentence loop.

Target (issue 3): under 2 s with the default model. Run: .venv/bin/python benchmarks/bench_calib.py
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import stsb_dir
from bertnpu import load_model, load_stsb
from bertnpu.data.calibration import CalibrationSpec, build_calibration_set


def tutorial_loop(model, sentences, out: Path) -> None:
    """The published recipe: tokenize one sentence, embed it, save it; repeat."""
    emb = model.bert.embeddings
    out.mkdir()
    with torch.no_grad():
        for i, s in enumerate(sentences):
            enc = model.tokenizer(s, return_tensors="pt")
            ids, types = enc["input_ids"], enc["token_type_ids"]
            x = emb.word_embeddings(ids) + emb.token_type_embeddings(types) + emb.position_embeddings(torch.arange(ids.shape[1])[None])
            x = torch.nn.functional.layer_norm(x, (x.shape[-1],), emb.LayerNorm.weight, emb.LayerNorm.bias, model.config.layer_norm_eps)
            np.save(out / f"{i}.npy", x.numpy())


def main() -> None:
    model = load_model()
    pairs = load_stsb("validation", stsb_dir())
    tmp = Path(tempfile.mkdtemp())
    try:
        start = time.perf_counter()
        cs = build_calibration_set(model, tmp / "ours", CalibrationSpec(count=256), pairs=pairs, progress=False)
        ours = time.perf_counter() - start
        start = time.perf_counter()
        tutorial_loop(model, cs.sentences, tmp / "tutorial")
        theirs = time.perf_counter() - start
    finally:
        shutil.rmtree(tmp)
    print(f"bertnpu build_calibration_set (256)   {ours:.3f} s  (target < 2 s)")
    print(f"tutorial one-sentence loop (256)      {theirs:.3f} s")
    print(f"ratio bertnpu / tutorial              {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
