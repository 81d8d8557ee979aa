"""The CPU half of the split: embedding lookups + LayerNorm, and its ``weight_dict.pth``.

Mobilint's NPU cannot run embedding lookups, so the runtime computes on the CPU::

    x = LayerNorm(word_embeddings[input_ids] + token_type_embeddings[token_type_ids]
                  + position_embeddings[0:seq_len])

and feeds ``x`` (``[1, seq_len, hidden]``, float32) to the compiled encoder.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

from ..artifacts import atomic_write_bytes
from ..errors import BertnpuError

# Largest magnitude accepted in weights and embeddings: float16's maximum. Real BERT weights and
# LayerNorm outputs are orders of magnitude smaller; larger values only come from corrupt files
# and turn the simulated INT8 scales into inf/NaN.
HUGE = 65504.0
WEIGHT_KEYS = ("word_embeddings", "token_type_embeddings", "position_embeddings", "layernorm_weight", "layernorm_bias")


class CpuEmbedding(torch.nn.Module):
    """Embedding part that stays on the CPU, built from the five tensors of ``weight_dict.pth``."""

    def __init__(self, weights: dict[str, torch.Tensor], eps: float = 1e-12):
        super().__init__()
        check_weight_dict(weights)
        for key in WEIGHT_KEYS:
            self.register_buffer(key, weights[key].detach().to(torch.float32))  # read-only: no copy
        self.eps = float(eps)

    @classmethod
    def from_bert(cls, bert) -> "CpuEmbedding":
        """Take the embedding weights and LayerNorm eps of a ``transformers.BertModel``."""
        return cls(weight_dict_of(bert), eps=bert.config.layer_norm_eps)

    @classmethod
    def from_file(cls, path: str | os.PathLike, eps: float = 1e-12, hidden_size: int | None = None) -> "CpuEmbedding":
        """Rebuild the CPU part from a ``weight_dict.pth`` (eps is not stored in the file); checks ``hidden_size`` when given."""
        return cls(load_weight_dict(path, hidden_size=hidden_size), eps=eps)

    @property
    def hidden_size(self) -> int:
        return int(self.word_embeddings.shape[1])

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Args: input_ids ``[B, S]`` (int), token_type_ids ``[B, S]`` or None (zeros). Returns ``[B, S, hidden]``."""
        seq_len = input_ids.shape[1]
        if seq_len > self.position_embeddings.shape[0]:
            raise BertnpuError(
                f"A sequence of {seq_len} tokens exceeds the model's {self.position_embeddings.shape[0]} positions; lower --max-length."
            )
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        # float64 inside, one rounding to float32 at the end: the output is the tutorial's
        # arithmetic correctly rounded (float32 sums + LayerNorm drift by ~2 ulps)
        x = self.word_embeddings[input_ids].double() + self.token_type_embeddings[token_type_ids].double()
        x = x + self.position_embeddings[:seq_len].double()
        y = F.layer_norm(x, (x.shape[-1],), self.layernorm_weight.double(), self.layernorm_bias.double(), self.eps)
        return y.float()

    def weight_dict(self) -> dict[str, torch.Tensor]:
        return {key: getattr(self, key) for key in WEIGHT_KEYS}


def weight_dict_of(bert) -> dict[str, torch.Tensor]:
    """The tutorial's five embedding tensors of a ``BertModel``, as plain detached tensors."""
    emb = bert.embeddings
    return {
        "word_embeddings": emb.word_embeddings.weight.detach(),
        "token_type_embeddings": emb.token_type_embeddings.weight.detach(),
        "position_embeddings": emb.position_embeddings.weight.detach(),
        "layernorm_weight": emb.LayerNorm.weight.detach(),
        "layernorm_bias": emb.LayerNorm.bias.detach(),
    }


def check_finite(t: torch.Tensor, what: str, fix: str) -> None:
    """Refuse NaN, inf or values beyond :data:`HUGE` in a float tensor, in one sentence."""
    peak = float(t.abs().amax()) if t.numel() else 0.0  # one pass: amax propagates NaN, and inf stays inf
    if not math.isfinite(peak):
        raise BertnpuError(f"The {what} holds NaN or inf values; {fix}")
    if peak > HUGE:
        raise BertnpuError(f"The {what} holds a value of magnitude {peak:.3g}, beyond {HUGE:g}; {fix}")


