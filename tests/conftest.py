"""Shared fixtures: the default model once, a tiny random BERT of odd sizes once, the STS-B folder."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]

# matplotlib's font cache lives per user (~/.cache/matplotlib) and names font files inside the environment that built it:
# after that environment is deleted (a venv made again) every figure warns "findfont: Font family ... not found" on stderr,
# which the notebook tests count as output. A cache per environment (the notebooks' kernels inherit it) cannot go stale so.
os.environ.setdefault("MPLCONFIGDIR", str(Path(sys.prefix) / "matplotlib-cache"))

# Property-based tests of every reader of user files (tests/test_fuzz_*.py). CI: derandomized, so a run is
# reproducible and the fuzz files together stay under 60 s; `pytest --hypothesis-profile=deep` searches far longer.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("ci", derandomize=True, max_examples=40, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("deep", max_examples=2000, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile("ci")


@pytest.fixture(scope="session")
def stsb_dir() -> Path:
    path = Path(os.environ.get("BERTNPU_STSB_DIR") or REPO.parent / "shared" / "data" / "stsbenchmark")
    if not (path / "sts-test.csv").is_file():
        pytest.fail(f"STS-B release not found at {path}; set BERTNPU_STSB_DIR")
    return path


@pytest.fixture(scope="session")
def default_model():
    from bertnpu.model.load import load_model

    return load_model()


def build_tiny_bert(folder: Path, *, seed: int = 0, **overrides) -> Path:
    """A random BertModel with odd sizes, saved with the default model's tokenizer."""
    from transformers import AutoTokenizer, BertConfig, BertModel

    from bertnpu.model.load import default_model_path

    torch.manual_seed(seed)
    kwargs = dict(
        vocab_size=30522, hidden_size=36, num_hidden_layers=3, num_attention_heads=3, intermediate_size=70,
        max_position_embeddings=77, type_vocab_size=3, layer_norm_eps=1e-7, hidden_act="gelu",
    )
    kwargs.update(overrides)
    model = BertModel(BertConfig(**kwargs)).eval()
    with torch.no_grad():  # make LayerNorm affine non-trivial so a wrong eps/bias would show
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from bertnpu.model.load import load_model

    return load_model(str(tiny_model_dir))


@pytest.fixture(scope="session")
def stsb_test(stsb_dir):
    from bertnpu.data.stsb import load_stsb

    return load_stsb("test", stsb_dir)


@pytest.fixture(scope="session")
def stsb_validation(stsb_dir):
    from bertnpu.data.stsb import load_stsb

    return load_stsb("validation", stsb_dir)


@pytest.fixture(scope="session")
def tiny_calib(tiny_model, stsb_validation, tmp_path_factory):
    """32 calibration samples of the tiny BERT (validation sentence1, seed 0)."""
    from bertnpu.data.calibration import CalibrationSpec, build_calibration_set

    return build_calibration_set(tiny_model, tmp_path_factory.mktemp("calib") / "calib", CalibrationSpec(count=32), pairs=stsb_validation, progress=False)


@pytest.fixture(scope="session")
def tiny_stats(tiny_model, tiny_calib):
    """Activation stats of the tiny BERT, collected in padded batches of an odd size (7)."""
    from bertnpu.quant.stats import collect_activation_stats

    return collect_activation_stats(tiny_model, tiny_calib, batch_size=7, progress=False)


@pytest.fixture(scope="session")
def raw_values(tiny_model, tiny_calib):
    """Every site's valid values, gathered one sample at a time with no padding at all."""
    import numpy as np

    from bertnpu.model.npu_part import NpuEncoder

    raw: dict[str, list] = {}

    def tap(site, x, mask):
        v = x.permute(0, 2, 3, 1).reshape(-1, x.shape[1]) if x.dim() == 4 else x.reshape(-1, x.shape[-1])
        raw.setdefault(site, []).append(v.numpy().copy())
        return x

    enc = NpuEncoder(tiny_model.bert)
    with torch.no_grad():
        for a in tiny_calib.arrays:
            enc(torch.from_numpy(a), torch.ones(1, a.shape[1], dtype=torch.long), tap=tap)
    return {k: np.concatenate(v) for k, v in raw.items()}


QBCOMPILER_DOUBLE = REPO / "tests" / "doubles" / "qbcompiler_double"


def _forget_qbcompiler():
    for name in [m for m in sys.modules if m == "qbcompiler" or m.startswith("qbcompiler.")]:
        del sys.modules[name]


@pytest.fixture
def qbcompiler_double(monkeypatch, tmp_path, request):
    generation = getattr(request, "param", 2)
    record = tmp_path / "calls.jsonl"
    monkeypatch.setenv("QBCOMPILER_DOUBLE_GENERATION", str(generation))
    monkeypatch.setenv("QBCOMPILER_DOUBLE_RECORD", str(record))
    monkeypatch.syspath_prepend(str(QBCOMPILER_DOUBLE))
    _forget_qbcompiler()
    import qbcompiler

    assert qbcompiler.IS_TEST_DOUBLE and qbcompiler.GENERATION == generation
    yield record
    _forget_qbcompiler()


def _calls(record):
    return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


@pytest.fixture
def int_mm_calls(monkeypatch):
    """Call it to start counting ``torch._int_mm`` calls (the simulator's integer GEMMs): returns ``{"n": count}``."""
    def start() -> dict:
        calls = {"n": 0}
        real = torch._int_mm

        def counting(a, b):
            calls["n"] += 1
            return real(a, b)

        monkeypatch.setattr(torch, "_int_mm", counting)
        return calls

    return start
