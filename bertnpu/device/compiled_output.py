"""What a compiled ``.mxq`` returns for the pooling (no torch import: the preflight reads it before anything heavy loads)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model.load import LoadedModel


@dataclass(frozen=True)
class CompiledOutput:
    """What the compiled ``.mxq`` returns, as written to ``<out>.recipe.json``."""

    returns: str  # "last_hidden_state" or "pooler_output"
    hidden_size: int
    pooling: str

    @property
    def shape_text(self) -> str:
        return f"[1, seq_len, {self.hidden_size}]" if self.returns == "last_hidden_state" else f"[1, {self.hidden_size}]"

    def describe(self) -> str:
        if self.returns == "last_hidden_state":
            return f"token states {self.shape_text} (last_hidden_state), which bertnpu {self.pooling}-pools on the CPU"
        return f"BERT's pooler output {self.shape_text} (pooler_output), the sentence vector as is"

    def matches(self, shape: tuple, seq_len: int) -> bool:
        """Whether an NPU output of ``shape`` is this tensor for a ``seq_len``-token sentence (leading 1s aside)."""
        want = (seq_len, self.hidden_size) if self.returns == "last_hidden_state" else (self.hidden_size,)
        shape = tuple(int(d) for d in shape)
        while len(shape) > len(want) and shape[0] == 1:
            shape = shape[1:]
        return shape == want

    def to_dict(self) -> dict:
        return {"returns": self.returns, "shape": self.shape_text, "hidden_size": self.hidden_size, "pooling": self.pooling,
                "meaning": self.describe()}

    @classmethod
    def from_dict(cls, data: dict) -> "CompiledOutput":
        return cls(str(data["returns"]), int(data["hidden_size"]), str(data["pooling"]))


def compiled_output(model: LoadedModel) -> CompiledOutput:
    """What the ``.mxq`` compiled from :class:`PoolingReadyBert` of ``model`` returns."""
    returns = "pooler_output" if model.pooling.mode == "pooler" else "last_hidden_state"
    return CompiledOutput(returns, int(model.config.hidden_size), model.pooling.mode)
