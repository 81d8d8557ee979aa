import torch
import pytest

from bertnpu.model.npu_part import NpuEncoder
from bertnpu.errors import BertnpuError
from bertnpu.model.cpu_part import WEIGHT_KEYS, CpuEmbedding, export_weight_dict, load_weight_dict

SENTENCES = [
    "Hello, my dog is cute",
    "A",
    "The quick brown fox jumps over the lazy dog while three zebras watch from a distance.",
    "Two men are playing chess in the park today.",
]


def _reference_and_split(model, tap=None):
    tok = model.tokenizer(SENTENCES, padding=True, return_tensors="pt")
    assert tok["attention_mask"].sum(1).unique().numel() == len(SENTENCES)  # mixed lengths, padded
    with torch.no_grad():
        ref = model.bert(**tok)
        x = CpuEmbedding.from_bert(model.bert)(tok["input_ids"], tok["token_type_ids"])
        last, pooled = NpuEncoder(model.bert)(x, tok["attention_mask"], tap=tap)
    mask = tok["attention_mask"].bool()
    return ref, last, pooled, mask


@pytest.mark.parametrize("which", ["default_model", "tiny_model"])
@pytest.mark.parametrize("tapped", [False, True])
def test_split_equals_hugging_face(request, which, tapped):
    model = request.getfixturevalue(which)
    tap = (lambda site, x, mask: x) if tapped else None
    ref, last, pooled, mask = _reference_and_split(model, tap)
    # padded positions carry no meaning in either implementation; every real token must match
    assert (last - ref.last_hidden_state)[mask].abs().max().item() <= 1e-5
    assert (pooled - ref.pooler_output).abs().max().item() <= 1e-5


def test_cpu_part_is_the_tutorial_arithmetic(tiny_model):
    ids = torch.tensor([[101, 7592, 2088, 102]])
    types = torch.tensor([[0, 1, 2, 0]])
    emb = tiny_model.bert.embeddings
    x = emb.word_embeddings.weight[ids] + emb.token_type_embeddings.weight[types] + emb.position_embeddings.weight[:4]
    mu, var = x.mean(-1, keepdim=True), x.var(-1, unbiased=False, keepdim=True)
    expected = (x - mu) / torch.sqrt(var + 1e-7) * emb.LayerNorm.weight + emb.LayerNorm.bias
    got = CpuEmbedding.from_bert(tiny_model.bert)(ids, types)
    assert torch.allclose(got, expected, atol=1e-6)
    assert CpuEmbedding.from_bert(tiny_model.bert).eps == 1e-7


def test_weight_dict_round_trip(tiny_model, tmp_path):
    path = export_weight_dict(tiny_model.bert, tmp_path / "weight_dict.pth")
    raw = torch.load(path, weights_only=True)
    assert list(raw) == list(WEIGHT_KEYS)
    assert all(type(v) is torch.Tensor for v in raw.values())
    assert raw["word_embeddings"].shape == (30522, 36)
    assert raw["position_embeddings"].shape == (77, 36)
    assert raw["token_type_embeddings"].shape == (3, 36)
    assert torch.equal(raw["layernorm_bias"], tiny_model.bert.embeddings.LayerNorm.bias)
    rebuilt = CpuEmbedding.from_file(path, eps=tiny_model.config.layer_norm_eps)
    ids = torch.randint(0, 30522, (2, 9))
    with torch.no_grad():
        ref = tiny_model.bert.embeddings(input_ids=ids)
    assert torch.allclose(rebuilt(ids), ref, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weight_dict.pth"]  # no temp files left


def test_export_never_overwrites_silently(tiny_model, tmp_path):
    path = tmp_path / "w.pth"
    export_weight_dict(tiny_model.bert, path)
    with pytest.raises(BertnpuError, match="already exists; pass --force"):
        export_weight_dict(tiny_model.bert, path)
    export_weight_dict(tiny_model.bert, path, force=True)


def test_bad_weight_dicts(tiny_model, tmp_path):
    good = torch.load(export_weight_dict(tiny_model.bert, tmp_path / "w.pth"), weights_only=True)
    missing = dict(good)
    del missing["layernorm_bias"]
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(BertnpuError, match="lacks the key\\(s\\) layernorm_bias"):
        load_weight_dict(tmp_path / "missing.pth")
    wrong = dict(good, position_embeddings=torch.zeros(77, 35))
    torch.save(wrong, tmp_path / "wrong.pth")
    with pytest.raises(BertnpuError, match="position_embeddings.*shape \\(77, 35\\)"):
        load_weight_dict(tmp_path / "wrong.pth")
    with pytest.raises(BertnpuError, match="does not exist"):
        load_weight_dict(tmp_path / "absent.pth")
    with pytest.raises(BertnpuError, match="expected \\[rows, 40\\]"):
        load_weight_dict(tmp_path / "w.pth", hidden_size=40)


def test_export_is_byte_identical_whatever_the_file_name(tiny_model, tmp_path):
    import hashlib
    import zipfile

    a = export_weight_dict(tiny_model.bert, tmp_path / "weight_dict.pth")
    b = export_weight_dict(tiny_model.bert, tmp_path / "other" / "copy.pth")
    assert hashlib.sha256(a.read_bytes()).hexdigest() == hashlib.sha256(b.read_bytes()).hexdigest()
    names = zipfile.ZipFile(a).namelist()
    assert names and all(n.startswith("archive/") for n in names)  # no temp or file name stored inside


def test_weight_dict_values_must_be_finite_float(tiny_model, tmp_path):
    good = torch.load(export_weight_dict(tiny_model.bert, tmp_path / "w.pth"), weights_only=True)
    bad = {
        "nan": dict(good, layernorm_weight=torch.full((36,), float("nan"))),
        "inf": dict(good, word_embeddings=good["word_embeddings"].clone().index_fill_(0, torch.tensor([5]), float("inf"))),
        "huge": dict(good, layernorm_bias=torch.full((36,), 1e6)),
        "int": dict(good, layernorm_weight=torch.ones(36, dtype=torch.int64)),
    }
    phrases = {"nan": "NaN or inf", "inf": "NaN or inf", "huge": "magnitude 1e\\+06, beyond 65504", "int": "dtype torch.int64, not float"}
    for name, weights in bad.items():
        torch.save(weights, tmp_path / f"{name}.pth")
        with pytest.raises(BertnpuError, match=phrases[name]):
            load_weight_dict(tmp_path / f"{name}.pth")
