"""Quantization parameters (quant/qparams.py): one derivation, read the same by the panel and applied by the simulator,
and equal to torch.ao's MinMaxObserver where bertnpu's documented definition is torch.ao's."""

import re

import numpy as np
import pytest
import torch

from bertnpu.quant.config import QuantConfig
from bertnpu.quant.qparams import calculate_qparams
from bertnpu.quant.simulate import simulate

SIGNED, UNSIGNED, LINEAR_OUT = "layer.1.ffn.residual", "layer.0.attention.softmax.out", "layer.0.attention.query.out"


def _shown(html: str, css: str) -> float:
    return float(re.search(rf"class='{css}'>([^<]+)<", html).group(1))


@pytest.mark.parametrize("cfg,site,scheme", [
    (QuantConfig(method=0, mode=1, percentile=0.99, topk_ratio=0.5), SIGNED, "symmetric"),
    (QuantConfig(method=1, mode=2), "layer.0.ffn.residual", "symmetric"),  # shared across layers (layer 1's is wider), the MSE search
    (QuantConfig(method=0, mode=0), UNSIGNED, "unsigned"),
    (QuantConfig(method=1, mode=1), "layer.1.attention.softmax.out", "unsigned"),
    (QuantConfig(method=2, mode=0), "layer.1.ffn.gelu.out", "affine"),
    (QuantConfig(method=3, mode=1, percentile=0.99, topk_ratio=0.5), "layer.2.ffn.residual", "affine"),
])
def test_the_explorer_readout_is_what_the_simulation_applies(tiny_model, tiny_stats, cfg, site, scheme):
    """The panel's threshold, scale and zero point (its readout text and its view) against the simulation object:
    the op its tap runs (``_prepared``: what every forward divides by) and its output on a ramp through the range."""
    from bertnpu.ui.widgets import ThresholdExplorer

    ex = ThresholdExplorer(tiny_stats, cfg, site=site)
    view, html = ex.view, ex.readout.value
    sim = simulate(tiny_model, tiny_stats, cfg, profile="all-int8", quantize_weights=False, keep_reference=False)
    assert sim.site_bits[site] == cfg.bits == view.bits
    applied = sim.tap.qparams(site)
    op = sim.tap._prepared(site, torch.float32)
    assert applied.scheme == scheme and view.unsigned == (scheme == "unsigned")
    # under methods 1/3 these sites apply a range wider than their own: a panel showing the own range would fail below
    assert view.shared == cfg.multi_layer and ((view.lo, view.hi) != (view.of.own.lo, view.of.own.hi)) == cfg.multi_layer
    # the op the tap runs holds exactly the scale and code range the panel states
    assert float(op[1]) == view.scale == float(applied.scale)
    if scheme == "affine":
        assert (op[2], op[3]) == (view.zero_point, view.qmax) and (view.qmin, view.qmax) == (0, 255)
    else:
        assert (op[2], op[3]) == (view.qmin, view.qmax) and view.zero_point == 0
        assert (view.qmin, view.qmax) == ((0, 255) if scheme == "unsigned" else (-127, 127))
    # the threshold: the simulation's clip range for the site, as the scheme applies it
    rng = sim.ranges[site]
    assert view.threshold == applied.threshold == (rng.threshold if scheme == "symmetric" else rng.hi)
    assert (view.lo, view.hi) == (applied.lo, applied.hi) == {"symmetric": (-rng.threshold, rng.threshold), "unsigned": (0.0, rng.hi),
                                                              "affine": (rng.lo, rng.hi)}[scheme]
    # the readout's text states the same numbers
    assert _shown(html, "bertnpu-threshold") == pytest.approx(view.threshold, rel=1e-5)
    assert _shown(html, "bertnpu-scale") == pytest.approx(view.scale, rel=1e-5)
    assert _shown(html, "bertnpu-zero-point") == view.zero_point
    # and the tap's output: codes qmin..qmax around the zero point, times the scale the panel states
    x = torch.linspace(view.lo - 2 * abs(view.hi - view.lo), view.hi + 2 * abs(view.hi - view.lo), 4001)[None, None, :]
    y = sim.tap(site, x, torch.ones(1, 1, dtype=torch.bool)).numpy()
    s = np.float32(view.scale)
    want = (np.clip(np.round(x.numpy() / s) + view.zero_point, view.qmin, view.qmax) - view.zero_point) * s
    assert np.array_equal(y, want.astype(np.float32))
    assert y.max() == pytest.approx(view.hi, rel=1e-6) if scheme != "affine" else y.max() <= view.hi + float(s)


def _ao(observer, values: np.ndarray):
    observer(torch.from_numpy(values))
    scale, zero_point = observer.calculate_qparams()
    return scale, zero_point


