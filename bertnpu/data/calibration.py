"""Calibration data in qbcompiler's format: one ``[1, seq_len, hidden]`` float32 ``.npy`` per sentence.

Each sentence is tokenized alone (no padding) and passed through the CPU embedding
part, as in Mobilint's tutorial. Beside the ``.npy`` files: ``npy_files.txt`` (one path
per line, usable as qbcompiler's ``calib_data_path``) and ``manifest.json``.
"""

from __future__ import annotations

import json
import os
import warnings
from tokenize import TokenError
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from ..version import __version__
from ..artifacts import atomic_directory, path_inside, read_json
from ..schema import read_text_file
from ..model.sentence_encoder import length_sorted_batches, tokenize
from ..errors import BertnpuError
from ..schema import Field, Schema, check_size
from ..model.load import LoadedModel
from ..model.cpu_part import CpuEmbedding, check_finite, embedding_hash, weight_dict_of
from .stsb import SCORE_RANGE, StsPairs, check_split, load_stsb

STRATEGIES = ("random", "length-stratified", "score-stratified")
COLUMNS = ("sentence1", "sentence2")
SCHEMA_VERSION = 1
LENGTH_BINS = 8
SCORE_BINS = 5


@dataclass(frozen=True)
class CalibrationSpec:
    """What to sample: ``count`` unique sentences of an STS-B ``split`` / ``column``."""

    count: int = 256
    seed: int = 0
    split: str = "validation"
    column: str = "sentence1"
    strategy: str = "random"
    max_length: Optional[int] = None

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < 1:
            raise BertnpuError(f"Calibration count {self.count!r} must be a positive integer; Mobilint advises 100-128 or more samples.")
        if self.strategy not in STRATEGIES:
            raise BertnpuError(f"Unknown calibration strategy {self.strategy!r}; use one of {', '.join(STRATEGIES)}.")
        if self.column not in COLUMNS:
            raise BertnpuError(f"Unknown column {self.column!r}; use sentence1 or sentence2.")
        check_split(self.split)
        if self.max_length is not None and self.max_length < 3:
            raise BertnpuError(f"max_length {self.max_length!r} is too small; use at least 3 tokens ([CLS], a word, [SEP]).")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CalibrationSet:
    """A loaded calibration set: the arrays in file order, and the manifest if there is one."""

    files: list[Path]
    arrays: list[np.ndarray]  # each [1, seq_len, hidden] float32
    manifest: Optional[dict] = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def hidden_size(self) -> int:
        return int(self.arrays[0].shape[-1])

    def tokens(self, limit: Optional[int] = None) -> np.ndarray:
        """All token vectors ``[n_tokens, hidden]`` of the first ``limit`` samples."""
        return np.concatenate([a[0] for a in self.arrays[:limit]], axis=0)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([a.shape[1] for a in self.arrays])

    @property
    def sentences(self) -> list[str]:
        return [s["sentence"] for s in (self.manifest or {}).get("samples", [])]


def _stratified(rng: np.random.Generator, cells: np.ndarray, count: int) -> np.ndarray:
    """Take ``count`` items spread evenly over cells: shuffle within cells, then round-robin."""
    pools = [rng.permutation(np.flatnonzero(cells == c)).tolist() for c in np.unique(cells)]
    picked: list[int] = []
    while len(picked) < count:
        for pool in pools:
            if pool and len(picked) < count:
                picked.append(pool.pop())
    return np.array(picked)


def _quantile_bins(values: np.ndarray, bins: int) -> np.ndarray:
    ranks = np.argsort(np.argsort(values, kind="stable"), kind="stable")
    return (ranks * bins) // len(values)


