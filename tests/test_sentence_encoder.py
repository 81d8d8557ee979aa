"""SentenceEncoder: length-sorted padded batches give each sentence's own embedding, in input order."""

import numpy as np
import torch

from bertnpu.model.sentence_encoder import SentenceEncoder, length_sorted_batches, tokenize

SENTENCES = ["A man plays a guitar.", "Hi", "Three children are running along the river bank under a grey sky.", "Hi", "A dog."]


def test_batches_are_longest_first_and_cover_every_sentence_once():
    ids = [[101, 5, 102], [101, 102], [101, 1, 2, 3, 4, 102], [101, 7, 8, 102]]
    batches = length_sorted_batches(ids, batch_size=3, pad_id=0)
    assert [b.order.tolist() for b in batches] == [[2, 3, 0], [1]]
    first = batches[0]
    assert first.input_ids.shape == (3, 6) and first.attention_mask.sum(1).tolist() == [6, 4, 3]
    assert first.input_ids[2].tolist() == [101, 5, 102, 0, 0, 0] and torch.equal(first.token_type_ids, torch.zeros_like(first.input_ids))


def test_batched_equals_one_at_a_time_and_hugging_face(tiny_model):
    batched = SentenceEncoder(tiny_model, batch_size=2, progress=False)(SENTENCES)
    alone = np.concatenate([SentenceEncoder(tiny_model, batch_size=1, progress=False)([s]) for s in SENTENCES])
    assert np.abs(batched - alone).max() <= 1e-5
    assert np.abs(batched[1] - batched[3]).max() <= 1e-5  # duplicates land in their own rows (other batches: float noise only)
    with torch.no_grad():  # Hugging Face's BertModel + masked mean, sentence by sentence
        for i, s in enumerate(SENTENCES):
            tok = tiny_model.tokenizer(s, return_tensors="pt")
            ref = tiny_model.bert(**tok).last_hidden_state[0].mean(0).numpy()
            assert np.abs(batched[i] - ref).max() <= 1e-5


def test_tokenize_truncates_to_max_length(tiny_model):
    ids = tokenize(tiny_model, [SENTENCES[2]], max_length=5)[0]
    assert len(ids) == 5 and ids[0] == tiny_model.tokenizer.cls_token_id and ids[-1] == tiny_model.tokenizer.sep_token_id
