"""The only module that imports qbcompiler (lazily). Builds the feed dict and calls mxq_compile / mblt_compile.

qbcompiler is proprietary: Mobilint ships it as Docker images
(``mobilint/qbcompiler:<ver>-cpu-ubuntu22.04`` / ``-cuda12.8.1-ubuntu22.04``) and a wheel from
its download center. Without it, :func:`write_compile_bundle` (``bertnpu compile --bundle``)
exports everything needed to compile inside that image.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Optional

from ..artifacts import TEMP_PREFIX, atomic_write, check_writable
from ..errors import BertnpuError
from ..model.load import LoadedModel
from ..quant.config import QuantConfig
from ..quant.recipe import Recipe

MISSING = ("qbcompiler is not installed (Mobilint ships it as the Docker image mobilint/qbcompiler and a wheel from its download center); "
           "run `bertnpu compile --bundle DIR` to export a bundle that compiles inside that image.")
FEED_SENTENCE = "Hello, my dog is cute"


def load_qbcompiler() -> Any:
    """Import qbcompiler, or raise one sentence saying how to get it and what to do instead."""
    try:
        return importlib.import_module("qbcompiler")
    except ImportError:
        raise BertnpuError(MISSING) from None


def qbcompiler_available() -> bool:
    try:
        load_qbcompiler()
        return True
    except BertnpuError:
        return False


def api_generation(qb: Any) -> int:
    """2 for qbcompiler 1.1+ (``CalibrationConfig``), 1 for 1.0.x (``QuantizationConfig.from_kwargs``)."""
    if hasattr(qb, "CalibrationConfig"):
        return 2
    if hasattr(qb, "QuantizationConfig"):
        return 1
    raise BertnpuError("The installed qbcompiler has neither CalibrationConfig nor QuantizationConfig; install qbcompiler 1.0 or newer.")


def quantization_kwargs(qb: Any, config: QuantConfig) -> dict[str, Any]:
    """The keyword argument of ``mxq_compile`` that carries ``config``, for the installed generation."""
    if api_generation(qb) == 2:
        cc = qb.CalibrationConfig
        return {"calibration_config": cc(method=config.method, output=config.output, mode=config.mode,
                                         max_percentile=cc.MaxPercentile(percentile=config.percentile, topk_ratio=config.topk_ratio))}
    return {"quantization_config": qb.QuantizationConfig.from_kwargs(**config.legacy_kwargs())}


def build_feed_dict(model: LoadedModel) -> dict[str, Any]:
    """Wrapped tensors of a sample sentence with a dynamic sequence dimension, the mask marked as padding mask."""
    util = importlib.import_module("qbcompiler.model_dict.parser.backend.torch.util")
    wrapper = importlib.import_module("qbcompiler.model_dict.parser.backend.torch.object_wrapper")
    inputs = model.tokenizer(FEED_SENTENCE, return_tensors="pt")
    feed = {}
    for key, value in inputs.items():
        wrapped = util.wrap_tensor(key, value)
        wrapped.src_shape[1].set_dynamic()
        feed[key] = wrapped
    wrapper.set_attention_mask(feed["attention_mask"], "padding_mask")
    return feed


class _Tee:
    """Copies writes to the console and a log sink (the compiler's log, streamed)."""

    def __init__(self, stream, sink: Callable[[str], None]):
        self.stream, self.sink = stream, sink

    def write(self, text: str) -> int:
        self.sink(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


@contextlib.contextmanager
def _streamed(log: Optional[Callable[[str], None]]):
    if log is None:
        yield
        return
    with contextlib.redirect_stdout(_Tee(sys.stdout, log)), contextlib.redirect_stderr(_Tee(sys.stderr, log)):
        yield


KNOB_WHAT = {
    "bit_config": "16-bit activations per operator (BitConfig)",
    "equivalent_transformation_config": "equivalent transformations (EquivalentTransformationConfig)",
    "target_device": "target_device",
}


def needed_knobs(recipe: Recipe) -> list[str]:
    """The ``mxq_compile`` keyword arguments beyond the calibration config that ``recipe`` needs."""
    knobs = []
    if recipe.activation_16bits:
        knobs.append("bit_config")
    if recipe.equivalent_transformation.enabled():
        knobs.append("equivalent_transformation_config")
    if recipe.target_device:
        knobs.append("target_device")
    return knobs


def supported_knobs(qb: Any) -> set[str]:
    """Knobs the installed qbcompiler has: BitConfig needs the parsed-graph API too (to find operator names)."""
    have = set()
    if hasattr(qb, "BitConfig"):
        try:
            importlib.import_module("qbcompiler.model_dict.serialize").load_mblt_model
            have.add("bit_config")
        except (ImportError, AttributeError):
            pass
    if hasattr(qb, "EquivalentTransformationConfig"):
        have.add("equivalent_transformation_config")
    if api_generation(qb) == 2:  # documented for mblt_compile/mxq_compile of 1.1+ only
        have.add("target_device")
    return have


def check_knobs(qb: Any, recipe: Recipe, allow_missing_knobs: bool) -> list[str]:
    """The recipe's knobs the installed qbcompiler lacks; one sentence stops the compile unless allowed."""
    missing = [k for k in needed_knobs(recipe) if k not in supported_knobs(qb)]
    if missing and not allow_missing_knobs:
        api = "1.0.x" if api_generation(qb) == 1 else "1.1+"
        raise BertnpuError(f"The installed qbcompiler ({api} API) lacks {', '.join(f'{k} ({KNOB_WHAT[k]})' for k in missing)}, which the recipe uses; "
                           "install qbcompiler 1.1 or newer, or pass --allow-missing-knobs (allow_missing_knobs=True) to compile without them.")
    return missing


def transformation_kwargs(qb: Any, recipe: Recipe) -> dict[str, Any]:
    """``equivalent_transformation_config`` with every switch the recipe names, on or off explicitly."""
    etc = qb.EquivalentTransformationConfig
    t = recipe.equivalent_transformation
    return {"equivalent_transformation_config": etc(norm_conv=etc.NormConv(apply=t.norm_conv), qk=etc.Qk(apply=t.qk),
                                                    vo=etc.Vo(apply=t.vo), ud=etc.Ud(apply=t.ud))}


def bit_kwargs(qb: Any, operator_names: list[str]) -> dict[str, Any]:
    return {"bit_config": qb.BitConfig(layer_overrides=qb.BitConfig.LayerOverrides(activation_16bits=list(operator_names)))}


def map_recipe_sites(qb: Any, module: Any, model: LoadedModel, feed: dict, recipe: Recipe, workdir: Path,
                     target: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    """Pass 1: ``mblt_compile`` to a temp file, read its graph, and resolve the recipe's 16-bit sites to operator names."""
    from ..quant.sites import list_sites
    from .mblt_map import graph_ops, map_sites

    mblt = workdir / "pass1.mblt"
    qb.mblt_compile(model=module, mblt_save_path=str(mblt), backend="torch", feed_dict=feed, cpu_offload=True, **target)
    load_mblt_model = importlib.import_module("qbcompiler.model_dict.serialize").load_mblt_model
    parsed, _ = load_mblt_model(str(mblt))
    site_map = map_sites(graph_ops(parsed), [s.name for s in list_sites(model)])
    names = site_map.resolve(recipe.activation_16bits)
    return dict(zip(recipe.activation_16bits, names)), names


def _calibration_path(calibration: Any, workdir: Path) -> str:
    """A folder as an absolute path; a listing or a CalibrationSet as a listing of absolute paths (qbcompiler's
    resolution of relative lines is not published)."""
    from ..data.calibration import CalibrationSet, load_calibration_set

    if not isinstance(calibration, CalibrationSet):
        path = Path(calibration)
        if path.is_dir():
            return str(path.resolve())
        calibration = load_calibration_set(path)
    listing = workdir / "npy_files.txt"
    listing.write_text("".join(f"{Path(f).resolve()}\n" for f in calibration.files))
    return str(listing)


def compile_mxq(model: LoadedModel, calibration: Any, recipe: Recipe | QuantConfig, out: str | os.PathLike, *,
                force: bool = False, device: Optional[str] = None, allow_missing_knobs: bool = False,
                log: Optional[Callable[[str], None]] = None) -> Path:
    """Compile exactly ``recipe`` to an ``.mxq`` with qbcompiler, in two passes.

    Pass 1 writes the MBLT graph to a temp file and maps the recipe's 16-bit sites to the
    compiler's operator names by graph structure (:mod:`bertnpu.device.mblt_map`); a site with
    no operator stops the compile. Pass 2 runs ``mxq_compile`` with the calibration config,
    ``bit_config`` and ``equivalent_transformation_config``. The compiled module is
    :class:`~bertnpu.device.export_wrapper.PoolingReadyBert` (returns what the pooling needs).
    The ``.mxq`` is written to a temp name and renamed, never over an existing one without
    ``force``; ``<out>.recipe.json`` beside it holds the recipe, the operator names and the output.

    Args:
        calibration: a calibration folder, an ``npy_files.txt`` listing, or a ``CalibrationSet``.
        recipe: a :class:`~bertnpu.quant.recipe.Recipe` (a ``QuantConfig`` means no overrides).
        allow_missing_knobs: compile with an older qbcompiler that lacks a knob the recipe uses.

    Example:
        >>> compile_mxq(model, "calib", Recipe.load("recipe.json"), "model.mxq")  # doctest: +SKIP
    """
    from ..quant.sites import list_sites
    from .compile_record import CompileRecord, record_path_for
    from .export_wrapper import PoolingReadyBert

    recipe = recipe if isinstance(recipe, Recipe) else Recipe(calibration=recipe)
    recipe.check_sites([s.name for s in list_sites(model)])
    out = check_writable(out, force, "compiled model")
    qb = load_qbcompiler()
    dropped = check_knobs(qb, recipe, allow_missing_knobs)
    module = PoolingReadyBert(model).eval()
    feed = build_feed_dict(model)
    extra: dict[str, Any] = {"device": device} if device else {}
    target = {"target_device": recipe.target_device} if recipe.target_device and "target_device" not in dropped else {}
    kwargs = quantization_kwargs(qb, recipe.calibration)
    operators: dict[str, str] = {}
    passed: dict[str, Any] = {"calibration": recipe.calibration.to_dict(), **target}
    if "equivalent_transformation_config" in supported_knobs(qb):
        kwargs.update(transformation_kwargs(qb, recipe))
        passed["equivalent_transformation"] = {k: getattr(recipe.equivalent_transformation, k) for k in ("norm_conv", "qk", "vo", "ud")}
    record_path = record_path_for(out)

    def write(tmp: Path) -> None:
        nonlocal operators
        # named like every bertnpu temp, so the next write into this folder removes it after a kill
        with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-compile-", dir=out.parent) as work, _streamed(log):
            workdir = Path(work)
            if recipe.activation_16bits and "bit_config" not in dropped:
                operators, names = map_recipe_sites(qb, module, model, feed, recipe, workdir, target)
                kwargs.update(bit_kwargs(qb, names))
                passed["activation_16bits"] = names
            calib_path = _calibration_path(calibration, workdir)
            qb.mxq_compile(model=module, save_path=str(tmp), calib_data_path=calib_path, backend="torch", feed_dict=feed,
                           **kwargs, **target, **extra)
        record = CompileRecord(recipe, module.output, operators, passed, tuple(dropped), f"{'1.1+' if api_generation(qb) == 2 else '1.0.x'}", model.name)
        record.save(record_path)  # before the .mxq appears: an .mxq is never without its record

    try:
        atomic_write(out, write, force=force, what="compiled model")
    except BaseException:
        if not out.exists():
            record_path.unlink(missing_ok=True)
        raise
    return out


def config_path_for(mxq: str | os.PathLike) -> Path:
    return Path(f"{mxq}.config.json")


def compile_mblt(model: LoadedModel, out: str | os.PathLike, *, force: bool = False) -> Path:
    """Write the MBLT graph (``mblt_compile(..., cpu_offload=True)``) of the module ``compile_mxq`` compiles, for Netron."""
    from .export_wrapper import PoolingReadyBert

    out = check_writable(out, force, "MBLT file")
    qb = load_qbcompiler()
    feed = build_feed_dict(model)
    module = PoolingReadyBert(model).eval()
    atomic_write(out, lambda tmp: qb.mblt_compile(model=module, mblt_save_path=str(tmp), backend="torch", feed_dict=feed, cpu_offload=True), force=force)
    return out
