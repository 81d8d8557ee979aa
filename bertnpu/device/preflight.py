"""Check a ``.mxq`` before any encoding: the file loads, its shapes fit the compile record, an NPU is there.

Runs in well under a second with the real ``qbruntime`` (it only parses the file and asks the
driver which devices exist), so ``bertnpu eval --mxq`` and notebook 05 fail before the FP32
reference is encoded. The runtime's native log lines (written by its C++ core past ``sys.stderr``:
to file descriptor 2, and to descriptor 1 once ``set_log_level`` was called; ``LogLevel.Off`` does
not silence the loader's "Unable to load" line; measured on qbruntime 1.5.0) are captured and shown only with ``verbose``; the first of them that explains a
load failure goes into the one-sentence error.

What the runtime reports (``mobilint_sdk_facts.md``, "Current releases"): input/output shapes per
variant, a negative dimension being variable (the length must be a multiple of its absolute
value), and ``infer`` picking the first variant whose shapes fit.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from ..errors import BertnpuError

# the qbruntime names bertnpu calls; tests/test_runtime_contract.py checks each against the real wheel and the double
RUNTIME_API = {
    "functions": ("get_available_devices", "get_model_summary", "set_log_level"),
    "classes": {
        "Accelerator": ("__init__",),
        "ModelConfig": ("__init__", "set_single_core_mode", "set_multi_core_mode", "set_global4_core_mode", "set_global8_core_mode",
                        "set_auto_core_mode"),
        "Model": ("__init__", "launch", "dispose", "infer", "infer_to_float", "infer_async", "get_model_input_shape", "get_model_output_shape",
                  "get_num_model_variants", "get_model_variant_handle", "get_input_buffer_info"),
        "LogLevel": (),
        "QbRuntimeError": (),
    },
}

RUNTIME_DISTRIBUTION = "mobilint-qb-runtime"  # qbruntime's name on PyPI


def runtime_version(qb: Any) -> dict[str, Optional[str]]:
    """Which qbruntime release the imported module is, and where that answer came from.

    ``version``: the installed package's metadata (``importlib.metadata.version("mobilint-qb-runtime")``)
    when the imported module is that package's own file; otherwise (a test double or another copy earlier
    on ``sys.path``) what the module says. ``version_reported``: what the module says of itself
    (``qbruntime.__version__``, its native library's, e.g. ``v1.5.0`` for the 1.5.0 wheel), None where it has none.

    Example:
        >>> runtime_version(importlib.import_module("qbruntime"))  # doctest: +SKIP
        {'version': '1.5.0', 'version_source': 'package metadata (mobilint-qb-runtime)', 'version_reported': 'v1.5.0', ...}
    """
    from importlib import metadata

    reported = str(getattr(qb, "__version__", "") or "") or None
    module = getattr(qb, "__file__", None)
    try:
        dist = metadata.distribution(RUNTIME_DISTRIBUTION)
        own = module is not None and Path(str(dist.locate_file("qbruntime/__init__.py"))).resolve() == Path(module).resolve()
    except metadata.PackageNotFoundError:
        dist, own = None, False
    if own:
        version, source = dist.version, f"package metadata ({RUNTIME_DISTRIBUTION})"
    else:
        why = f"the imported module is not the installed {RUNTIME_DISTRIBUTION} package's" if dist else f"no {RUNTIME_DISTRIBUTION} package installed"
        version, source = reported, f"qbruntime.__version__ ({why})"
    return {"version": version, "version_source": source, "version_reported": reported, "module": module}


# bertnpu's core-mode names -> the ModelConfig method that selects each (auto is ModelConfig()'s default)
CORE_MODES = {"auto": "set_auto_core_mode", "single": "set_single_core_mode", "multi": "set_multi_core_mode",
              "global4": "set_global4_core_mode", "global8": "set_global8_core_mode"}


@dataclass
class NativeLog:
    """What the runtime's native code wrote to stderr while captured."""

    text: str = ""

    def reason(self) -> str:
        """The most telling line: the one after "Unable to load;" or the last error line, without its log prefix."""
        lines = [line.strip() for line in self.text.splitlines() if line.strip()]
        for line in lines:
            if "Unable to load;" in line:
                return line.split("Unable to load;", 1)[1].strip().rstrip(".")
        return lines[-1].split("] ", 1)[-1].rstrip(".") if lines else ""


@contextlib.contextmanager
def native_log(qb: Any = None, verbose: bool = False) -> Iterator[NativeLog]:
    """Capture file descriptor 2 (and silence the runtime's logger) unless ``verbose``; the text is in the yielded object."""
    log = NativeLog()
    if qb is not None and hasattr(qb, "set_log_level") and hasattr(qb, "LogLevel"):
        # the level is process-wide: set it both ways (Warn shows the E-lines a user sees by default)
        qb.set_log_level(qb.LogLevel.Warn if verbose else qb.LogLevel.Off)
    if verbose:
        yield log
        return
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    with tempfile.TemporaryFile() as sink:
        for fd in saved:
            os.dup2(sink.fileno(), fd)
        try:
            yield log
        finally:
            for fd, copy in saved.items():
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            log.text = sink.read().decode(errors="replace")


@dataclass(frozen=True)
class MxqFacts:
    """What the runtime says about one ``.mxq`` (shapes per variant; a negative dimension is variable).

    The layout of a BERT ``.mxq``'s shapes is not published (qbruntime's own comment says model shapes are
    4D with the batch): bertnpu reads the last dimension as the hidden size and the one before it as the
    sequence length, which holds for ``(1, L, H)`` and ``(1, 1, L, H)`` alike, and ignores dimensions of 1.
    """

    path: str
    devices: tuple
    input_shapes: tuple  # per variant: tuple of input shapes
    output_shapes: tuple
    runtime_version: str = ""
    is_double: bool = False
    summary: str = ""
    notes: tuple = field(default_factory=tuple)

    @property
    def variants(self) -> int:
        return len(self.input_shapes)

    def seq_lengths(self) -> tuple:
        """The fixed sequence length of each variant (dimension -2 of its first input), ``()`` when variable."""
        lengths = tuple(int(v[0][-2]) for v in self.input_shapes if len(v[0]) >= 2)
        return () if any(n < 0 for n in lengths) else tuple(sorted(set(lengths)))

    def length_multiple(self) -> int:
        """For a variable length: the multiple it must be (``abs`` of the reported dimension)."""
        dims = [int(v[0][-2]) for v in self.input_shapes if len(v[0]) >= 2 and int(v[0][-2]) < 0]
        return max([abs(d) for d in dims] or [1])

    def has_mask_input(self) -> bool:
        return all(len(v) >= 2 for v in self.input_shapes)

    def padded_length(self, n: int) -> int:
        """The length a ``n``-token sentence is sent with: the smallest fitting variant, else ``n`` up to the multiple."""
        fixed = self.seq_lengths()
        if fixed:
            fits = [length for length in fixed if length >= n]
            if not fits:
                raise BertnpuError(f"A {n}-token sentence is longer than every variant of {Path(self.path).name} ({', '.join(map(str, fixed))} tokens); "
                                   "recompile with a longer variant, or evaluate shorter sentences.")
            return fits[0]
        m = self.length_multiple()
        return -(-n // m) * m

    def to_dict(self) -> dict:
        return {"mxq": self.path, "devices": list(self.devices), "variants": self.variants,
                "input_shapes": [[list(s) for s in v] for v in self.input_shapes],
                "output_shapes": [[list(s) for s in v] for v in self.output_shapes], "seq_lengths": list(self.seq_lengths()),
                "runtime": self.runtime_version, "test_double": self.is_double}


MISSING = ("qbruntime is not installed; install it with `pip install 'bertnpu[npu]'` (PyPI: mobilint-qb-runtime, CPython 3.11) "
           "on a machine with a Mobilint NPU.")


def load_qbruntime() -> Any:
    """Import qbruntime (this module and :mod:`.npu_runtime` are the only ones that do), or one sentence saying how to get it."""
    try:
        return importlib.import_module("qbruntime")
    except ImportError:
        raise BertnpuError(MISSING) from None


def _variant_shapes(npu: Any) -> tuple[tuple, tuple]:
    n = int(npu.get_num_model_variants()) if hasattr(npu, "get_num_model_variants") else 1
    ins, outs = [], []
    for i in range(max(n, 1)):
        src = npu.get_model_variant_handle(i) if n > 1 else npu
        ins.append(tuple(tuple(int(d) for d in s) for s in src.get_model_input_shape()))
        outs.append(tuple(tuple(int(d) for d in s) for s in src.get_model_output_shape()))
    return tuple(ins), tuple(outs)


def _check_shapes(facts: MxqFacts, record: Any, hidden: Optional[int]) -> None:
    name = Path(facts.path).name
    for i, (ins, outs) in enumerate(zip(facts.input_shapes, facts.output_shapes)):
        width = ins[0][-1] if ins and ins[0] else None
        if hidden is not None and width != hidden:
            raise BertnpuError(f"{name} takes inputs of shape {list(ins[0])} (variant {i}), but the model's hidden size is {hidden}: the .mxq was "
                               "compiled from another model; pass the model it was compiled from (--model) or recompile with `bertnpu compile`.")
        if record is None:
            continue
        want = record.output
        out = outs[0] if len(outs) == 1 else None
        core = tuple(d for d in out if d != 1) if out is not None else ()  # leading/batch 1s aside
        ok = core[-1:] == (want.hidden_size,) and len(core) == (2 if want.returns == "last_hidden_state" else 1)
        if not ok:
            raise BertnpuError(f"{name} returns shape(s) {[list(s) for s in outs]} (variant {i}, from the runtime), but {name}.recipe.json says it returns "
                               f"{want.returns} {want.shape_text}; recompile it with `bertnpu compile` or delete the stale .recipe.json.")


def _check_record(path: Path, record: Any, hidden_size: Optional[int], model_name: Optional[str] = None) -> None:
    if record is not None and hidden_size is not None and record.output.hidden_size != hidden_size:
        raise BertnpuError(f"{path.name}.recipe.json is for a model of hidden size {record.output.hidden_size} ({record.model or 'unnamed'}), but the "
                           f"model given has {hidden_size}; pass the model it was compiled from with --model.")
    # folder names, not full paths: a model folder copied elsewhere (or into a bundle) is still the same model
    if record is not None and record.model and model_name and Path(str(record.model)).name != Path(str(model_name)).name:
        raise BertnpuError(f"{path.name}.recipe.json is for the model {Path(str(record.model)).name!r}, not {Path(str(model_name)).name!r}; "
                           "pass the model it was compiled from with --model.")


def check_model(facts: MxqFacts, hidden_size: int, model_name: Optional[str] = None) -> MxqFacts:
    """The part of :func:`preflight` that needs the model (hidden size, name), for a preflight run before the model was loaded."""
    from .compile_record import read_compile_record

    record = read_compile_record(facts.path)
    _check_record(Path(facts.path), record, hidden_size, model_name)
    _check_shapes(facts, None, hidden_size)
    return facts


def preflight(mxq: str | os.PathLike, *, hidden_size: Optional[int] = None, require_npu: bool = True, verbose: bool = False,
              model_name: Optional[str] = None) -> MxqFacts:
    """Check ``mxq`` in the order a user fixes things: file there, qbruntime there, file loadable, shapes, an NPU.

    Each failure is one :class:`~bertnpu.errors.BertnpuError` sentence naming the fix.

    Example:
        >>> preflight("model.mxq", hidden_size=384).seq_lengths()  # doctest: +SKIP
        ()
    """
    from .compile_record import read_compile_record

    path = Path(mxq)
    if not path.is_file():
        raise BertnpuError(f"Compiled model {str(path)!r} does not exist; compile one with `bertnpu compile` or pass the right path.")
    record = read_compile_record(path)
    _check_record(path, record, hidden_size, model_name)
    qb = load_qbruntime()
    with native_log(qb, verbose) as log:
        try:
            npu = qb.Model(str(path), qb.ModelConfig())
            ins, outs = _variant_shapes(npu)
            summary = qb.get_model_summary(str(path)) if hasattr(qb, "get_model_summary") else ""
        except Exception as exc:  # noqa: BLE001  the runtime raises QbRuntimeError (a RuntimeError) for any file it cannot parse
            error = exc
        else:
            error = None
        devices = tuple(qb.get_available_devices())
    if error is not None:
        why = log.reason() or str(error).splitlines()[0]
        raise BertnpuError(f"{str(path)!r} is not a loadable .mxq (qbruntime: {why}); recompile it with `bertnpu compile` "
                           "(or the bundle's compile_mxq.py) and copy it again.")
    facts = MxqFacts(str(path), devices, ins, outs, runtime_version(qb)["version"] or "", bool(getattr(qb, "IS_TEST_DOUBLE", False)), summary)
    _check_shapes(facts, record, hidden_size if hidden_size is not None else (record.output.hidden_size if record else None))
    if require_npu and not devices:
        raise BertnpuError(f"No Mobilint NPU was found (qbruntime.get_available_devices() is empty), so {path.name} cannot run here; "
                           "run on the machine with the NPU and its driver (`bertnpu doctor` shows what is detected).")
    return facts


def panel_answer(mxq: str | os.PathLike, run: Callable[[Path], str]) -> str:
    """What a notebook panel shows for ``mxq``: ``run(mxq)``'s text, or one sentence saying why it cannot run here
    (no qbruntime, no ``.mxq`` yet, no NPU, a broken file)."""
    mxq = Path(mxq)
    try:
        load_qbruntime()
        if not mxq.is_file():
            return f"no {mxq.name} yet: compile it (Compile, or the bundle's docker commands), then run this cell again"
        return run(mxq)
    except BertnpuError as exc:
        return str(exc)
