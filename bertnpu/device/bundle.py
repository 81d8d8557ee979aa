"""A portable compile bundle: everything qbcompiler needs, plus a standalone script and docker commands."""

from __future__ import annotations

import json
import os
import shutil
from importlib import resources
from pathlib import Path

from ..version import __version__
from ..artifacts import atomic_directory
from ..data.calibration import CalibrationSet
from ..model.load import LoadedModel
from .qbcompiler_adapter import FEED_SENTENCE
from ..quant.config import QuantConfig
from ..model.cpu_part import export_weight_dict

QB_VERSION = "1.0"
CPU_IMAGE = f"mobilint/qbcompiler:{QB_VERSION}-cpu-ubuntu22.04"
CUDA_IMAGE = f"mobilint/qbcompiler:{QB_VERSION}-cuda12.8.1-ubuntu22.04"
_MODEL_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "modules.json", "sentence_bert_config.json")


def _readme(model_name: str, mxq_name: str, config: QuantConfig, samples: int) -> str:
    run = "pip install /bundle/qbcompiler-*.whl && python /bundle/compile_mxq.py"
    return f"""# Compile bundle for {model_name}

Made by bertnpu {__version__}. Everything Mobilint's qbcompiler needs to build `{mxq_name}`:

| file | what |
| --- | --- |
| `model/` | the Hugging Face model folder |
| `calib/` | {samples} calibration samples, one `[1, seq_len, hidden]` float32 `.npy` each, `npy_files.txt`, `manifest.json` |
| `quant_config.json` | {config.label()} |
| `weight_dict.pth` | the CPU embedding part for qbruntime (keys of Mobilint's runtime) |
| `compile_mxq.py` | standalone compile script (qbcompiler 1.0.x or 1.1+) |

## Compile inside Mobilint's qbcompiler image

Put the qbcompiler wheel from Mobilint's download center in this folder, then from this folder run

CPU image:

```bash
docker run --rm -v "$PWD":/bundle -w /bundle {CPU_IMAGE} bash -c "{run}"
```

CUDA image (a GPU only speeds compilation up):

```bash
docker run --rm --gpus=all -v "$PWD":/bundle -w /bundle {CUDA_IMAGE} bash -c "{run} --device gpu"
```

The result is `{mxq_name}` here. The script refuses to overwrite it unless you pass `--force`.
Check it on the NPU with `bertnpu eval --mxq {mxq_name} --weights weight_dict.pth`.
"""


def write_compile_bundle(model: LoadedModel, calib: CalibrationSet, config: QuantConfig, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a self-contained bundle folder (atomically; never over an existing one without ``force``)."""
    mxq_name = f"{Path(str(model.name)).name}.mxq"
    with atomic_directory(out, force=force) as tmp:
        (tmp / "model").mkdir()
        for name in _MODEL_FILES:
            if (model.path / name).is_file():
                shutil.copy2(model.path / name, tmp / "model" / name)
        if not (tmp / "model" / "model.safetensors").is_file():
            model.bert.save_pretrained(tmp / "model")  # e.g. a model loaded from .bin weights
        (tmp / "calib").mkdir()
        names = []
        for i, f in enumerate(calib.files):
            name = f"calib_{i:05d}.npy"
            shutil.copy2(f, tmp / "calib" / name)
            names.append(name)
        # relative lines: the bundle is mounted at another path inside the container
        (tmp / "calib" / "npy_files.txt").write_text("".join(f"{n}\n" for n in names))
        if calib.manifest is not None:
            (tmp / "calib" / "manifest.json").write_text(json.dumps(calib.manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        (tmp / "quant_config.json").write_text(json.dumps({**config.to_dict(), "tool": f"bertnpu {__version__}"}, indent=2, sort_keys=True) + "\n")
        (tmp / "bundle.json").write_text(json.dumps({"model": model.name, "mxq_name": mxq_name, "feed_sentence": FEED_SENTENCE,
                                                     "layer_norm_eps": model.config.layer_norm_eps, "pooling": model.pooling.mode,
                                                     "tool": f"bertnpu {__version__}"}, indent=2, sort_keys=True) + "\n")
        export_weight_dict(model.bert, tmp / "weight_dict.pth")
        script = resources.files("bertnpu.device").joinpath("bundle_template/compile_mxq.py").read_text()
        (tmp / "compile_mxq.py").write_text(script)
        (tmp / "README.md").write_text(_readme(model.name, mxq_name, config, len(calib)))
    return Path(out)
