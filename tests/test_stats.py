import numpy as np
import pytest
import torch

from bertnpu.data.calibration import CalibrationSet, CalibrationSpec, build_calibration_set
from bertnpu.model.npu_part import NpuEncoder
from bertnpu.errors import BertnpuError
from bertnpu.quant.observers import EDGES, TOPK
from bertnpu.quant.config import QuantConfig
from bertnpu.quant.sites import list_sites, sites_of
from bertnpu.quant.stats import collect_activation_stats, load_stats
from bertnpu.quant.thresholds import clip_thresholds, clipped_count, clipped_fraction, site_range


@pytest.fixture(scope="module")
def raw_values(tiny_model, tiny_calib):
    """Every site's valid values, gathered one sample at a time with no padding at all."""
    raw: dict[str, list[np.ndarray]] = {}

    def tap(site, x, mask):
        v = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]) if x.dim() == 4 else x.reshape(-1, x.shape[-1])
        raw.setdefault(site, []).append(v.numpy().copy())
        return x

    enc = NpuEncoder(tiny_model.bert)
    with torch.no_grad():
        for a in tiny_calib.arrays:
            enc(torch.from_numpy(a), torch.ones(1, a.shape[1], dtype=torch.long), tap=tap)
    return {k: np.concatenate(v) for k, v in raw.items()}


def test_site_names():
    names = [s.name for s in list_sites(2)]
    assert names[0] == "embeddings.out" and names[-2:] == ["pooler.dense.out", "pooler.out"]
    assert len(names) == 1 + 2 * 14 + 2 and len(set(names)) == len(names)
    for required in ("layer.1.attention.query.out", "layer.1.attention.softmax.out", "layer.1.ffn.intermediate.out",
                     "layer.1.ffn.gelu.out", "layer.1.attention.residual", "layer.1.ffn.layernorm.out", "layer.0.attention.scores"):
        assert required in names


def test_every_site_is_observed(tiny_model, tiny_stats):
    assert [s.name for s in tiny_stats.sites] == [s.name for s in sites_of(tiny_model)] == [s.name for s in list_sites(tiny_model)]
    assert all(tiny_stats[s.name].count > 0 for s in tiny_stats.sites)


def test_stats_equal_raw_values(tiny_stats, raw_values, tiny_calib):
    for name, values in raw_values.items():
        obs = tiny_stats[name]
        assert obs.count == values.size, name  # padding never counted
        assert np.isclose(obs.min, values.min(), atol=1e-5) and np.isclose(obs.max, values.max(), atol=1e-5), name
        assert np.allclose(obs.channel_absmax.numpy(), np.abs(values).max(0), atol=1e-5), name
        a = np.abs(values).ravel()
        assert np.abs(obs.abs_hist().sum() - a.size) == 0
        assert np.allclose(obs.top_abs()[:50], np.sort(a)[::-1][:50], atol=1e-5)


def test_max_mode_matches_torch_ao(tiny_stats, raw_values):
    from torch.ao.quantization.observer import MinMaxObserver

    for name in ("layer.0.attention.scores", "layer.2.ffn.residual", "pooler.out"):
        ao = MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric)
        ao(torch.from_numpy(raw_values[name]))
        r = site_range(tiny_stats[name], QuantConfig(method=0, mode=0))
        assert np.isclose(r.hi, max(-ao.min_val.item(), ao.max_val.item()), atol=1e-5)
        z = site_range(tiny_stats[name], QuantConfig(method=2, mode=0))
        assert np.isclose(z.lo, ao.min_val.item(), atol=1e-5) and np.isclose(z.hi, ao.max_val.item(), atol=1e-5)


@pytest.mark.parametrize("p,r", [(0.999, 0.01), (0.99, 0.5), (0.9, 1.0), (0.5, 1.0), (1.0, 0.01)])
def test_max_percentile_against_brute_force(tiny_stats, raw_values, p, r):
    for name in ("layer.1.ffn.gelu.out", "layer.0.attention.softmax.out", "embeddings.out"):
        a = np.sort(np.abs(raw_values[name]).ravel())[::-1]
        m = int(np.floor(r * (1 - p) * a.size + 1e-9))
        want = a[m]
        got = site_range(tiny_stats[name], QuantConfig(method=0, mode=1, percentile=p, topk_ratio=r)).hi
        if m < TOPK:
            assert np.isclose(got, want, rtol=1e-5), (name, m)
        else:  # within one histogram bin
            b = np.searchsorted(EDGES, want, side="right") - 1
            assert EDGES[b] <= got <= EDGES[b + 1] * 1.0000001 or np.isclose(got, want), (name, m, got, want)


def test_histogram_mode_against_brute_force(tiny_stats, raw_values):
    for name in ("layer.1.ffn.intermediate.out", "layer.2.attention.residual"):
        a = np.abs(raw_values[name]).ravel().astype(np.float64)
        got = site_range(tiny_stats[name], QuantConfig(method=0, mode=2)).hi
        top = int(np.searchsorted(EDGES, a.max()))
        cands = np.append(EDGES[1:top], a.max())

        def mse(t):
            q = np.clip(np.round(a / (t / 127)), -127, 127) * (t / 127)
            return ((a - q) ** 2).mean()

        errors = np.array([mse(t) for t in cands])
        best = cands[int(np.argmin(errors))]
        assert abs(np.log2(got) - np.log2(best)) <= 1 / 64 + 1e-9, (name, got, best)  # within one bin
        assert mse(got) <= errors.min() * 1.05  # rounding noise is modelled as uniform (step^2/12)


