import json

import pytest

from bertnpu.errors import BertnpuError
from bertnpu.quant.config import QuantConfig


def test_default_is_the_tutorial_config():
    cfg = QuantConfig()
    assert (cfg.method, cfg.output, cfg.mode, cfg.percentile, cfg.topk_ratio, cfg.bits) == (1, 0, 1, 0.999, 0.01, 8)
    assert cfg.legacy_kwargs() == {"quantization_method": 1, "quantization_output": 0, "quantization_mode": 1, "percentile": 0.999, "topk_ratio": 0.01}


@pytest.mark.parametrize("kwargs,needle", [
    ({"percentile": 0}, "percentile=0 is invalid; it must lie in \\(0, 1\\]"),
    ({"percentile": 1.5}, "percentile=1.5"), ({"topk_ratio": -0.1}, "topk_ratio=-0.1"),
    ({"method": 4}, "method=4 is invalid"), ({"output": 3}, "output=3"), ({"mode": "1"}, "mode='1'"),
    ({"bits": 1}, "bits=1"), ({"method": True}, "method=True"),
])
def test_validation(kwargs, needle):
    with pytest.raises(BertnpuError, match=needle):
        QuantConfig(**kwargs)


def test_json_round_trip(tmp_path):
    cfg = QuantConfig(method=3, output=1, mode=2, percentile=0.9999, topk_ratio=0.05, bits=6)
    path = cfg.save(tmp_path / "cfg.json")
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["tool"].startswith("bertnpu ")
    assert QuantConfig.load(path) == cfg
    with pytest.raises(BertnpuError, match="already exists"):
        cfg.save(path)
    (tmp_path / "bad.json").write_text('{"method": 1, "percentil": 0.9}')
    with pytest.raises(BertnpuError, match="Unknown QuantConfig field\\(s\\) percentil"):
        QuantConfig.load(tmp_path / "bad.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(BertnpuError, match="not valid JSON"):
        QuantConfig.load(tmp_path / "broken.json")
