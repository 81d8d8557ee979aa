"""``bertnpu doctor``: one screen of what this machine has for bertnpu, to paste into a support ticket.

Versions come from package metadata (nothing heavy is imported; qbruntime's says where its came
from, see :func:`~bertnpu.device.preflight.runtime_version`), the NPUs from
``qbruntime.get_available_devices()`` with its native log lines captured, qbcompiler from an
import attempt (it is not on PyPI: without it, the Docker image of the recipe's release).
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import sys
from importlib import metadata
from typing import Any, Optional

from . import qb_calls

PACKAGES = (("torch", "torch"), ("transformers", "transformers"), ("bertnpu", "bertnpu"), ("mobilint-qb-runtime", "qbruntime"))


def _version(dist: str) -> Optional[str]:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _runtime() -> dict[str, Any]:
    from .preflight import native_log, runtime_version

    try:
        qb = importlib.import_module("qbruntime")
    except ImportError:
        return {"installed": False, "fix": "pip install 'bertnpu[npu]' (mobilint-qb-runtime, CPython 3.11 wheel)"}
    with native_log(qb) as log:
        try:
            devices = list(qb.get_available_devices())
            error = None
        except Exception as exc:  # noqa: BLE001  a broken driver install raises from native code; doctor reports, never fails
            devices, error = [], f"{exc.__class__.__name__}: {str(exc).splitlines()[0]}"
    return {"installed": True, **runtime_version(qb), "devices": devices, "error": error or log.reason() or None,
            "test_double": bool(getattr(qb, "IS_TEST_DOUBLE", False))}


def _compiler(recipe_version: Optional[str]) -> dict[str, Any]:
    wanted = qb_calls.major_minor(recipe_version) or qb_calls.CURRENT_VERSION
    cpu, cuda = qb_calls.docker_images(wanted)
    try:
        qb = importlib.import_module("qbcompiler")
    except ImportError:
        return {"installed": False, "wanted": wanted, "docker_cpu": cpu, "docker_cuda": cuda}
    have = qb_calls.installed_version(qb)
    return {"installed": True, "version": have, "api": qb_calls.API_LABELS.get(qb_calls.api_generation(qb), "?"), "wanted": wanted,
            "matches": qb_calls.major_minor(have) in ("", wanted), "docker_cpu": cpu, "docker_cuda": cuda,
            "test_double": bool(getattr(qb, "IS_TEST_DOUBLE", False))}


def _default_model() -> dict[str, Any]:
    from ..errors import BertnpuError
    from ..model.load import default_model_path

    try:
        path = default_model_path()
    except BertnpuError as exc:
        return {"found": False, "fix": str(exc)}
    return {"found": path.is_dir(), "path": str(path)}


def _stsb(stsb_dir: Optional[str]) -> dict[str, Any]:
    from ..data.stsb import ENV_VAR, resolve_stsb_dir

    folder = resolve_stsb_dir(stsb_dir)
    if folder is None:
        return {"found": False, "fix": f"pass --stsb-dir or set {ENV_VAR} to the folder with sts-{{train,dev,test}}.csv"}
    files = [n for n in ("sts-train.csv", "sts-dev.csv", "sts-test.csv") if (folder / n).is_file()]
    return {"found": len(files) == 3, "path": str(folder), "files": files}


def doctor_report(*, recipe_version: Optional[str] = None, stsb_dir: Optional[str] = None) -> dict[str, Any]:
    """Everything ``bertnpu doctor`` shows, as a flat-ish dict (the ``--json`` output)."""
    chromium = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    return {
        "python": f"{platform.python_version()} ({sys.implementation.name}, {platform.machine()})",
        "packages": {name: _version(dist) for dist, name in PACKAGES},
        "qbruntime": _runtime(), "qbcompiler": _compiler(recipe_version),
        "chromium": chromium, "default_model": _default_model(), "stsb": _stsb(stsb_dir),
        "env": {k: os.environ[k] for k in ("QBRUNTIME_NPU_TIMEOUT_MS", "QBRUNTIME_SIMD_LEVEL") if k in os.environ},
    }


def format_doctor(r: dict[str, Any]) -> str:
    """The report as the lines ``bertnpu doctor`` prints."""
    p = r["packages"]
    rt, qc = r["qbruntime"], r["qbcompiler"]
    lines = [f"python        {r['python']}"] + [f"{k:<13} {v or 'not installed'}" for k, v in p.items() if k != "qbruntime"]
    if rt["installed"]:
        npus = ", ".join(rt["devices"]) or "none"
        reported = rt["version_reported"]
        # the wheel's module says "v1.5.0" for 1.5.0: named only when it says another release
        says = f" (the module says {reported})" if reported and reported.removeprefix("v") != (rt["version"] or "").removeprefix("v") else ""
        lines.append(f"qbruntime     {rt['version'] or 'unknown version'}{says}{' (bertnpu TEST DOUBLE)' if rt['test_double'] else ''}; NPUs detected: {npus}"
                     + (f" ({rt['error']})" if rt.get("error") and not rt["devices"] else ""))
    else:
        lines.append(f"qbruntime     not installed ({rt['fix']})")
    if qc["installed"]:
        note = "" if qc["matches"] else f"; recipes for {qc['wanted']} need {qc['docker_cpu']}"
        lines.append(f"qbcompiler    {qc['version'] or 'unknown version'} ({qc['api']} API){' (bertnpu TEST DOUBLE)' if qc['test_double'] else ''}{note}")
    else:
        lines.append(f"qbcompiler    not installed (not on PyPI): compile with `bertnpu compile --bundle DIR` inside {qc['docker_cpu']} "
                     f"(or {qc['docker_cuda']})")
    lines.append(f"chromium      {r['chromium'] or 'not found (needed by the browser test: bash .ci/setup --browser)'}")
    m, s = r["default_model"], r["stsb"]
    lines.append(f"default model {'found: ' + m['path'] if m['found'] else 'not found: ' + m.get('fix', m.get('path', ''))}")
    lines.append(f"STS-B         {'found: ' + s['path'] if s['found'] else 'not found: ' + s.get('fix', s.get('path', '') + ' lacks sts-*.csv')}")
    for k, v in r["env"].items():
        lines.append(f"env           {k}={v}")
    return "\n".join(lines)