def select_samples(pairs: StsPairs, spec: CalibrationSpec, lengths_of) -> tuple[list[str], list[float]]:
    """Pick the calibration sentences (unique, in file order) and their pair scores."""
    column = pairs.sentence1 if spec.column == "sentence1" else pairs.sentence2
    first_row: dict[str, int] = {}
    for row, sentence in enumerate(column):
        first_row.setdefault(sentence, row)
    sentences = list(first_row)
    scores = pairs.scores[list(first_row.values())]
    if spec.count > len(sentences):
        raise BertnpuError(f"Calibration count {spec.count} exceeds the {len(sentences)} unique sentences of {spec.split}/{spec.column}; lower --count.")
    rng = np.random.default_rng(spec.seed)
    if spec.strategy == "random":
        chosen = rng.choice(len(sentences), size=spec.count, replace=False)
    else:
        lengths = np.asarray(lengths_of(sentences))
        cells = _quantile_bins(lengths, LENGTH_BINS)
        if spec.strategy == "score-stratified":
            score_bin = np.minimum((scores / 5.0 * SCORE_BINS).astype(int), SCORE_BINS - 1)
            cells = score_bin * LENGTH_BINS + _quantile_bins(lengths, 3)
        chosen = _stratified(rng, cells, spec.count)
    return [sentences[i] for i in chosen], [float(scores[i]) for i in chosen]


def embed_sentences(model: LoadedModel, sentences: list[str], max_length: Optional[int] = None, batch_size: int = 128) -> list[np.ndarray]:
    """CPU-part output of each sentence tokenized alone: a list of ``[1, seq_len, hidden]`` float32 arrays."""
    ids = tokenize(model, sentences, max_length)
    cpu = CpuEmbedding.from_bert(model.bert)
    out: list[Optional[np.ndarray]] = [None] * len(sentences)
    with torch.inference_mode():
        for batch in length_sorted_batches(ids, batch_size, model.tokenizer.pad_token_id or 0):
            # LayerNorm is per position, so padding a batch leaves each real token's vector unchanged.
            x = cpu(batch.input_ids, batch.token_type_ids).numpy()
            for row, i in enumerate(batch.order):
                out[i] = np.ascontiguousarray(x[row : row + 1, : len(ids[i])], dtype=np.float32)
    return out  # type: ignore[return-value]


