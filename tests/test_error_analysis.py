import numpy as np
import pytest

from bertnpu.model.sentence_encoder import SentenceEncoder
from bertnpu.errors import BertnpuError
from bertnpu.tune.evaluate import evaluate_sts
from bertnpu.tune.error_analysis import embedding_fidelity, neighbour_recall, site_sensitivity, site_sqnr
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.simulate import simulate


def test_sqnr_against_direct_computation(tiny_model, tiny_stats, stsb_validation):
    sentences = stsb_validation.sentence1[:20]
    off = simulate(tiny_model, tiny_stats, QuantConfig(), quantize_weights=False, quantize_activations=False)
    assert all(v == float("inf") for v in site_sqnr(tiny_model, off, sentences).values())
    q8 = site_sqnr(tiny_model, simulate(tiny_model, tiny_stats, QuantConfig(method=0, mode=0)), sentences)
    q4 = site_sqnr(tiny_model, simulate(tiny_model, tiny_stats, QuantConfig(method=0, mode=0, bits=4)), sentences)
    assert len(q8) == len(tiny_stats.sites)
    assert np.mean(list(q8.values())) > np.mean(list(q4.values())) + 10  # ~6 dB per bit
    # the NPU input site sees no propagated error: its SQNR is the plain quantization SQNR
    enc = SentenceEncoder(tiny_model, progress=False)
    x = np.concatenate([enc.embedding(b.input_ids, b.token_type_ids)[b.attention_mask.bool()].numpy() for b in enc.batches(sentences)])
    t = tiny_stats["embeddings.out"].absmax
    xq = np.clip(np.round(x / (t / 127)), -127, 127) * (t / 127)
    direct = 10 * np.log10((x.astype(np.float64) ** 2).sum() / ((x - xq).astype(np.float64) ** 2).sum())
    assert q8["embeddings.out"] == pytest.approx(direct, abs=0.01)


def test_sqnr_reference_reused_across_simulations(tiny_model, tiny_stats, stsb_validation):
    from bertnpu.tune.error_analysis import SiteReference

    sentences = stsb_validation.sentence1[:20]
    ref = SiteReference(tiny_model, sentences)
    site = "layer.1.ffn.output.out"
    for cfg in (QuantConfig(method=0, mode=0), QuantConfig(method=2, mode=0, bits=4)):
        sim = simulate(tiny_model, tiny_stats, cfg, keep_fp32=["embeddings.out"])
        got = site_sqnr(tiny_model, sim, sentences, reference=ref)
        assert got == site_sqnr(tiny_model, sim, sentences)  # the same numbers as with its own FP32 pass
        assert got["embeddings.out"] == float("inf")  # kept in FP32, no error before it
        # independent: the site's FP32 and simulated values (error propagated) recorded by plain taps, SQNR in numpy
        seen = {}

        def recorder(name, inner=None):
            def tap(s, x, mask):
                y = inner(s, x, mask) if inner is not None else x
                if s == site:
                    seen.setdefault(name, []).append(y[mask.bool()].numpy().astype(np.float64))
                return y
            return tap

        SentenceEncoder(tiny_model, tap=recorder("fp32"), progress=False)(sentences)
        SentenceEncoder(tiny_model, tap=recorder("int8", sim.tap), encoder=sim.encoder, progress=False)(sentences)
        x, y = np.concatenate(seen["fp32"]), np.concatenate(seen["int8"])
        assert got[site] == pytest.approx(10 * np.log10((x**2).sum() / ((x - y) ** 2).sum()), abs=1e-6)
    emb = np.zeros((len(sentences), tiny_model.config.hidden_size), dtype=np.float32)
    site_sqnr(tiny_model, sim, sentences, reference=ref, embeddings=emb)  # the same forward also gives the embeddings
    assert np.array_equal(emb, sim.encoder_for(batch_size=32)(sentences))
    other = SiteReference(tiny_model, sentences[:5])  # made for other sentences: not used
    sim = simulate(tiny_model, tiny_stats, QuantConfig(method=0, mode=0))
    assert site_sqnr(tiny_model, sim, sentences, reference=other) == site_sqnr(tiny_model, sim, sentences)


