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
from . import qb_calls

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
    """3 for qbcompiler 1.3+, 2 for 1.1/1.2 (``CalibrationConfig``), 1 for 1.0.x (``QuantizationConfig.from_kwargs``)."""
    return qb_calls.api_generation(qb)


def quantization_kwargs(qb: Any, config: QuantConfig) -> dict[str, Any]:
    """The keyword argument of ``mxq_compile`` that carries ``config``, for the installed generation."""
    return qb_calls.calibration_kwargs(qb, config.to_dict())


def build_feed_dict(model: LoadedModel) -> dict[str, Any]:
    """Wrapped tensors of a sample sentence with a dynamic sequence dimension, the mask marked as padding mask
    (``wrap_tensor``/``set_attention_mask`` from the 1.0-1.2 layout or 1.3's ``model_dict_legacy``)."""
    return qb_calls.build_feed(dict(model.tokenizer(FEED_SENTENCE, return_tensors="pt")))


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


KNOB_WHAT = qb_calls.KNOB_WHAT


def needed_knobs(recipe: Recipe) -> list[str]:
    """The ``mxq_compile`` keyword arguments beyond the calibration config that ``recipe`` needs."""
    return qb_calls.needed_knobs(recipe.to_dict())


def supported_knobs(qb: Any) -> set[str]:
    """Knobs the installed qbcompiler has: BitConfig needs the parsed-graph API too (to find operator names)."""
    return qb_calls.supported_knobs(qb)


def check_knobs(qb: Any, recipe: Recipe, allow_missing_knobs: bool) -> list[str]:
    """The recipe's knobs the installed qbcompiler lacks; one sentence stops the compile unless allowed."""
    missing = [k for k in needed_knobs(recipe) if k not in supported_knobs(qb)]
    if missing and not allow_missing_knobs:
        raise BertnpuError(qb_calls.missing_knobs_sentence(qb, missing).replace("--allow-missing-knobs", "--allow-missing-knobs (allow_missing_knobs=True)"))
    return missing


def transformation_kwargs(qb: Any, recipe: Recipe) -> dict[str, Any]:
    """``equivalent_transformation_config`` with every switch the recipe names, on or off explicitly."""
    t = recipe.equivalent_transformation
    return qb_calls.transformation_kwargs(qb, {k: getattr(t, k) for k in ("norm_conv", "qk", "vo", "ud")})[0]


def bit_kwargs(qb: Any, operator_names: list[str]) -> dict[str, Any]:
    return qb_calls.bit_kwargs(qb, operator_names)