@pytest.mark.parametrize("site", ["layer.0.attention.scores", SIGNED, "pooler.out"])
def test_max_mode_symmetric_equals_torch_ao_min_max_observer(tiny_stats, raw_values, site):
    """Mode 0, method 0: ``[-max|x|, max|x|]`` onto codes -127..127. That is torch.ao's per-tensor symmetric
    MinMaxObserver with the narrow range ``quant_min=-127`` (bertnpu never uses -128; torch.ao's default -128..127
    would divide by 127.5 instead of 127, a deliberate difference of its default, not of the definition)."""
    from torch.ao.quantization.observer import MinMaxObserver

    scale, zero_point = _ao(MinMaxObserver(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric, quant_min=-127, quant_max=127), raw_values[site])
    qp = calculate_qparams(tiny_stats[site], QuantConfig(method=0, mode=0))
    assert qp.scheme == "symmetric" and (qp.qmin, qp.qmax) == (-127, 127)
    assert float(qp.scale) == pytest.approx(scale.item(), rel=1e-7) and qp.zero_point == zero_point.item() == 0


@pytest.mark.parametrize("site", ["layer.1.ffn.gelu.out", SIGNED, "embeddings.out"])
def test_max_mode_affine_equals_torch_ao_min_max_observer(tiny_stats, raw_values, site):
    """Mode 0, method 2: ``[min x, max x]`` (widened to include 0) onto 0..255 with ``zp = round(-lo / scale)``: torch.ao's
    per-tensor affine quint8 MinMaxObserver. torch.ao computes in float32 and floors the scale at float32's eps where
    bertnpu uses 1e-12 (only a range under 3e-5 wide would tell them apart), so the scale agrees to float32 rounding."""
    from torch.ao.quantization.observer import MinMaxObserver

    scale, zero_point = _ao(MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine), raw_values[site])
    qp = calculate_qparams(tiny_stats[site], QuantConfig(method=2, mode=0))
    assert qp.scheme == "affine" and (qp.qmin, qp.qmax) == (0, 255)
    assert qp.scale == pytest.approx(scale.item(), rel=1e-6) and qp.zero_point == zero_point.item()


def test_max_mode_unsigned_equals_torch_ao_affine_with_zero_point_0(tiny_stats, raw_values):
    """A never-negative site under a symmetric method: ``[0, max x]`` onto 0..255, which is torch.ao's affine quint8
    observer on data whose minimum is 0 or more (zero point 0)."""
    from torch.ao.quantization.observer import MinMaxObserver

    assert raw_values[UNSIGNED].min() >= 0
    scale, zero_point = _ao(MinMaxObserver(dtype=torch.quint8, qscheme=torch.per_tensor_affine), raw_values[UNSIGNED])
    qp = calculate_qparams(tiny_stats[UNSIGNED], QuantConfig(method=0, mode=0))
    assert qp.scheme == "unsigned" and (qp.qmin, qp.qmax, qp.zero_point) == (0, 255, 0) == (0, 255, zero_point.item())
    assert float(qp.scale) == pytest.approx(scale.item(), rel=1e-7)


def test_max_mode_per_channel_equals_torch_ao_per_channel_observer(tiny_model, tiny_stats, raw_values):
    """``output`` 1 on a Linear output: one scale (and zero point) per channel, as the simulator applies them,
    against torch.ao's PerChannelMinMaxObserver over the channel axis (the last) of the same values."""
    from torch.ao.quantization.observer import PerChannelMinMaxObserver

    values = raw_values[LINEAR_OUT]
    sym = simulate(tiny_model, tiny_stats, QuantConfig(method=0, mode=0, output=1), profile="all-int8", quantize_weights=False, keep_reference=False)
    qp = sym.tap.qparams(LINEAR_OUT)
    scale, _ = _ao(PerChannelMinMaxObserver(ch_axis=-1, dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-127, quant_max=127), values)
    assert qp.per_channel and torch.allclose(qp.scale, scale, rtol=1e-6, atol=0)
    aff = simulate(tiny_model, tiny_stats, QuantConfig(method=2, mode=0, output=1), profile="all-int8", quantize_weights=False, keep_reference=False)
    qp = aff.tap.qparams(LINEAR_OUT)
    scale, zero_point = _ao(PerChannelMinMaxObserver(ch_axis=-1, dtype=torch.quint8, qscheme=torch.per_channel_affine), values)
    assert qp.per_channel and torch.allclose(qp.scale, scale, rtol=1e-6, atol=0)
    assert torch.equal(qp.zero_point.long(), zero_point.long())


def test_own_and_shared_qparams(tiny_stats):
    """Methods 1/3 share a role's range across layers; the site's own qparams are what method 0/2 would give it."""
    from bertnpu.quant.qparams import site_qparams

    shared = site_qparams(tiny_stats, QuantConfig(method=1, mode=0), SIGNED)
    alone = site_qparams(tiny_stats, QuantConfig(method=0, mode=0), SIGNED)
    widest = max(tiny_stats[f"layer.{i}.ffn.residual"].absmax for i in range(3))
    assert shared.shared and not alone.shared and shared.qparams.threshold == widest
    assert shared.own == alone.qparams == alone.own
    assert site_qparams(tiny_stats, QuantConfig(method=1), "pooler.out").shared is False  # outside the layers: its own range
