"""Stage 2, export embeddings: the weight file's hash and keys, the tables equal to the model's."""

from __future__ import annotations

import hashlib

import torch

from bertnpu import stages as st


def test_export_embeddings_hash_and_keys(tiny_model, tmp_path):
    r = st.export_embeddings(st.ExportInputs(tiny_model, tmp_path / "w.pth"))
    assert r.sha256 == hashlib.sha256((tmp_path / "w.pth").read_bytes()).hexdigest()[:16]
    weights = torch.load(tmp_path / "w.pth", weights_only=True)
    assert set(weights) == set(r.keys)
    assert torch.equal(weights["word_embeddings"], tiny_model.bert.embeddings.word_embeddings.weight.detach())
