"""The ``bertnpu`` command: parses arguments, calls the stages of :mod:`bertnpu.stages`, prints their results.

One module per command group (``model``, ``data``, ``quant``, ``device``, ``pipeline``, ``render``); each command
is a handler registered with :func:`~bertnpu.cli.common.command` next to the option helpers it uses, and an
option shared by several commands is declared once, in :mod:`bertnpu.cli.common`.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import Optional, Sequence

from ..errors import BertnpuError, BertnpuWarning
from ..version import __version__
# each module registers its commands; this order is the order of `bertnpu --help`
from . import model, data, quant, device, bench, doctor, mblt, pipeline, render  # noqa: F401,E402  isort: skip
from .common import COMMANDS, OneLineParser

__all__ = ["COMMANDS", "build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bertnpu", description="BERT sentence embeddings to a Mobilint NPU, with quantization made visible.")
    parser.add_argument("--version", action="version", version=f"bertnpu {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for cmd in COMMANDS.values():
        p = sub.add_parser(cmd.name, help=cmd.help)
        for add in cmd.options:
            add(p)
    return parser


def _interrupted(args) -> str:
    """What an interrupt leaves behind, truly: every writer is atomic; run and sweep keep what they finished to resume."""
    if args.command == "run":
        return f"bertnpu: interrupted; the stages finished so far were kept in {args.out} (rerun the same command to resume), and no partial file was written."
    if args.command == "sweep":
        return f"bertnpu: interrupted; the configs scored so far were kept in {args.out}/sweep_cache.jsonl (rerun to resume), and no partial file was written."
    return "bertnpu: interrupted; files finished before the interrupt were kept, and no partial file was written."


def _decide_kernel_policy() -> None:
    """The edge: the process's thread policy and the integer-GEMM choice (``BERTNPU_INTEGER_GEMM=0``: float), once."""
    import os

    from ..quant.kernel_policy import decide_once, integer_gemm_from_environment

    decide_once(integer_gemm_from_environment(os.environ))


def _note_printer(python_show):
    """A BertnpuWarning is one ``bertnpu: note:`` line on stderr; other warnings keep Python's display."""
    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, BertnpuWarning):
            print(f"bertnpu: note: {message}", file=sys.stderr)
        else:
            python_show(message, category, filename, lineno, file, line)
    return show


def main(argv: Optional[Sequence[str]] = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a bad argument (one line already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        _decide_kernel_policy()
        with warnings.catch_warnings():  # restores the default display afterwards (in-process callers, tests)
            warnings.showwarning = _note_printer(warnings.showwarning)
            return COMMANDS[args.command].handler(args)
    except BertnpuError as exc:
        print(f"bertnpu: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `bertnpu sites | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print(_interrupted(args), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
