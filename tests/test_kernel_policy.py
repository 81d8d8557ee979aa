"""The kernel's machine policy: one rule, decided once per process by the caller; the environment is read at the edge only."""

from __future__ import annotations

import pytest
import torch

from bertnpu.errors import BertnpuError
from bertnpu.quant import kernel_policy as kp


def test_policy_threads_follow_other_processes(monkeypatch):
    """A process spinning on a core is seen; with one busy core of two the process gets one torch thread, and it is restored."""
    import subprocess
    import sys
    import time

    if kp.busy_elsewhere() is None:
        pytest.skip("no /proc on this platform")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        assert kp.busy_elsewhere(samples=3) >= 1
    finally:
        spinner.kill()
        spinner.wait()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1}, raising=False)  # 2 cores
        policy = kp.machine_policy(busy=1)
        assert policy.threads == 1 and "1 other process" in policy.why
        with kp.using_policy(policy):
            assert torch.get_num_threads() == 1 and kp.current_policy() is policy
        assert torch.get_num_threads() == 2  # restored
        assert kp.machine_policy(busy=0) == kp.KernelPolicy() and torch.get_num_threads() == 2  # an idle machine keeps torch's threads
    finally:
        torch.set_num_threads(before)


def test_decided_once_per_process(monkeypatch):
    monkeypatch.setitem(kp._STATE, "decided", False)
    monkeypatch.setitem(kp._STATE, "policy", kp.KernelPolicy())
    monkeypatch.setattr(kp, "busy_elsewhere", lambda: 0)
    first = kp.decide_once(integer_gemm=False)
    assert first == kp.KernelPolicy(integer_gemm=False) and kp.current_policy() == first
    assert kp.decide_once() is None and kp.current_policy() == first  # a second caller changes nothing


def test_environment_is_read_at_the_edge_not_on_import():
    import os
    import subprocess
    import sys

    assert kp.integer_gemm_from_environment({"BERTNPU_INTEGER_GEMM": "0"}) is False
    assert kp.integer_gemm_from_environment({"BERTNPU_INTEGER_GEMM": "1"}) is None
    assert kp.integer_gemm_from_environment({}) is None
    code = "from bertnpu.quant import int_gemm; print(int_gemm.enabled())"
    run = lambda value: subprocess.run([sys.executable, "-c", code], env={**os.environ, "BERTNPU_INTEGER_GEMM": value},  # noqa: E731
                                       capture_output=True, text=True, check=True).stdout.split()
    assert run("0") == run("1")  # importing the kernel reads no environment


def test_bad_threads_are_one_sentence():
    with pytest.raises(BertnpuError, match="KernelPolicy.threads=0 is invalid"):
        kp.KernelPolicy(threads=0)