def check_weight_dict(weights: object, source: str = "the weight dict", hidden_size: int | None = None) -> None:
    """Validate keys, float dtype, finite values, ranks and agreeing hidden sizes; each problem is one sentence."""
    if not isinstance(weights, dict):
        raise BertnpuError(f"{source} holds a {type(weights).__name__}, not a dict of tensors; export it with `bertnpu export-embeddings`.")
    missing = [k for k in WEIGHT_KEYS if k not in weights]
    if missing:
        raise BertnpuError(f"{source} lacks the key(s) {', '.join(missing)}; it needs exactly {', '.join(WEIGHT_KEYS)}.")
    for key in WEIGHT_KEYS:
        if not isinstance(weights[key], torch.Tensor):
            raise BertnpuError(f"{source}[{key!r}] is a {type(weights[key]).__name__}, not a tensor; re-export it with `bertnpu export-embeddings`.")
        if not weights[key].is_floating_point():
            raise BertnpuError(f"{source}[{key!r}] has dtype {weights[key].dtype}, not float; re-export it with `bertnpu export-embeddings`.")
    hidden = weights["word_embeddings"].shape[-1] if hidden_size is None else hidden_size
    for key in WEIGHT_KEYS[:3]:
        shape = tuple(weights[key].shape)
        if len(shape) != 2 or shape[1] != hidden:
            raise BertnpuError(f"{source}[{key!r}] has shape {shape}; expected [rows, {hidden}] to match the hidden size.")
    for key in WEIGHT_KEYS[3:]:
        shape = tuple(weights[key].shape)
        if shape != (hidden,):
            raise BertnpuError(f"{source}[{key!r}] has shape {shape}; expected ({hidden},) to match the hidden size.")
    for key in WEIGHT_KEYS:
        check_finite(weights[key], f"tensor {source}[{key!r}]", "re-export it with `bertnpu export-embeddings`.")


def export_weight_dict(bert, path: str | os.PathLike, *, force: bool = False) -> Path:
    """Write ``weight_dict.pth`` with exactly the tutorial's keys, atomically.

    The file holds plain float32 tensors, so ``torch.load(path, weights_only=True)`` reads it.
    Saved through a buffer: torch names the zip records after the file it writes, so saving
    to the temp path would store a random name and identical runs would differ in bytes.
    """
    import io

    weights = {k: v.contiguous() for k, v in weight_dict_of(bert).items()}
    check_weight_dict(weights, "the model's embedding weights")
    buf = io.BytesIO()
    torch.save(weights, buf)
    return atomic_write_bytes(path, buf.getvalue(), force=force)


def load_weight_dict(path: str | os.PathLike, hidden_size: int | None = None) -> dict[str, torch.Tensor]:
    """Load and validate a ``weight_dict.pth`` without unpickling arbitrary objects."""
    path = Path(path)
    if not path.is_file():
        raise BertnpuError(f"Weight dict {str(path)!r} does not exist; create it with `bertnpu export-embeddings --out {path}`.")
    try:
        with warnings.catch_warnings():  # e.g. "pickle protocol 4": the refusal below says what matters
            warnings.simplefilter("ignore")
            weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, random bytes, or a pickle with code (refused by weights_only)
        raise BertnpuError(f"{str(path)!r} is not a plain tensor file ({exc.__class__.__name__}); re-export it with `bertnpu export-embeddings`.") from None
    check_weight_dict(weights, source=repr(str(path)), hidden_size=hidden_size)
    return weights


def embedding_hash(weights: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the five embedding tensors (key order fixed): identifies a CPU part."""
    import hashlib

    digest = hashlib.sha256()
    for key in WEIGHT_KEYS:
        t = weights[key].detach().to(torch.float32).contiguous()
        digest.update(key.encode())
        digest.update(str(tuple(t.shape)).encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()
