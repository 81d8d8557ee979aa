import numpy as np
import pytest
from scipy import stats as sps

from bertnpu.tune.bootstrap import (PairedBootstrap, bootstrap_for, interval_fields, noise_verdict, paired_difference_ci,
                                    percentile_interval, resample_counts, resampled_ranks)


def _data(n, rho, rng, tied_gold=True):
    x, y = rng.multivariate_normal([0, 0], [[1, rho], [rho, 1]], size=n).T
    gold = np.round(np.clip(y * 1.2 + 2.5, 0, 5) * 5) / 5 if tied_gold else y  # STS-B's gold has many ties
    return x, gold


def test_resample_counts_are_the_seeded_index_draws():
    counts = resample_counts(7, 5, seed=3)
    idx = np.random.default_rng(3).integers(0, 7, size=(5, 7))
    assert counts.shape == (5, 7) and (counts.sum(1) == 7).all()
    for b in range(5):
        assert (counts[b] == np.bincount(idx[b], minlength=7)).all()
    assert (resample_counts(7, 5, seed=3) == counts).all() and not (resample_counts(7, 5, seed=4) == counts).all()


def test_each_resample_is_scipy_spearman_of_the_resampled_pairs_ties_included():
    rng = np.random.default_rng(0)
    x, gold = _data(40, 0.6, rng)
    x[:6] = x[6:12]  # ties in the model's scores too
    boot = PairedBootstrap(gold, resamples=300, seed=5)
    idx = np.random.default_rng(5).integers(0, 40, size=(300, 40))
    want = np.array([sps.spearmanr(x[i], gold[i]).statistic for i in idx])
    np.testing.assert_allclose(boot.samples(x), want, atol=1e-12)


def test_resampled_ranks_are_average_ranks_of_the_resample():
    values = np.array([3.0, 1.0, 3.0, 2.0])
    counts = np.array([[2.0, 0.0, 1.0, 1.0]])  # resample: 3, 3, 3, 2
    ranks = resampled_ranks(values, counts) + 2.5  # undo the centring on (n + 1) / 2
    assert ranks[0, 0] == ranks[0, 2] == pytest.approx(3.0)  # three tied 3s take ranks 2, 3, 4
    assert ranks[0, 3] == pytest.approx(1.0)


def test_interval_agrees_with_scipy_bootstrap_percentile():
    rng = np.random.default_rng(1)
    x, gold = _data(60, 0.5, rng)
    boot = PairedBootstrap(gold, resamples=2000, seed=2)
    ours = boot.interval(boot.samples(x))

    def rho(a, b):
        return sps.spearmanr(a, b).statistic

    ref = sps.bootstrap((x, gold), rho, paired=True, vectorized=False, n_resamples=2000, method="percentile", confidence_level=0.95,
                        random_state=np.random.default_rng(9)).confidence_interval
    # different resamples: the ends agree within Monte Carlo error (about 0.02 here against an interval ~0.4 wide)
    assert ours[0] == pytest.approx(ref.low, abs=0.03) and ours[1] == pytest.approx(ref.high, abs=0.03)


def test_paired_difference_agrees_with_scipy_bootstrap_of_the_difference():
    rng = np.random.default_rng(4)
    x, gold = _data(60, 0.7, rng)
    z = x + rng.normal(0, 0.2, 60)  # a "quantized" copy of x
    ours = paired_difference_ci(z, x, gold)

    def diff(a, b, g):
        return sps.spearmanr(a, g).statistic - sps.spearmanr(b, g).statistic

    ref = sps.bootstrap((z, x, gold), diff, paired=True, vectorized=False, n_resamples=1000, method="percentile",
                        random_state=np.random.default_rng(3)).confidence_interval
    assert ours[0] == pytest.approx(ref.low, abs=0.03) and ours[1] == pytest.approx(ref.high, abs=0.03)
    # pairing: the difference's interval is narrower than either Spearman's own
    boot = bootstrap_for(gold)
    own = boot.interval(boot.samples(z))
    assert ours[1] - ours[0] < 0.6 * (own[1] - own[0])


def test_coverage_on_synthetic_data_with_known_spearman():
    # bivariate normal with correlation rho: population Spearman is (6 / pi) asin(rho / 2)
    rho, n, datasets = 0.6, 150, 200
    truth = 6 / np.pi * np.arcsin(rho / 2)
    rng = np.random.default_rng(11)
    hits = 0
    for k in range(datasets):
        x, y = _data(n, rho, rng, tied_gold=False)
        boot = PairedBootstrap(y, resamples=400, seed=k)
        lo, hi = boot.interval(boot.samples(x))
        hits += lo <= truth <= hi
    assert 0.90 <= hits / datasets <= 0.99


def test_interval_fields_keys_and_point_difference():
    rng = np.random.default_rng(2)
    x, gold = _data(80, 0.8, rng)
    z = x + rng.normal(0, 1.0, 80)
    px, pz = sps.spearmanr(x, gold).statistic, sps.spearmanr(z, gold).statistic
    out = interval_fields(z, gold, pz, reference=x, reference_point=px)
    assert set(out) == {"spearman_ci", "diff_to_fp32", "diff_to_fp32_ci"}
    assert out["diff_to_fp32"] == pytest.approx(pz - px, abs=1e-15)
    assert out["spearman_ci"][0] < pz < out["spearman_ci"][1]
    assert out["diff_to_fp32_ci"][0] < out["diff_to_fp32"] < out["diff_to_fp32_ci"][1]
    assert set(interval_fields(x, gold, px)) == {"spearman_ci"}


def test_identical_models_have_a_zero_difference_and_verdicts():
    rng = np.random.default_rng(3)
    x, gold = _data(50, 0.5, rng)
    assert paired_difference_ci(x, x, gold) == [0.0, 0.0]
    assert noise_verdict([-0.01, 0.02]) == "within" and noise_verdict([-0.03, -0.01]) == "below" and noise_verdict([0.01, 0.02]) == "above"
    assert percentile_interval(np.arange(101.0)) == pytest.approx([2.5, 97.5])
