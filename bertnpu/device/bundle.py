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
from .qbcompiler_adapter import FEED_SENTENCE, needed_knobs
from .qb_calls import CURRENT_VERSION, TARGET_DEVICES, docker_images
from ..quant.config import QuantConfig
from ..quant.precision import get_profile
from ..quant.recipe import TRANSFORMATIONS, Recipe
from ..quant.sites import list_sites
from .compile_record import SCHEMA_VERSION as RECORD_SCHEMA_VERSION
from .export_wrapper import CompiledOutput, compiled_output
from ..model.cpu_part import export_weight_dict

QB_VERSION = CURRENT_VERSION  # the release a recipe without qbcompiler_version is compiled with
CPU_IMAGE, CUDA_IMAGE = docker_images(QB_VERSION)
SCRIPT_MARKER = "# --- bertnpu/device/qb_calls.py, inserted here by bertnpu's bundle writer (the one description of the calls) ---\n"
_MODEL_FILES = ("config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                "modules.json", "sentence_bert_config.json")


def _prediction_lines(recipe: Recipe) -> list[str]:
    """``recipe.prediction`` in words: numbers as they are, per-profile tables as ``name (profile): value``."""
    lines = []
    for key, value in sorted(recipe.prediction.items()):
        if isinstance(value, dict):
            for sub, v in sorted(value.items()):
                lines.append(f"- {key} ({sub}): {v:.4f}" if isinstance(v, (int, float)) else f"- {key} ({sub}): {v}")
        else:
            lines.append(f"- {key}: {value:.4f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else f"- {key}: {value}")
    return lines


def recipe_in_words(recipe: Recipe) -> str:
    """The recipe as a short Markdown section: calibration, 16-bit sites, transformations, prediction."""
    t = recipe.equivalent_transformation
    sites = "\n".join(f"  - `{s}`" for s in recipe.activation_16bits) or "  - none (every activation at the profile's default width)"
    transforms = "\n".join(f"  - {TRANSFORMATIONS[name]}" for name in t.enabled()) or "  - none"
    prediction = _prediction_lines(recipe)
    profile = get_profile(recipe.profile)
    lines = [
        f"- Calibration: {recipe.calibration.label()} (`calibration` in recipe.json: method {recipe.calibration.method}, "
        f"output {recipe.calibration.output}, mode {recipe.calibration.mode}, percentile {recipe.calibration.percentile:g}, topk_ratio {recipe.calibration.topk_ratio:g})",
        f"- Activations at 16 bits ({len(recipe.activation_16bits)} site(s); the script maps each to qbcompiler's operator name and stops if one has none):",
        sites,
        "- Equivalent transformations:",
        transforms,
        f"- Precision profile the prediction assumes: `{profile.name}` ({profile.description})",
        f"- Target device: {recipe.target_device or 'none (qbcompiler 1.3 needs one: pass --target-device)'}",
        f"- Compiler release: qbcompiler {recipe.qbcompiler_version or CURRENT_VERSION}",
    ]
    if prediction:
        lines.append(f"- Predicted by bertnpu's simulation (profile `{recipe.profile}` unless named):")
        lines.extend("  " + line for line in prediction)
    else:
        lines.append("- Predicted Spearman: none recorded in the recipe (write one with `bertnpu plan`)")
    return "\n".join(lines)


def compile_script() -> str:
    """The bundle's ``compile_mxq.py``: the template with :mod:`bertnpu.device.qb_calls` inserted (one description of the calls)."""
    template = resources.files("bertnpu.device").joinpath("bundle_template/compile_mxq.py").read_text()
    calls = resources.files("bertnpu.device").joinpath("qb_calls.py").read_text()
    assert template.count(SCRIPT_MARKER) == 1, "the template lost its insertion marker"
    return template.replace(SCRIPT_MARKER, SCRIPT_MARKER + calls + "# --- end of qb_calls.py ---\n")


def docker_command(recipe: Recipe, cuda: bool = False) -> str:
    """The command that compiles a bundle inside Mobilint's image of the recipe's qbcompiler release, run from the bundle's
    folder; without a target device in the recipe it carries ``--target-device DEVICE`` for the user to fill in (1.3 needs one)."""
    image = docker_images(recipe.qbcompiler_version or QB_VERSION)[1 if cuda else 0]
    flags = (" --device gpu" if cuda else "") + ("" if recipe.target_device else " --target-device DEVICE")
    return (f'docker run --rm{" --gpus=all" if cuda else ""} -v "$PWD":/bundle -w /bundle {image} bash -c '
            f'"pip install /bundle/qbcompiler-*.whl && python /bundle/compile_mxq.py{flags}"')


def _readme(model_name: str, mxq_name: str, recipe: Recipe, samples: int, output: CompiledOutput) -> str:
    version = recipe.qbcompiler_version or QB_VERSION
    cpu_image, cuda_image = docker_images(version)
    knobs = needed_knobs(recipe)
    knob_note = (f"This recipe needs {', '.join(f'`{k}`' for k in knobs)}, which only qbcompiler 1.1+ has; the wheel's major.minor must "
                 f"match the image's ({version} here).\n\n" if knobs else "")
    target = recipe.target_device
    target_note = (f"qbcompiler 1.3 needs a `target_device`: this recipe has none, so replace `DEVICE` in the commands below "
                   f"with one of {', '.join(f'`{d}`' for d in TARGET_DEVICES)}." if not target else
                   f"Target device: `{target}` (from recipe.json; `--target-device` overrides it" +
                   ("" if target in TARGET_DEVICES else f"; qbcompiler 1.3 accepts only {', '.join(TARGET_DEVICES)}") + ").")
    return f"""# Compile bundle for {model_name}

Made by bertnpu {__version__}. Everything Mobilint's qbcompiler needs to build `{mxq_name}`:

| file | what |
| --- | --- |
| `model/` | the Hugging Face model folder |
| `calib/` | {samples} calibration samples, one `[1, seq_len, hidden]` float32 `.npy` each, `npy_files.txt` (names relative to `calib/`), `manifest.json` |
| `recipe.json` | the recipe that was simulated: {recipe.label()} |
| `quant_config.json` | its calibration config alone ({recipe.calibration.label()}) |
| `sites.json` | bertnpu's site names of this model, for the site -> operator mapping |
| `weight_dict.pth` | the CPU embedding part for qbruntime (keys of Mobilint's runtime) |
| `compile_mxq.py`, `mblt_map.py` | standalone compile script (qbcompiler 1.0.x, 1.1/1.2 or 1.3; every argument by keyword) and the site -> operator mapping it uses |

## The recipe

{recipe_in_words(recipe)}

## What `{mxq_name}` returns

{output.describe()}. Mobilint's runtime example reads `infer(...)[0]` as the sentence vector,
which is right only for `pooler` pooling; this model uses `{output.pooling}` pooling, so bertnpu
compiles a thin wrapper whose forward returns exactly that tensor, and `bertnpu eval --mxq`
checks the shape the NPU returns against it.

## Compile inside Mobilint's qbcompiler image

This recipe is for qbcompiler {version} (`qbcompiler_version` in recipe.json; none means the current release,
{QB_VERSION}): the image tags below are of the same major.minor, and the script stops if the installed
wheel's release differs. {target_note}

Put the qbcompiler wheel of that release from Mobilint's download center in this folder, then from this folder run

CPU image:

```bash
{docker_command(recipe)}
```

CUDA image (a GPU only speeds compilation up):

```bash
{docker_command(recipe, cuda=True)}
```

The script works from any working directory. It runs two passes: `mblt_compile` to a temp file,
reading its graph to find the operator behind each 16-bit site, then `mxq_compile` with the
calibration config, `bit_config` and `equivalent_transformation_config`. It passes qbcompiler a
listing of absolute calibration paths written at run time. With qbcompiler 1.0.x, which lacks
`bit_config` and `equivalent_transformation_config`, it names what is missing and stops unless
you pass `--allow-missing-knobs`.

{knob_note}The result is `{mxq_name}` and `{mxq_name}.recipe.json` (the recipe, the operator names used, what the
`.mxq` returns) here. The script refuses to overwrite them unless you pass `--force`.
Check it on the NPU against the simulation with
`bertnpu eval --mxq {mxq_name} --weights weight_dict.pth --calib calib`.
"""


def write_compile_bundle(model: LoadedModel, calib: CalibrationSet, recipe: Recipe | QuantConfig, out: str | os.PathLike, *,
                         force: bool = False) -> Path:
    """Write a self-contained bundle folder (atomically; never over an existing one without ``force``).

    ``recipe`` (a :class:`~bertnpu.quant.recipe.Recipe`, or a ``QuantConfig`` for no overrides)
    travels as ``recipe.json``; its 16-bit sites are checked against the model first.
    """
    recipe = recipe if isinstance(recipe, Recipe) else Recipe(calibration=recipe)
    sites = [s.name for s in list_sites(model)]
    recipe.check_sites(sites)
    output = compiled_output(model)
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
        # names relative to calib/ (the bundle is mounted elsewhere); the script hands qbcompiler absolute paths
        (tmp / "calib" / "npy_files.txt").write_text("".join(f"{n}\n" for n in names))
        if calib.manifest is not None:
            (tmp / "calib" / "manifest.json").write_text(json.dumps(calib.manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        recipe.save(tmp / "recipe.json")
        recipe.calibration.save(tmp / "quant_config.json")
        (tmp / "sites.json").write_text(json.dumps(sites, indent=1) + "\n")
        (tmp / "bundle.json").write_text(json.dumps({"model": model.name, "mxq_name": mxq_name, "feed_sentence": FEED_SENTENCE,
                                                     "layer_norm_eps": model.config.layer_norm_eps, "pooling": model.pooling.mode,
                                                     "output": output.to_dict(), "tool": f"bertnpu {__version__}",
                                                     "record_schema_version": RECORD_SCHEMA_VERSION},
                                                    indent=2, sort_keys=True) + "\n")
        export_weight_dict(model.bert, tmp / "weight_dict.pth")
        (tmp / "compile_mxq.py").write_text(compile_script())
        (tmp / "mblt_map.py").write_text(resources.files("bertnpu.device").joinpath("mblt_map.py").read_text())
        (tmp / "README.md").write_text(_readme(model.name, mxq_name, recipe, len(calib), output))
    return Path(out)