def build_calibration_set(
    model: LoadedModel,
    out: str | os.PathLike,
    spec: CalibrationSpec = CalibrationSpec(),
    *,
    pairs: Optional[StsPairs] = None,
    stsb_dir: Optional[str | os.PathLike] = None,
    force: bool = False,
    progress: bool = True,
) -> CalibrationSet:
    """Build a calibration folder for qbcompiler (``calib_data_path``) from STS-B sentences.

    Written in a temp folder and renamed, so an interrupt leaves nothing half-built; an
    existing folder is only replaced with ``force``. Same inputs and seed give
    byte-identical files.

    Example:
        >>> cs = build_calibration_set(load_model(), "calib", CalibrationSpec(count=128))
        >>> cs.arrays[0].shape  # [1, seq_len, hidden]
        (1, 14, 384)
    """
    pairs = pairs if pairs is not None else load_stsb(spec.split, stsb_dir)
    sentences, scores = select_samples(pairs, spec, lambda s: [len(x) for x in tokenize(model, s, spec.max_length)])
    arrays = embed_sentences(model, sentences, spec.max_length)
    out = Path(out)
    names = [f"calib_{i:05d}.npy" for i in range(len(arrays))]
    final = out.resolve()
    with atomic_directory(out, force=force) as tmp:
        for name, array in tqdm(list(zip(names, arrays)), desc="write calibration", disable=not progress, leave=False):
            np.save(tmp / name, array)
        (tmp / "npy_files.txt").write_text("".join(f"{final / n}\n" for n in names))
        manifest = {
            "schema_version": SCHEMA_VERSION,
            "tool": f"bertnpu {__version__}",
            "model": model.name,
            "embedding_sha256": embedding_hash(weight_dict_of(model.bert)),
            "hidden_size": int(model.config.hidden_size),
            "source": pairs.source if os.sep not in pairs.source else Path(pairs.source).name,
            **spec.to_dict(),
            "samples": [
                {"file": n, "sentence": s, "tokens": int(a.shape[1]), "pair_score": sc}
                for n, s, a, sc in zip(names, sentences, arrays, scores)
            ],
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    return CalibrationSet([final / n for n in names], arrays, manifest, str(out))


_REBUILD = "rebuild the set with `bertnpu calib --force`."
# What build_calibration_set writes (every release has written all of it, schema_version included).
_NAME = Field(str, max_len=4096)
SAMPLE = Schema({"file": _NAME, "sentence": Field(str, max_len=1_000_000), "tokens": Field(int, required=False, low=1),
                 "pair_score": Field(float, required=False, low=SCORE_RANGE[0], high=SCORE_RANGE[1])})
MANIFEST = Schema({"samples": Field(list, items=SAMPLE, max_len=10_000_000), "embedding_sha256": Field(str, required=False, max_len=128),
                   "model": Field(str, required=False, max_len=4096), "hidden_size": Field(int, required=False, low=1)})


def _read_list(path: Path) -> list[Path]:
    """Files named in an ``npy_files.txt``: absolute paths are the user's choice (qbcompiler reads them
    as given); relative ones must stay inside the list's folder."""
    check_size(path, "calibration file list", _REBUILD)
    text = read_text_file(path, "calibration file list", _REBUILD)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    bad = next((i for i, line in enumerate(lines) if "\x00" in line or len(line) > 4096), None)
    if bad is not None:  # a NUL or a 4 KB "path" is no file name any file system takes
        raise BertnpuError(f"Line {bad + 1} of the calibration file list {str(path)!r} is not a file path (a NUL byte or over 4096 characters); {_REBUILD}")
    files = [Path(line) for line in lines]
    return [f if f.is_absolute() else path_inside(path.parent, f, "calibration file", _REBUILD) for f in files]


def _read_manifest(path: Path) -> tuple[dict, list[Path]]:
    """The manifest and its sample files, each kept inside the calibration folder."""
    manifest = read_json(path, "calibration manifest", _REBUILD)
    samples = manifest.get("samples")
    if not isinstance(samples, list) or not all(isinstance(s, dict) and isinstance(s.get("file"), str) for s in samples):
        raise BertnpuError(f"The calibration manifest {str(path)!r} has no list of samples with a 'file' each; {_REBUILD}")
    manifest = MANIFEST.check(manifest, "", f"the calibration manifest {str(path)!r}", _REBUILD, version=SCHEMA_VERSION)
    bad = next((s["file"] for s in samples if "\x00" in s["file"] or not s["file"].strip()), None)
    if bad is not None:
        raise BertnpuError(f"The calibration manifest {str(path)!r} names the sample file {bad!r}, which is no file name; {_REBUILD}")
    return manifest, [path_inside(path.parent, s["file"], "calibration sample file", _REBUILD) for s in samples]


def _load_array(f: Path) -> np.ndarray:
    """One ``.npy`` file, its header checked against the file size before any memory is taken for it."""
    def refuse(reason: str) -> BertnpuError:
        return BertnpuError(f"Calibration file {str(f)!r} cannot be read ({reason}); {_REBUILD}")

    try:
        with open(f, "rb") as fh:
            if fh.read(6) != b"\x93NUMPY":  # np.load would try anything else as a pickle
                raise refuse("it is not a valid .npy file")
            fh.seek(0)
            version = np.lib.format.read_magic(fh)
            if version not in ((1, 0), (2, 0)):  # np.save writes 1.0 (2.0 for headers over 64 KB)
                raise refuse(f".npy format version {version[0]}.{version[1]}, not 1.0 or 2.0")
            read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            with warnings.catch_warnings():  # a damaged header's escapes would add Python's warning lines to the one sentence
                warnings.simplefilter("ignore", (DeprecationWarning, SyntaxWarning))
                shape, _, dtype = read_header(fh, max_header_size=10_000)
            data_bytes = os.fstat(fh.fileno()).st_size - fh.tell()
    except BertnpuError:
        raise
    except (ValueError, OSError, EOFError, SyntaxError, TypeError, TokenError):  # unknown version, damaged header dict (numpy tokenizes it), truncated header
        raise refuse("it is not a valid .npy file") from None
    if dtype.hasobject:
        raise refuse("it holds Python objects")
    if int(np.prod(shape, dtype=object)) * dtype.itemsize != data_bytes:  # a truncated file, or a header claiming terabytes
        raise refuse(f"its header promises shape {shape} of {dtype}, but the file holds {data_bytes} data bytes; truncated or not a .npy file")
    try:
        return np.load(f, allow_pickle=False)
    except ValueError as exc:  # object arrays need pickles, which are refused; also bad headers
        reason = "it holds Python objects" if "allow_pickle" in str(exc) else "it is not a valid .npy file"
        raise refuse(reason) from None
    except (OSError, EOFError) as exc:
        raise refuse(f"{exc.__class__.__name__}, truncated or not a .npy file") from None


def embedding_bound(model: LoadedModel) -> float:
    """Largest magnitude a LayerNorm output of ``model``'s CPU part can reach.

    Each normalized element satisfies |z| <= sqrt(hidden - 1) (the other hidden - 1 deviations
    balance it), so |gamma * z + beta| <= sqrt(hidden - 1) * max|gamma| + max|beta|.
    """
    emb = model.bert.embeddings.LayerNorm
    hidden = int(model.config.hidden_size)
    return float((hidden - 1) ** 0.5 * emb.weight.detach().abs().max() + emb.bias.detach().abs().max())


def load_calibration_set(path: str | os.PathLike, model: Optional[LoadedModel] = None) -> CalibrationSet:
    """Load and validate a calibration folder or an ``npy_files.txt`` list.

    Checks: not empty, float32, rank 3 with batch 1, hidden size (against ``model``),
    finite values, and the manifest's embedding hash against ``model``.
    """
    path = Path(path)
    if not path.exists():
        raise BertnpuError(f"Calibration set {str(path)!r} does not exist; build one with `bertnpu calib --out {path}`.")
    manifest = None
    if path.is_dir():
        if (path / "manifest.json").is_file():
            manifest, files = _read_manifest(path / "manifest.json")
        elif (path / "npy_files.txt").is_file():
            files = _read_list(path / "npy_files.txt")
        else:
            files = [path_inside(path, f.name, "calibration file", _REBUILD) for f in sorted(path.glob("*.npy"))]
    else:
        files = _read_list(path)
        if (path.parent / "manifest.json").is_file():
            manifest, _ = _read_manifest(path.parent / "manifest.json")
    if not files:
        raise BertnpuError(f"Calibration set {str(path)!r} holds no .npy files; build one with `bertnpu calib`.")
    hidden = int(model.config.hidden_size) if model is not None else None
    # 1% above the LayerNorm bound for rounding; without a model, float16's range (cpu_part.HUGE)
    bound = embedding_bound(model) * 1.01 + 1e-3 if model is not None else None
    arrays = []
    for f in files:
        if not f.is_file():
            raise BertnpuError(f"Calibration file {str(f)!r} listed in {str(path)!r} does not exist; {_REBUILD}")
        a = _load_array(f)
        if a.dtype != np.float32:
            raise BertnpuError(f"Calibration file {f.name!r} has dtype {a.dtype}; qbcompiler expects float32 embeddings.")
        if a.ndim != 3 or a.shape[0] != 1 or a.shape[1] < 1:
            raise BertnpuError(f"Calibration file {f.name!r} has shape {a.shape}; expected [1, seq_len, hidden].")
        hidden = a.shape[2] if hidden is None else hidden
        if a.shape[2] != hidden:
            raise BertnpuError(f"Calibration file {f.name!r} has hidden size {a.shape[2]}, but the model's is {hidden}; build the set with the same model.")
        check_finite(torch.from_numpy(a), f"calibration file {f.name!r}", _REBUILD)
        if bound is not None and float(np.abs(a).max()) > bound:
            raise BertnpuError(
                f"Calibration file {f.name!r} holds a value of magnitude {float(np.abs(a).max()):.3g}, beyond the {bound:.3g} "
                f"a LayerNorm output of {model.name!r} can reach; {_REBUILD}"
            )
        arrays.append(a)
    if manifest is not None and path.is_dir():  # the manifest describes these very files: its token counts must agree
        wrong = next(((s, a) for s, a in zip(manifest["samples"], arrays) if "tokens" in s and s["tokens"] != a.shape[1]), None)
        if wrong is not None:
            raise BertnpuError(f"The calibration manifest says {wrong[0]['file']!r} holds {wrong[0]['tokens']} tokens, but the file holds {wrong[1].shape[1]}; {_REBUILD}")
    if manifest is not None and model is not None:
        expected = embedding_hash(weight_dict_of(model.bert))
        if manifest.get("embedding_sha256") != expected:
            raise BertnpuError(
                f"Calibration set {str(path)!r} was built for model {manifest.get('model')!r} with other embedding weights than {model.name!r}; rebuild it with this model."
            )
    return CalibrationSet(files, arrays, manifest, str(path))