def map_recipe_sites(qb: Any, module: Any, model: LoadedModel, feed: dict, recipe: Recipe, workdir: Path,
                     target: dict[str, Any]) -> list[str]:
    """Pass 1: ``mblt_compile`` to a temp file, read its graph, and resolve the recipe's 16-bit sites to operator names.

    Returns the operator names for ``bit_config``: one per site of ``recipe.activation_16bits``, in its order,
    then the recipe's raw ``activation_16bits_operators`` not already among them."""
    from ..quant.sites import list_sites
    from .mblt_map import graph_ops, map_sites

    mblt = workdir / "pass1.mblt"
    qb.mblt_compile(**qb_calls.mblt_compile_kwargs(module, mblt, feed, target.get("target_device")))
    parsed, _ = qb_calls.mblt_reader()(str(mblt))
    ops = graph_ops(parsed)
    site_map = map_sites(ops, [s.name for s in list_sites(model)])
    names = site_map.resolve(recipe.activation_16bits)
    qb_calls.check_operator_names(recipe.activation_16bits_operators, [o.name for o in ops])
    raw = [n for n in recipe.activation_16bits_operators if n not in names]
    return names + raw


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
                log: Optional[Callable[[str], None]] = None, target_device: Optional[str] = None) -> Path:
    """Compile exactly ``recipe`` to an ``.mxq`` with qbcompiler, in two passes.

    Pass 1 writes the MBLT graph to a temp file and maps the recipe's 16-bit sites to the
    compiler's operator names by graph structure (:mod:`bertnpu.device.mblt_map`); a site with
    no operator stops the compile. Pass 2 runs ``mxq_compile`` with the calibration config,
    ``bit_config`` and ``equivalent_transformation_config``. The compiled module is
    :class:`~bertnpu.device.export_wrapper.PoolingReadyBert` (returns what the pooling needs).
    The ``.mxq`` is written to a temp name and renamed, never over an existing one without
    ``force``; ``<out>.recipe.json`` beside it (:class:`~bertnpu.device.compile_record.CompileRecord`) holds
    the recipe, the 16-bit sites and the operator names passed for them, and the output.

    Args:
        calibration: a calibration folder, an ``npy_files.txt`` listing, or a ``CalibrationSet``.
        recipe: a :class:`~bertnpu.quant.recipe.Recipe` (a ``QuantConfig`` means no overrides).
        allow_missing_knobs: compile with an older qbcompiler that lacks a knob the recipe uses.
        target_device: overrides the recipe's; qbcompiler 1.3 needs one of ``qb_calls.TARGET_DEVICES``.

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
    generation = api_generation(qb)
    qb_calls.check_version(recipe.qbcompiler_version, qb)
    chosen = qb_calls.resolve_target_device(generation, recipe.target_device, target_device)
    dropped = check_knobs(qb, recipe.with_(target_device=chosen), allow_missing_knobs)
    module = PoolingReadyBert(model).eval()
    feed = build_feed_dict(model)
    target = qb_calls.target_kwargs(chosen if "target_device" not in dropped else None)
    kwargs = quantization_kwargs(qb, recipe.calibration)
    sites_16bit: tuple[str, ...] = ()
    operators_16bit: list[str] = []
    passed: dict[str, Any] = {"calibration": recipe.calibration.to_dict(), **target}
    if "equivalent_transformation_config" in supported_knobs(qb):
        kwargs.update(transformation_kwargs(qb, recipe))
        passed["equivalent_transformation"] = {k: getattr(recipe.equivalent_transformation, k) for k in ("norm_conv", "qk", "vo", "ud")}
    record_path = record_path_for(out)

    def write(tmp: Path) -> None:
        nonlocal sites_16bit, operators_16bit
        # named like every bertnpu temp, so the next write into this folder removes it after a kill
        with tempfile.TemporaryDirectory(prefix=f"{TEMP_PREFIX}{os.getpid()}-compile-", dir=out.parent) as work, _streamed(log):
            workdir = Path(work)
            if (recipe.activation_16bits or recipe.activation_16bits_operators) and "bit_config" not in dropped:
                operators_16bit = map_recipe_sites(qb, module, model, feed, recipe, workdir, target)
                sites_16bit = recipe.activation_16bits
                kwargs.update(bit_kwargs(qb, operators_16bit))
            calib_path = _calibration_path(calibration, workdir)
            qb.mxq_compile(**qb_calls.mxq_compile_kwargs(module, tmp, calib_path, feed, kwargs, target.get("target_device"), device))
        record = CompileRecord(recipe, module.output, sites_16bit=sites_16bit, operators_16bit=tuple(operators_16bit), passed=passed,
                               knobs_dropped=tuple(dropped), qbcompiler_api=qb_calls.API_LABELS[generation], model=model.name,
                               qbcompiler_version=qb_calls.installed_version(qb))
        record.save(record_path)  # before the .mxq appears: an .mxq is never without its record

    try:
        atomic_write(out, write, force=force, what="compiled model")
    except BaseException:
        if not out.exists():
            record_path.unlink(missing_ok=True)
        raise
    return out


def compile_mblt(model: LoadedModel, out: str | os.PathLike, *, force: bool = False, target_device: Optional[str] = None) -> Path:
    """Write the MBLT graph (``mblt_compile(..., cpu_offload=True)``) of the module ``compile_mxq`` compiles, for Netron."""
    from .export_wrapper import PoolingReadyBert

    out = check_writable(out, force, "MBLT file")
    qb = load_qbcompiler()
    target_device = qb_calls.resolve_target_device(api_generation(qb), None, target_device)
    feed = build_feed_dict(model)
    module = PoolingReadyBert(model).eval()
    atomic_write(out, lambda tmp: qb.mblt_compile(**qb_calls.mblt_compile_kwargs(module, tmp, feed, target_device)), force=force)
    return out
