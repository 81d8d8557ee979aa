"""How the numeric kernel uses the machine: torch threads, serial fake-quant passes, the integer GEMM.

Decided once per process by the caller at the edge (the CLI's ``main``, ``bertnpu run``, a widget's
first press), with one rule (:func:`machine_policy`), and applied with :func:`apply_policy`; the
kernel itself (:mod:`~bertnpu.quant.fake_quant`, :mod:`~bertnpu.quant.simulate`,
:mod:`~bertnpu.quant.int_gemm`) reads no load average, counts no processes and reads no
environment variable. None of these choices changes a number: every fake-quant op is elementwise,
GEMM splits its outputs and not its sums (checked bit for bit on the default model), and the
integer GEMM is the exact sum of what the float path rounds (``tests/test_int_gemm.py``).
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Mapping, Optional

from ..errors import BertnpuError

# BERTNPU_INTEGER_GEMM=0 starts a process with every simulated Linear in float (read by the CLI, not on import).
INTEGER_GEMM_ENV = "BERTNPU_INTEGER_GEMM"


@dataclass(frozen=True)
class KernelPolicy:
    """``threads``: torch threads for the process (None: torch's own); ``serial_fake_quant``: run each fake-quant pass
    on one thread; ``integer_gemm``: 8-bit Linears as integer GEMMs (None: where ``torch._int_mm`` is exact on this
    machine, False: the float path); ``why``: one line saying what was changed and why (empty when nothing was)."""

    threads: Optional[int] = None
    # measured on 2 shared cores with 2 torch threads and a busy machine: 4 fake-quant ops of 0.08 ms took 28 ms (every
    # OpenMP region waits for a scheduler slice); serial passes brought a simulated evaluation from 3.95x to 1.37x of FP32.
    # With the threads fitted to the free cores (machine_policy) that wait does not arise, so this is off unless chosen.
    serial_fake_quant: bool = False
    integer_gemm: Optional[bool] = None
    why: str = ""

    def __post_init__(self) -> None:
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise BertnpuError(f"KernelPolicy.threads={self.threads!r} is invalid; use a whole number of at least 1, or None for torch's own.")


_STATE = {"policy": KernelPolicy(), "decided": False}


def current_policy() -> KernelPolicy:
    """The policy the kernel follows now (the default until a caller applies one)."""
    return _STATE["policy"]


def apply_policy(policy: KernelPolicy) -> KernelPolicy:
    """Make ``policy`` the process's (setting torch's threads when it names them); returns the previous one."""
    import torch

    previous = _STATE["policy"]
    if policy.threads is not None:
        torch.set_num_threads(policy.threads)
    _STATE["policy"] = policy
    _STATE["decided"] = True
    return previous


@contextlib.contextmanager
def using_policy(policy: KernelPolicy):
    """Run the block under ``policy``, then restore the previous policy and torch's threads (benchmarks, tests)."""
    import torch

    threads, decided = torch.get_num_threads(), _STATE["decided"]
    previous = apply_policy(policy)
    try:
        yield policy
    finally:
        _STATE["policy"], _STATE["decided"] = previous, decided
        torch.set_num_threads(threads)


def usable_cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def busy_elsewhere(samples: int = 2, pause: float = 0.02) -> Optional[int]:
    """Processes other than this one running on a CPU now (the fewest over a few looks), or None where /proc is missing."""
    me, counts = os.getpid(), []
    for i in range(samples):
        try:
            names = os.listdir("/proc")
        except OSError:
            return None
        running = 0
        for pid in names:
            if not pid.isdigit() or int(pid) == me:
                continue
            try:
                with open(f"/proc/{pid}/stat", "rb") as fh:
                    running += fh.read().rsplit(b")", 1)[1].split()[0] == b"R"
            except (OSError, IndexError):
                continue  # ended meanwhile
        counts.append(running)
        if i + 1 < samples:
            time.sleep(pause)
    return min(counts)


def machine_policy(integer_gemm: Optional[bool] = None, busy: Optional[int] = -1) -> KernelPolicy:
    """The one rule: with other processes already running on the cores, fewer torch threads (cores minus those processes).

    Why: every torch op is an OpenMP region whose threads wait for each other; with a core taken by another
    process, two threads on 2 cores measured a simulated encode at 13-23 s against 2.0 s on one thread, and a
    quick run at 139 s against about 22 s. With the threads fitted to the free cores no region waits for a
    scheduler slice, so the fake-quant passes keep torch's threads (``serial_fake_quant`` stays an explicit
    choice, for benchmarks). ``busy``: processes running elsewhere (-1: look now).
    """
    import torch

    threads = torch.get_num_threads()
    busy = busy_elsewhere() if busy == -1 else busy
    cores = usable_cores()
    use = max(1, min(threads, cores - busy)) if busy is not None else threads
    if use >= threads:
        return KernelPolicy(integer_gemm=integer_gemm)
    return KernelPolicy(threads=use, integer_gemm=integer_gemm,
                        why=f"{busy} other process(es) running on {cores} cores: {use} torch thread(s) (same results, less waiting)")


def integer_gemm_from_environment(environ: Mapping[str, str]) -> Optional[bool]:
    """The integer-GEMM choice an environment asks for: ``BERTNPU_INTEGER_GEMM=0`` is False (the float path), else None."""
    return False if environ.get(INTEGER_GEMM_ENV) == "0" else None


def decide_once(integer_gemm: Optional[bool] = None) -> Optional[KernelPolicy]:
    """Apply :func:`machine_policy` unless this process already has a policy; returns the policy applied now, or None."""
    if _STATE["decided"]:
        return None
    policy = machine_policy(integer_gemm)
    apply_policy(policy)
    return policy
