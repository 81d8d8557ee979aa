"""Stage 2, export embeddings: the CPU part as the ``weight_dict.pth`` Mobilint's runtime loads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from ..model.load import LoadedModel
from .result import StageResult

WEIGHT_KEYS = ("word_embeddings", "token_type_embeddings", "position_embeddings", "layernorm_weight", "layernorm_bias")


@dataclass(frozen=True)
class ExportInputs:
    model: LoadedModel
    out: Path
    force: bool = False


@dataclass(frozen=True)
class EmbeddingsResult(StageResult):
    weight_dict: Path
    sha256: str
    keys: tuple[str, ...] = WEIGHT_KEYS


def file_sha256(path: Path, chars: int = 16) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:chars]


def export_embeddings(inputs: ExportInputs) -> EmbeddingsResult:
    """Write the CPU embedding part (atomically; an existing file only with ``force``)."""
    from ..model.cpu_part import export_weight_dict

    path = export_weight_dict(inputs.model.bert, inputs.out, force=inputs.force)
    return EmbeddingsResult(weight_dict=Path(path), sha256=file_sha256(Path(path)))