def test_neighbour_recall_brute_force():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(60, 8))
    assert neighbour_recall(a, a, 10) == 1.0
    b = a + rng.normal(scale=0.3, size=a.shape)
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    hits = []
    for i in range(60):
        sa, sb = an @ an[i], bn @ bn[i]
        sa[i] = sb[i] = -np.inf
        hits.append(len(set(np.argsort(-sa)[:10]) & set(np.argsort(-sb)[:10])) / 10)
    assert neighbour_recall(a, b, 10) == pytest.approx(np.mean(hits))


def test_embedding_fidelity(tiny_model, tiny_stats, stsb_validation):
    pairs = stsb_validation.subset(60)
    fp32 = SentenceEncoder(tiny_model, progress=False)
    int8 = simulate(tiny_model, tiny_stats, QuantConfig(method=0, bits=4)).encoder_for()
    f = embedding_fidelity(fp32, int8, pairs)
    assert 0 < f["cosine_min"] <= f["cosine_p05"] <= f["cosine_mean"] < 1
    assert f["worst_sentences"][0]["cosine"] == f["cosine_min"]
    changes = [abs(p["cos_int8"] - p["cos_fp32"]) for p in f["worst_pairs"]]
    assert changes == sorted(changes, reverse=True)
    assert 0 <= f["recall@10"] <= 1
    same = embedding_fidelity(fp32, fp32, pairs)
    assert same["recall@10"] == 1.0 and same["cosine_min"] == pytest.approx(1.0)


def test_sensitivity_rows(tiny_model, tiny_stats, stsb_validation):
    pairs = stsb_validation.subset(80)
    sites = ["layer.1.ffn.residual", "layer.0.attention.softmax.out"]
    rows = site_sensitivity(tiny_model, tiny_stats, QuantConfig(method=0, bits=4), pairs, sites=sites, progress=False)
    assert {r["site"] for r in rows} == set(sites)
    recovered = [r["recovered"] for r in rows]
    assert recovered == sorted(recovered, reverse=True)
    for r in rows:
        assert r["all_but_delta"] == pytest.approx(r["int8"] - r["fp32"] + r["recovered"])


def test_sensitivity_equals_whole_model_simulations(tiny_model, tiny_stats, stsb_validation):
    """The layer-reusing pass gives the Spearman of whole-model simulations with keep_fp32 (the simulator's own diagnostic)."""
    pairs = stsb_validation.subset(60)
    config = QuantConfig(method=0, bits=4)
    last = tiny_model.config.num_hidden_layers - 1
    sites = [f"layer.{last}.ffn.residual", "layer.0.attention.query.out", "embeddings.out", f"layer.{last}.ffn.layernorm.out"]
    rows = {r["site"]: r for r in site_sensitivity(tiny_model, tiny_stats, config, pairs, sites=sites, progress=False)}
    fp32 = evaluate_sts(SentenceEncoder(tiny_model, progress=False), pairs)["spearman"]
    full = evaluate_sts(simulate(tiny_model, tiny_stats, config).encoder_for(), pairs)["spearman"]
    everything = [s.name for s in tiny_stats.sites]
    for site in sites:
        only = evaluate_sts(simulate(tiny_model, tiny_stats, config, quantize_weights=False,
                                     keep_fp32=[n for n in everything if n != site]).encoder_for(), pairs)["spearman"]
        all_but = evaluate_sts(simulate(tiny_model, tiny_stats, config, keep_fp32=[site]).encoder_for(), pairs)["spearman"]
        r = rows[site]
        # FP32 here takes the fused attention path, the sensitivity pass the op-by-op one: equal to float rounding
        assert r["fp32"] == pytest.approx(fp32, abs=1e-6) and r["int8"] == pytest.approx(full, abs=1e-6)
        assert r["only_delta"] == pytest.approx(only - fp32, abs=1e-6), site
        assert r["all_but_delta"] == pytest.approx(all_but - fp32, abs=1e-6), site
        assert r["recovered"] == pytest.approx(all_but - full, abs=1e-6), site
    assert abs(rows["embeddings.out"]["only_delta"]) > 1e-4  # a 4-bit NPU input moves the score: the comparison is not vacuous


def test_sensitivity_names_an_unknown_site(tiny_model, tiny_stats, stsb_validation):
    with pytest.raises(BertnpuError, match="layer.9.nothing"):
        site_sensitivity(tiny_model, tiny_stats, QuantConfig(), stsb_validation.subset(10), sites=["layer.9.nothing"], progress=False)
