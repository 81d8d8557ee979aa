"""Activation statistics of every quantization site over a calibration set, and their file format."""

from __future__ import annotations

import hashlib
import zipfile
from tokenize import TokenError
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm.auto import tqdm

from ..version import __version__
from ..artifacts import atomic_write
from ..data.calibration import CalibrationSet
from ..model.npu_part import NpuEncoder
from ..errors import BertnpuError
from ..schema import Field, Schema, parse_json, show_key
from ..model.load import LoadedModel
from .observers import REPLICAS, SiteObserver, bootstrap_weights
from .sites import SiteInfo, sites_of
from ..model.cpu_part import embedding_hash, weight_dict_of

SCHEMA_VERSION = 1


def model_hash(model: LoadedModel) -> str:
    """SHA-256 of every parameter of the model (CPU and NPU parts)."""
    digest = hashlib.sha256()
    for name, p in sorted(model.bert.state_dict().items()):
        digest.update(name.encode())
        digest.update(p.detach().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def calibration_hash(calib: CalibrationSet) -> str:
    """SHA-256 of the calibration arrays in file order."""
    digest = hashlib.sha256()
    for a in calib.arrays:
        digest.update(str(a.shape).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


@dataclass
class ActivationStats:
    """Observers of all sites plus what they were computed from."""

    sites: list[SiteInfo]
    observers: dict[str, SiteObserver]
    meta: dict = field(default_factory=dict)

    def __getitem__(self, site: str) -> SiteObserver:
        return self.observers[site]

    def state_size(self) -> int:
        return sum(o.state_size() for o in self.observers.values())

    def save(self, path: str | os.PathLike, *, force: bool = False) -> Path:
        """One ``.npz`` holding every site's arrays and the JSON metadata (no pickles)."""
        arrays = {"__meta__": np.frombuffer(json.dumps(self.meta, sort_keys=True).encode(), dtype=np.uint8)}
        for name, obs in self.observers.items():
            for key, value in obs.to_arrays().items():
                arrays[f"{name}/{key}"] = value

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                np.savez(fh, **arrays)

        return atomic_write(path, write, force=force)


_RECOMPUTE = "recompute it with `bertnpu stats`."
_META_KEYS = {"model_sha256": str, "calibration_sha256": str, "sites": list}
# Every release has written schema_version and the site list (SiteInfo's fields) into __meta__.
_SITE = Schema({"name": Field(str, max_len=200), "layer": Field(int, low=-1, high=100_000), "role": Field(str, max_len=200),
                "layout": Field(str, choices=("token", "attention", "intermediate")), "description": Field(str, max_len=10_000)}, strict=True)
_META = Schema({"sites": Field(list, items=_SITE, max_len=1_000_000), "samples": Field(int, required=False, low=0)})
# A stats file of a 24-layer BERT-large is about 100 MB; a zip member that inflates beyond this is no bertnpu stats file.
MAX_STATS_BYTES = 2 * 2**30
_NONNEGATIVE = ("channel_absmax", "pos_hist", "neg_hist", "role_hist", "replica_hist")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with zipfile.ZipFile(path) as archive:  # sizes first: a compressed member may inflate to any size
            inflated = sum(info.file_size for info in archive.infolist())
        if inflated > MAX_STATS_BYTES:
            raise BertnpuError(f"{str(path)!r} inflates to {inflated / 2**30:.1f} GB, more than the {MAX_STATS_BYTES / 2**30:.0f} GB a bertnpu stats file can be; {_RECOMPUTE}")
        with open(path, "rb") as fh:  # our handle: closed even when np.load fails half-way
            data = np.load(fh, allow_pickle=False)
            if not hasattr(data, "files"):
                raise ValueError("a single array, not an archive")
            with data:
                content = {k: data[k] for k in data.files}
        odd = next((k for k, v in content.items() if not isinstance(v, np.ndarray)), None)
        if odd is not None:  # np.load hands back the raw bytes of a member that is no .npy
            raise BertnpuError(f"{str(path)!r} is not a bertnpu stats file (its member {show_key(odd)} is not an array); {_RECOMPUTE}")
        return content
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError, SyntaxError, TokenError) as exc:  # truncated, empty, random bytes, pickles, damaged headers
        raise BertnpuError(f"{str(path)!r} is not a bertnpu stats file (unreadable: {exc.__class__.__name__}); {_RECOMPUTE}") from None


def _read_meta(path: Path, content: dict[str, np.ndarray]) -> dict:
    if "__meta__" not in content:
        raise BertnpuError(f"{str(path)!r} is not a bertnpu stats file (no metadata); {_RECOMPUTE}")
    raw = content.pop("__meta__")
    damaged = f"The metadata of {str(path)!r} is damaged (not JSON with model_sha256, calibration_sha256 and sites); {_RECOMPUTE}"
    try:
        if raw.dtype != np.uint8 or raw.ndim != 1:
            raise BertnpuError(damaged)
        meta = parse_json(raw.tobytes().decode("utf-8"), f"The metadata of {str(path)!r}", _RECOMPUTE)
    except UnicodeDecodeError:
        meta = None
    bad = not isinstance(meta, dict) or any(not isinstance(meta.get(k), t) for k, t in _META_KEYS.items())
    if bad:
        raise BertnpuError(damaged)
    return _META.check(meta, "", f"the metadata of {str(path)!r}", _RECOMPUTE, version=SCHEMA_VERSION)


def _observer_of(path: Path, site: SiteInfo, parts: Optional[dict[str, np.ndarray]]) -> SiteObserver:
    """Rebuild one site's observer, checking every array against a fresh observer's layout."""
    if parts is None or "channel_absmax" not in parts:
        raise BertnpuError(f"{str(path)!r} has no statistics for site {site.name!r}; {_RECOMPUTE}")
    if "channel_min" not in parts or "channel_max" not in parts:
        raise BertnpuError(f"{str(path)!r} was written by an older bertnpu (no per-channel min/max for site {site.name!r}); {_RECOMPUTE}")
    channels = parts["channel_absmax"]
    if channels.ndim != 1 or not 1 <= len(channels) <= 1_000_000:
        raise BertnpuError(f"{str(path)!r} holds a damaged 'channel_absmax' array for site {site.name!r}; {_RECOMPUTE}")
    template = SiteObserver(len(channels)).to_arrays()
    for key, ref in template.items():
        value = parts.get(key)
        fixed_shape = key not in ("top_pos", "top_neg")
        if value is None or value.dtype.kind != "f" or (fixed_shape and value.shape != ref.shape) or value.ndim != ref.ndim:
            raise BertnpuError(f"{str(path)!r} holds a damaged {key!r} array for site {site.name!r}; {_RECOMPUTE}")
        finite = value if key != "scalars" else value[:1]  # min/max are +-inf for an empty site
        if not np.isfinite(finite).all() or np.isnan(value).any():
            raise BertnpuError(f"{str(path)!r} holds NaN or inf in {key!r} of site {site.name!r}; {_RECOMPUTE}")
        if (key in _NONNEGATIVE and (value < 0).any()) or (key == "scalars" and (value[0] < 0 or value[0] != int(value[0]))):
            raise BertnpuError(f"{str(path)!r} holds a negative or fractional count in {key!r} of site {site.name!r}; {_RECOMPUTE}")
    return SiteObserver.from_arrays(parts)


def load_stats(path: str | os.PathLike, model: Optional[LoadedModel] = None, calib: Optional[CalibrationSet] = None) -> ActivationStats:
    """Load stats saved by :meth:`ActivationStats.save`; check model and calibration hashes when given.

    A truncated, empty or edited file, damaged metadata or a missing site is one sentence.
    """
    path = Path(path)
    if path.is_dir():
        raise BertnpuError(f"Stats file {str(path)!r} is a folder; pass the .npz file written by `bertnpu stats`.")
    if not path.is_file():
        raise BertnpuError(f"Stats file {str(path)!r} does not exist; create it with `bertnpu stats --calib DIR --out {path}`.")
    content = _read_npz(path)
    meta = _read_meta(path, content)
    if model is not None and meta.get("model_sha256") != model_hash(model):
        raise BertnpuError(f"Stats file {str(path)!r} was computed for model {meta.get('model')!r} with other weights than {model.name!r}; {_RECOMPUTE}")
    if calib is not None and meta.get("calibration_sha256") != calibration_hash(calib):
        raise BertnpuError(f"Stats file {str(path)!r} was computed from another calibration set than {calib.source!r}; {_RECOMPUTE}")
    grouped: dict[str, dict[str, np.ndarray]] = {}
    for key, value in content.items():
        site, _, part = key.rpartition("/")
        grouped.setdefault(site, {})[part] = value
    try:
        sites = [SiteInfo(**s) for s in meta["sites"]]
    except TypeError:
        raise BertnpuError(f"The site list in the metadata of {str(path)!r} is damaged; {_RECOMPUTE}") from None
    names = [s.name for s in sites]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise BertnpuError(f"The site list in the metadata of {str(path)!r} names {twice!r} twice; {_RECOMPUTE}")
    if model is not None:
        expected = [s.name for s in sites_of(model)]
        missing = [n for n in expected if n not in {s.name for s in sites}]
        if missing:
            raise BertnpuError(f"{str(path)!r} has no statistics for site {missing[0]!r} of {model.name!r}; {_RECOMPUTE}")
    return ActivationStats(sites, {s.name: _observer_of(path, s, grouped.get(s.name)) for s in sites}, meta)


class StatsTap:
    """A tap that feeds every site's valid (unpadded) values into its observer."""

    def __init__(self, sites: list[SiteInfo], hidden: int, heads: int, intermediate: int, seed: int = 0):
        self.layouts = {s.name: s.layout for s in sites}
        self.observers: dict[str, SiteObserver] = {}
        self.channels = {"attention": heads, "intermediate": intermediate, "token": hidden}
        self.seed = seed
        self.roles: Optional[torch.Tensor] = None
        self.weights: Optional[torch.Tensor] = None

    def start_batch(self, attention_mask: torch.Tensor, sample_index: np.ndarray) -> None:
        lengths = attention_mask.sum(1)
        roles = torch.full(attention_mask.shape, 2, dtype=torch.long)
        roles[:, 0] = 0
        roles[torch.arange(len(lengths)), lengths - 1] = 1
        self.roles = roles
        self.weights = bootstrap_weights(sample_index, self.seed)

    def __call__(self, site: str, x: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        assert self.roles is not None and self.weights is not None, "call start_batch first"
        b = x.shape[0]
        sample_rows = torch.arange(b)[:, None].expand(token_mask.shape)
        if x.dim() == 2:  # pooler sites: one [CLS] vector per sample
            values, roles, samples = x, torch.zeros(b, dtype=torch.long), torch.arange(b)
        elif self.layouts[site] == "attention":  # [B, heads, S_q, S_k]: valid query x valid key, channel = head
            pair = token_mask[:, :, None] & token_mask[:, None, :]
            values = x.permute(0, 2, 3, 1)[pair]
            roles = self.roles[:, :, None].expand(pair.shape)[pair]
            samples = sample_rows[:, :, None].expand(pair.shape)[pair]
        else:
            values, roles, samples = x[token_mask], self.roles[token_mask], sample_rows[token_mask]
        obs = self.observers.get(site)
        if obs is None:
            obs = self.observers[site] = SiteObserver(values.shape[-1])
        obs.update(values, roles, samples, self.weights)
        return x


def _calibration_batches(calib: CalibrationSet, batch_size: int):
    """Pad calibration arrays into length-sorted batches: (hidden [B,S,H], mask [B,S], sample indices)."""
    lengths = calib.lengths
    order = np.argsort(-lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        width = int(lengths[idx].max())
        hidden = torch.zeros(len(idx), width, calib.hidden_size)
        mask = torch.zeros(len(idx), width, dtype=torch.long)
        for row, i in enumerate(idx):
            hidden[row, : lengths[i]] = torch.from_numpy(calib.arrays[i][0])
            mask[row, : lengths[i]] = 1
        yield hidden, mask, idx


def collect_activation_stats(
    model: LoadedModel, calib: CalibrationSet, *, batch_size: int = 32, seed: int = 0,
    encoder: Optional[NpuEncoder] = None, progress: bool = True,
) -> ActivationStats:
    """Run the calibration set through the NPU part and observe every site.

    Padded positions are masked out, so batched collection equals one sample at a time.

    Example:
        >>> stats = collect_activation_stats(model, load_calibration_set("calib", model))
        >>> stats["layer.0.attention.softmax.out"].max <= 1.0
        True
    """
    if calib.hidden_size != model.config.hidden_size:
        raise BertnpuError(f"Calibration hidden size {calib.hidden_size} does not match the model's {model.config.hidden_size}; build the set with this model.")
    sites = sites_of(model)
    cfg = model.config
    tap = StatsTap(sites, cfg.hidden_size, cfg.num_attention_heads, cfg.intermediate_size, seed)
    encoder = encoder if encoder is not None else NpuEncoder(model.bert)
    batches = list(_calibration_batches(calib, batch_size))
    with torch.inference_mode():
        for hidden, mask, idx in tqdm(batches, desc="activation stats", disable=not progress, leave=False):
            tap.start_batch(mask, idx)
            encoder(hidden, mask, tap=tap)
    meta = {
        "schema_version": SCHEMA_VERSION, "tool": f"bertnpu {__version__}", "model": model.name,
        "model_sha256": model_hash(model), "embedding_sha256": embedding_hash(weight_dict_of(model.bert)),
        "calibration_sha256": calibration_hash(calib), "calibration": calib.source, "samples": len(calib),
        "bootstrap_replicas": REPLICAS, "seed": seed, "sites": [s.__dict__ for s in sites],
    }
    return ActivationStats(sites, {s.name: tap.observers[s.name] for s in sites}, meta)
