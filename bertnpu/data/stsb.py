"""STS Benchmark pairs from the original release folder or from the hub (mteb/stsbenchmark-sts)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import BertnpuError

SPLITS = ("train", "validation", "test")
_FILES = {"train": "sts-train.csv", "validation": "sts-dev.csv", "test": "sts-test.csv"}
ENV_VAR = "BERTNPU_STSB_DIR"
HUB_DATASET = "mteb/stsbenchmark-sts"
SCORE_RANGE = (0.0, 5.0)  # STS-B gold scores are means of 0-5 annotator ratings
_RELEASE_FIX = "use the original STS Benchmark release files."
MAX_STSB_BYTES = 256 * 2**20  # the release's largest file, sts-train.csv, is about 1 MB


@dataclass(frozen=True)
class StsPairs:
    """Sentence pairs with gold similarity scores (0-5)."""

    sentence1: list[str]
    sentence2: list[str]
    scores: np.ndarray  # [n] float64
    split: str
    source: str

    def __len__(self) -> int:
        return len(self.scores)

    def content_hash(self) -> str:
        """SHA-256 of the pairs themselves (sentences and scores, in order): the key a cached result needs.

        Two files with the same name but edited scores hash differently, so no cache serves one for the other.
        """
        import hashlib

        digest = hashlib.sha256()
        for a, b in zip(self.sentence1, self.sentence2):
            digest.update(a.encode("utf-8") + b"\x00" + b.encode("utf-8") + b"\x00")
        digest.update(np.ascontiguousarray(self.scores, dtype="<f8").tobytes())
        digest.update(str(len(self.scores)).encode())
        return digest.hexdigest()

    def subset(self, n: int) -> "StsPairs":
        """The first ``n`` pairs (for quick runs and tests)."""
        return StsPairs(self.sentence1[:n], self.sentence2[:n], self.scores[:n], self.split, self.source)

    def sample(self, n: int, seed: int = 0) -> "StsPairs":
        """A seeded random sample of ``n`` pairs, in file order (all of them when ``n`` is 0 or not smaller): the one
        sampler of the sweep's proxy and the Simulate panel."""
        if not n or n >= len(self):
            return self
        idx = np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False))
        return StsPairs([self.sentence1[i] for i in idx], [self.sentence2[i] for i in idx], self.scores[idx], self.split, self.source)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise BertnpuError(f"Unknown split {split!r}; use one of {', '.join(SPLITS)}.")
    return split


def resolve_stsb_dir(stsb_dir: Optional[str | os.PathLike]) -> Optional[Path]:
    """The folder given as an option, else ``$BERTNPU_STSB_DIR``, else None (use the hub)."""
    value = stsb_dir if stsb_dir is not None else os.environ.get(ENV_VAR) or None
    return Path(value).expanduser() if value is not None else None


def read_stsb_file(path: Path, split: str) -> StsPairs:
    """Parse one file of the original release: tab-separated, no quoting.

    Columns: genre, file, year, id, score, sentence1, sentence2, then (on some lines)
    license/source fields, which are ignored.
    """
    from ..schema import read_text_file
    from ..schema import check_size

    check_size(path, "STS-B file", _RELEASE_FIX, MAX_STSB_BYTES)
    text = read_text_file(path, "STS-B file", _RELEASE_FIX)
    s1, s2, scores = [], [], []
    low, high = SCORE_RANGE
    lines = text.split("\n")  # not splitlines(): sentences may hold \x1c, \u2028 and other line-ish characters
    if lines and lines[-1] == "":
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        fields = line.rstrip("\r").split("\t")
        if len(fields) < 7:
            raise BertnpuError(f"Line {lineno} of {str(path)!r} has {len(fields)} tab-separated fields, fewer than 7; {_RELEASE_FIX}")
        try:
            score = float(fields[4])
        except ValueError:
            raise BertnpuError(f"Line {lineno} of {str(path)!r} has score {fields[4]!r}, not a number; {_RELEASE_FIX}") from None
        if not math.isfinite(score) or not low <= score <= high:
            raise BertnpuError(f"Line {lineno} of {str(path)!r} has score {fields[4]!r}, outside STS-B's {low:g}-{high:g} range; {_RELEASE_FIX}")
        scores.append(score)
        s1.append(fields[5])
        s2.append(fields[6])
    if not scores:
        raise BertnpuError(f"The STS-B file {str(path)!r} holds no sentence pairs; {_RELEASE_FIX}")
    return StsPairs(s1, s2, np.asarray(scores, dtype=np.float64), split, str(path))


def load_stsb(split: str = "test", stsb_dir: Optional[str | os.PathLike] = None) -> StsPairs:
    """Load one STS-B split (train / validation / test).

    From ``stsb_dir`` (or ``$BERTNPU_STSB_DIR``) holding ``sts-{train,dev,test}.csv``;
    with neither, from the hub dataset ``mteb/stsbenchmark-sts`` via ``datasets``.

    Example:
        >>> len(load_stsb("test", "../shared/data/stsbenchmark"))
        1379
    """
    check_split(split)
    folder = resolve_stsb_dir(stsb_dir)
    if folder is not None:
        if not folder.is_dir():
            raise BertnpuError(f"STS-B folder {str(folder)!r} does not exist; pass --stsb-dir (or {ENV_VAR}) pointing to the folder with sts-train.csv, sts-dev.csv and sts-test.csv.")
        path = folder / _FILES[split]
        if not path.is_file():
            raise BertnpuError(f"STS-B folder {str(folder)!r} has no {_FILES[split]} for split {split!r}; use the original release folder with sts-train.csv, sts-dev.csv and sts-test.csv.")
        return read_stsb_file(path, split)
    return _load_from_hub(split)


def _load_from_hub(split: str) -> StsPairs:
    from ..model.hub import hub_reachable

    advice = f"pass --stsb-dir DIR or set {ENV_VAR}=DIR to a folder with sts-train.csv, sts-dev.csv and sts-test.csv."
    if not hub_reachable():
        raise BertnpuError(f"No STS-B folder was given and the Hugging Face hub (for {HUB_DATASET!r}) cannot be reached; {advice}")
    try:
        import datasets

        ds = datasets.load_dataset(HUB_DATASET, split=split)
    except Exception as exc:  # offline, missing package, hub errors: one advice
        raise BertnpuError(
            f"No STS-B folder was given and {HUB_DATASET!r} could not be loaded from the hub ({exc.__class__.__name__}); {advice}"
        ) from exc
    scores = np.asarray(ds["score"], dtype=np.float64)
    low, high = SCORE_RANGE
    bad = np.flatnonzero(~np.isfinite(scores) | (scores < low) | (scores > high))
    if len(scores) == 0 or len(bad):
        raise BertnpuError(f"The hub copy of {HUB_DATASET!r} ({split}) holds no pairs or scores outside {low:g}-{high:g}; {advice}")
    return StsPairs(list(ds["sentence1"]), list(ds["sentence2"]), scores, split, HUB_DATASET)
