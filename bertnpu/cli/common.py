"""What every ``bertnpu`` command shares: the command registry, option helpers (each option declared once) and argument readers."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from typing import Callable, Optional

from ..errors import BertnpuError

Options = Callable[[argparse.ArgumentParser], None]


class OneLineParser(argparse.ArgumentParser):
    """argparse with one line for a bad argument (the usage block is one --help away)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`.\n")


def whole_number(minimum: int, zero: Optional[str] = None) -> Callable[[str], int]:
    """An argparse type: an integer >= ``minimum`` (or 0 when ``zero`` says what 0 means); argparse names the option."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or (value < minimum and not (zero and value == 0)):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of {minimum} or more" + (f" (or 0 for {zero})" if zero else ""))
        return value
    return parse


@dataclass(frozen=True)
class Command:
    name: str
    help: str
    options: tuple[Options, ...]
    handler: Callable[[argparse.Namespace], int]


COMMANDS: dict[str, Command] = {}


def command(name: str, help: str, *options: Options):
    """Register a handler as ``bertnpu <name>`` with the option helpers that declare its arguments."""
    def register(fn):
        COMMANDS[name] = Command(name, help, options, fn)
        return fn

    return register


# -- option helpers (each option declared once) ------------------------------------------------
def batch_size_option(p: argparse.ArgumentParser) -> None:
    """``--batch-size``, declared once; unset, each stage keeps its own default (stats 32, evaluation 64), so no second copy lives here."""
    p.add_argument("--batch-size", type=whole_number(1), default=None,
                   help="samples per forward pass (default: the stage's own: 32 for stats, 64 for evaluation)")


def batch_size_arg(args) -> dict:
    """``{"batch_size": n}`` when ``--batch-size`` was given, else ``{}`` (the stage's default)."""
    return {"batch_size": args.batch_size} if getattr(args, "batch_size", None) is not None else {}


def model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="local folder or Hugging Face id (default: bundled all-MiniLM-L6-v2)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow code from the model repository (off by default)")


def pooling_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pooling", default="auto", help="auto (sentence-transformers config) | mean | cls | max | pooler")


def stsb_options(split: Optional[str] = None) -> Options:
    """``--stsb-dir``, and ``--split`` (default ``split``) when the command reads one split."""
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--stsb-dir", default=None, help="folder with sts-{train,dev,test}.csv (or env BERTNPU_STSB_DIR); default: hub mteb/stsbenchmark-sts")
        if split is not None:
            p.add_argument("--split", default=split, help="train | validation | test")
    return add


def json_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="last stdout line: one JSON object")


def force_option(what: str) -> Options:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--force", action="store_true", help=f"replace an existing {what}")
    return add


def limit_option(p: argparse.ArgumentParser) -> None:
    # Spearman needs at least 2 pairs to be a number at all
    p.add_argument("--limit", type=whole_number(2, zero="all pairs"), default=0, help="only the first N pairs (of each split)")


def stats_source_options(required: bool = False) -> Options:
    """``--calib`` (a calibration set) and, unless ``required``, ``--stats`` instead of it."""
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--calib", required=required, help="calibration folder or npy_files.txt (from `bertnpu calib`)")
        if not required:
            p.add_argument("--stats", help="stats file from `bertnpu stats` (instead of --calib)")
    return add


class _RecipeOnce(argparse.Action):
    """Stores the recipe path; a second one (``--recipe`` and its alias ``--config`` together) is an error, not a silent pick."""

    def __call__(self, parser, namespace, values, option_string=None):
        if getattr(namespace, self.dest, None) is not None:
            parser.error(f"{option_string} {values} repeats the recipe {getattr(namespace, self.dest)}; pass --recipe once")
        setattr(namespace, self.dest, values)


def recipe_option(what: str = "recipe or QuantConfig JSON", default_text: str = "the tutorial's config") -> Options:
    """``--recipe FILE`` into ``args.recipe`` (None: ``default_text``), with ``--config``, its older name, as a hidden alias."""
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--recipe", action=_RecipeOnce, help=f"{what} (default: {default_text})")
        p.add_argument("--config", dest="recipe", action=_RecipeOnce, help=argparse.SUPPRESS)
    return add


def target_device_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target-device", help="qbcompiler's target_device, overriding the recipe's (1.3 needs one: aries-rb, regulus-ra, "
                                            "regulus-rb, regulus-rb-usb)")


def path_text(text: str) -> str:
    """An argparse type: a path that is not blank (an empty ``--out`` would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is empty; give a path (use . for the current folder)")
    return text


def out_option(help: str, required: bool = True, default: Optional[str] = None) -> Options:
    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("--out", required=required, default=default, help=help, type=path_text)
    return add


# -- shared argument readers ---------------------------------------------------------------------
def emit_json(data: dict) -> None:
    print(json.dumps(data, sort_keys=True, default=float))


def line_then_json(args, line: str, data: dict) -> int:
    """Print the command's one-line summary; with --json, ``data`` as the last stdout line."""
    print(line)
    if args.json:
        emit_json(data)
    return 0


def load_model_arg(args):
    from ..model.load import load_model

    return load_model(args.model, pooling=getattr(args, "pooling", "auto"), trust_remote_code=args.trust_remote_code)


def pairs_arg(args, split: str):
    from ..data.stsb import load_stsb

    pairs = load_stsb(split, args.stsb_dir)
    return pairs.subset(args.limit) if getattr(args, "limit", 0) else pairs


def recipe_arg(path: Optional[str]):
    from ..quant.recipe import load_recipe

    return load_recipe(path)


def calibration_arg(args, model):
    from ..data.calibration import load_calibration_set

    return load_calibration_set(args.calib, model)


def stats_arg(args, model):
    """Stats from --stats FILE, or collected from --calib DIR."""
    from ..quant.stats import load_stats
    from ..stages import StatsInputs, collect_stats

    if getattr(args, "stats", None):
        return load_stats(args.stats, model)
    if not args.calib:
        raise BertnpuError("Pass --calib DIR (a calibration set from `bertnpu calib`) or --stats FILE (from `bertnpu stats`).")
    return collect_stats(StatsInputs(model, calibration_arg(args, model), progress=not getattr(args, "json", False), describe=False)).stats


def floats_arg(text: str, option: str = "the list", allow_empty: bool = False) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise BertnpuError(f"Could not read {option} {text!r} as comma-separated numbers; write e.g. 0.99,0.999,1.0.") from None
    if not values and not allow_empty:
        raise BertnpuError(f"{option} {text!r} holds no numbers; give at least one, e.g. 0.99,0.999,1.0.")
    return values


def ints_arg(text: str, option: str = "the list", allow_empty: bool = False) -> list[int]:
    values = floats_arg(text, option, allow_empty)
    bad = [v for v in values if not math.isfinite(v) or v != int(v)]  # int() of nan or inf raises
    if bad:
        raise BertnpuError(f"{option} {text!r} holds {bad[0]:g}, not a whole number; write e.g. 0,1.")
    return [int(v) for v in values]



def warn_moot_overrides(recipe) -> None:
    """One stderr line when 16-bit sites include ones whose override was seen to change nothing on the device."""
    from ..quant.precision import override_no_effect

    moot = [s for s in recipe.activation_16bits if override_no_effect(s)]
    if moot:
        shown = ", ".join(moot[:3]) + (f" and {len(moot) - 3} more" if len(moot) > 3 else "")
        print(f"note: 16-bit site(s) {shown}: {override_no_effect(moot[0])}; the simulated gain may not appear on the NPU.", file=sys.stderr)


def list_sites_of(model):
    from ..quant.sites import list_sites

    return list_sites(model)