def test_batched_equals_one_sample_at_a_time(tiny_model, tiny_calib, tiny_stats):
    single = collect_activation_stats(tiny_model, tiny_calib, batch_size=1, progress=False)
    for s in tiny_stats.sites:
        a, b = tiny_stats[s.name], single[s.name]
        assert a.count == b.count
        assert np.isclose(a.max, b.max, atol=1e-5) and np.isclose(a.min, b.min, atol=1e-5)
        assert np.allclose(a.channel_absmax.numpy(), b.channel_absmax.numpy(), atol=1e-5)
        # float rounding may move a value across a bin edge; nothing else may differ
        assert np.abs(a.abs_hist() - b.abs_hist()).sum() <= 0.001 * a.count + 2
        assert np.allclose(a.replica_hist.sum(1), b.replica_hist.sum(1))  # same bootstrap weights per sample


def test_token_roles(tiny_stats, tiny_calib):
    obs = tiny_stats["layer.1.ffn.layernorm.out"]
    hidden = tiny_calib.hidden_size
    cls, sep, content = obs.role_hist.sum(1).numpy()
    assert cls == sep == len(tiny_calib) * hidden
    assert content == (tiny_calib.lengths.sum() - 2 * len(tiny_calib)) * hidden
    assert np.allclose(obs.role_hist.sum(0).numpy(), obs.abs_hist())


def test_state_is_bounded(tiny_model, tiny_calib):
    small = collect_activation_stats(tiny_model, CalibrationSet(tiny_calib.files[:8], tiny_calib.arrays[:8]), progress=False)
    big = collect_activation_stats(tiny_model, tiny_calib, progress=False)  # 4x the samples
    assert big.state_size() <= small.state_size() + len(small.sites) * 2 * TOPK
    per_site = max(o.state_size() for o in big.observers.values())
    assert per_site <= (2 + 3 + 16) * 2560 + 2 * TOPK + 3 + 1024


def test_multi_layer_shares_ranges(tiny_stats):
    per_layer = clip_thresholds(tiny_stats, QuantConfig(method=0, mode=0))
    shared = clip_thresholds(tiny_stats, QuantConfig(method=1, mode=0))
    names = [f"layer.{i}.ffn.gelu.out" for i in range(3)]
    assert len({shared[n] for n in names}) == 1
    assert shared[names[0]].hi == max(per_layer[n].hi for n in names)
    assert shared["embeddings.out"] == per_layer["embeddings.out"]


def test_clipped_fraction(tiny_stats, raw_values):
    name = "layer.1.ffn.gelu.out"
    cfg = QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.05)
    rng = site_range(tiny_stats[name], cfg)
    frac = clipped_fraction(tiny_stats[name], rng)
    a = np.abs(raw_values[name])
    assert np.isclose(frac, (a > rng.hi).mean(), atol=1e-6)
    assert np.isclose(frac * a.size, clipped_count(a.size, 0.99, 0.05), atol=1)


def test_save_load_round_trip(tiny_model, tiny_calib, tiny_stats, tmp_path, stsb_validation):
    path = tiny_stats.save(tmp_path / "stats.npz")
    loaded = load_stats(path, tiny_model, tiny_calib)
    cfg = QuantConfig()
    assert clip_thresholds(loaded, cfg) == clip_thresholds(tiny_stats, cfg)
    with pytest.raises(BertnpuError, match="already exists"):
        tiny_stats.save(path)
    other = build_calibration_set(tiny_model, tmp_path / "other", CalibrationSpec(count=5, seed=9), pairs=stsb_validation, progress=False)
    with pytest.raises(BertnpuError, match="another calibration set"):
        load_stats(path, tiny_model, other)


def test_load_rejects_other_model(tiny_stats, tmp_path):
    from conftest import build_tiny_bert
    from bertnpu.model.load import load_model

    path = tiny_stats.save(tmp_path / "s.npz")
    other = load_model(str(build_tiny_bert(tmp_path / "m", seed=5)))
    with pytest.raises(BertnpuError, match="other weights"):
        load_stats(path, other)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(BertnpuError, match="not a bertnpu stats file"):
        load_stats(tmp_path / "junk.npz")


def test_cli_sites_and_stats(tiny_model_dir, tiny_calib, tmp_path, capsys):
    import json
    from bertnpu.cli import main

    assert main(["sites", "--model", str(tiny_model_dir), "--json"]) == 0
    sites = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["sites"]
    assert len(sites) == 1 + 3 * 14 + 2
    calib_dir = tiny_calib.files[0].parent
    assert main(["stats", "--model", str(tiny_model_dir), "--calib", str(calib_dir), "--out", str(tmp_path / "s.npz")]) == 0
    assert load_stats(tmp_path / "s.npz")["pooler.out"].count == len(tiny_calib) * 36
