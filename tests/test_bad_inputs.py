"""Every bad input a user can cause: the CLI says one sentence, exits 2, and writes nothing.

Table-driven: each row builds its inputs in a fresh folder (a copy of the tiny BERT, of the
STS-B release, of a calibration set or stats file, then one fault), runs ``bertnpu.cli.main``
in-process, and checks exit code 2, exactly one line on stderr naming the problem, and that
no file in the folder was created, changed or removed.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import re
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch


def _random_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(n)


class _Code:
    """A pickle that would run code when loaded (print stands in for anything worse)."""

    def __reduce__(self):
        return (print, ("code ran",))


class Workspace:
    """Builds the inputs of one case inside ``root``."""

    def __init__(self, root: Path, tiny_model_dir: Path, stsb_dir: Path, calib_dir: Path, stats_file: Path, monkeypatch):
        self.root = root
        self._model, self._stsb, self._calib, self._stats = tiny_model_dir, stsb_dir, calib_dir, stats_file
        self.monkeypatch = monkeypatch

    def model(self) -> Path:
        return Path(shutil.copytree(self._model, self.root / "model"))

    def stsb(self) -> Path:
        return Path(shutil.copytree(self._stsb, self.root / "stsb"))

    def calib(self) -> Path:
        return Path(shutil.copytree(self._calib, self.root / "calib"))

    def stats(self) -> Path:
        return Path(shutil.copy(self._stats, self.root / "stats.npz"))

    # ---- command lines --------------------------------------------------------------------
    def info(self, model: Path) -> list[str]:
        return ["info", "--model", str(model)]

    def eval(self, stsb: Path, *extra: str) -> list[str]:
        return ["eval", "--model", str(self.model()), "--stsb-dir", str(stsb), "--split", "validation", "--limit", "8", "--json", *extra]

    def stats_cmd(self, calib: Path, out: Path | None = None, *extra: str) -> list[str]:
        return ["stats", "--model", str(self.model()), "--calib", str(calib), "--out", str(out or self.root / "out.npz"), *extra]

    def simulate(self, *extra: str) -> list[str]:
        return ["simulate", "--model", str(self.model()), "--stsb-dir", str(self.stsb()), "--limit", "8", "--json", *extra]

    def eval_weights(self, weights: Path) -> list[str]:
        mxq = self.root / "model.mxq"
        mxq.write_bytes(b"")  # exists; the weight dict is checked before the NPU is opened
        return self.eval(self.stsb(), "--mxq", str(mxq), "--weights", str(weights))

    def export(self, out: Path) -> list[str]:
        return ["export-embeddings", "--model", str(self.model()), "--out", str(out)]


# ---- faults --------------------------------------------------------------------------------
def _edit_json(path: Path, **changes) -> None:
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def _set_score(stsb: Path, value: str, line: int = 3) -> None:
    f = stsb / "sts-dev.csv"
    lines = f.read_text(encoding="utf-8").split("\n")
    fields = lines[line - 1].split("\t")
    fields[4] = value
    lines[line - 1] = "\t".join(fields)
    f.write_text("\n".join(lines), encoding="utf-8")


def no_tokenizer(ws):
    m = ws.model()
    for name in ("vocab.txt", "tokenizer.json"):
        (m / name).unlink(missing_ok=True)
    return ws.info(m)


def config_not_utf8(ws):
    m = ws.model()
    (m / "config.json").write_bytes(b'{"model_type": "bert", "x": "\xff\xfe"}')
    return ws.info(m)


def safetensors_truncated(ws):
    m = ws.model()
    os.truncate(m / "model.safetensors", 1000)
    return ws.info(m)


def safetensors_random(ws):
    m = ws.model()
    (m / "model.safetensors").write_bytes(_random_bytes(4096))
    return ws.info(m)


def hidden_size_mismatch(ws):
    m = ws.model()
    _edit_json(m / "config.json", hidden_size=48)  # 3 heads of 16; the weights hold 36
    return ws.info(m)


def weights_with_nan(ws):
    from safetensors.torch import load_file, save_file

    m = ws.model()
    tensors = load_file(m / "model.safetensors")
    key = next(k for k in tensors if "encoder.layer.1" in k and k.endswith("query.weight"))
    tensors[key][0, 0] = float("nan")
    save_file(tensors, m / "model.safetensors", metadata={"format": "pt"})
    return ws.info(m)


def pytorch_bin_with_code(ws):
    m = ws.model()
    (m / "model.safetensors").unlink()
    torch.save({"embeddings.word_embeddings.weight": _Code()}, m / "pytorch_model.bin")
    return ws.info(m)


def modules_json_broken(ws):
    m = ws.model()
    (m / "modules.json").write_text('[{"type": "sentence_transformers.models.Pooling", ')
    return ws.info(m)


def modules_json_object(ws):
    m = ws.model()
    (m / "modules.json").write_text('{"type": "sentence_transformers.models.Pooling"}')
    return ws.info(m)


def modules_path_outside(ws):
    m = ws.model()
    outside = ws.root / "outside"
    outside.mkdir()
    (outside / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    (m / "modules.json").write_text(json.dumps([{"idx": 1, "name": "1", "path": "../outside", "type": "sentence_transformers.models.Pooling"}]))
    return ws.info(m)


def max_seq_length_text(ws):
    m = ws.model()
    (m / "sentence_bert_config.json").write_text('{"max_seq_length": "long"}')
    return ws.info(m)


def max_seq_length_negative(ws):
    m = ws.model()
    (m / "sentence_bert_config.json").write_text('{"max_seq_length": -1}')
    return ws.info(m)


def vocab_symlink_outside(ws):
    from bertnpu.model.load import default_model_path

    m = ws.model()
    elsewhere = ws.root / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(default_model_path() / "vocab.txt", elsewhere / "vocab.txt")  # a vocabulary that would load
    (m / "tokenizer.json").unlink()
    (m / "vocab.txt").symlink_to(elsewhere / "vocab.txt")
    return ws.info(m)


def stsb_empty(ws):
    s = ws.stsb()
    (s / "sts-dev.csv").write_bytes(b"")
    return ws.eval(s)


def stsb_random_bytes(ws):
    s = ws.stsb()
    (s / "sts-dev.csv").write_bytes(_random_bytes(2000))
    return ws.eval(s)


def _stsb_score(value):
    def case(ws):
        s = ws.stsb()
        _set_score(s, value)
        return ws.eval(s)

    case.__name__ = f"stsb_score_{value}"
    return case


def npy_truncated(ws):
    c = ws.calib()
    os.truncate(c / "calib_00003.npy", 60)
    return ws.stats_cmd(c)


def npy_random(ws):
    c = ws.calib()
    (c / "calib_00003.npy").write_bytes(_random_bytes(300))
    return ws.stats_cmd(c)


def npy_object(ws):
    c = ws.calib()
    np.save(c / "calib_00003.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    return ws.stats_cmd(c)


def npy_nan(ws):
    c = ws.calib()
    a = np.load(c / "calib_00003.npy")
    a[0, 1, 2] = np.nan
    np.save(c / "calib_00003.npy", a)
    return ws.stats_cmd(c)


def npy_huge(ws):
    c = ws.calib()
    a = np.load(c / "calib_00003.npy")
    a[0, 1, 2] = 3e38
    np.save(c / "calib_00003.npy", a)
    return ws.stats_cmd(c)


def manifest_broken_json(ws):
    c = ws.calib()
    (c / "manifest.json").write_text('{"samples": [')
    return ws.stats_cmd(c)


def manifest_without_samples(ws):
    c = ws.calib()
    data = json.loads((c / "manifest.json").read_text())
    del data["samples"]
    (c / "manifest.json").write_text(json.dumps(data))
    return ws.stats_cmd(c)


def manifest_is_a_list(ws):
    c = ws.calib()
    (c / "manifest.json").write_text("[1, 2, 3]")
    return ws.stats_cmd(c)


def manifest_file_outside(ws):
    c = ws.calib()
    shutil.copy(c / "calib_00000.npy", ws.root / "stolen.npy")
    data = json.loads((c / "manifest.json").read_text())
    data["samples"][0]["file"] = "../stolen.npy"
    (c / "manifest.json").write_text(json.dumps(data))
    return ws.stats_cmd(c)


def stats_out_is_folder(ws):
    out = ws.root / "statsdir"
    out.mkdir()
    return ws.stats_cmd(ws.calib(), out, "--force")


def stats_truncated(ws):
    f = ws.stats()
    os.truncate(f, f.stat().st_size // 2)
    return ws.simulate("--stats", str(f))


def stats_empty(ws):
    f = ws.stats()
    f.write_bytes(b"")
    return ws.simulate("--stats", str(f))


def _rewrite_npz(f: Path, edit: Callable[[dict], None]) -> None:
    with np.load(f) as data:
        content = {k: data[k] for k in data.files}
    edit(content)
    with open(f, "wb") as fh:
        np.savez(fh, **content)


def stats_bad_metadata(ws):
    f = ws.stats()
    _rewrite_npz(f, lambda c: c.update(__meta__=np.frombuffer(b"\xff{not json", dtype=np.uint8)))
    return ws.simulate("--stats", str(f))


def stats_missing_site(ws):
    f = ws.stats()

    def drop(content):
        for key in [k for k in content if k.startswith("layer.1.attention.softmax.out/")]:
            del content[key]

    _rewrite_npz(f, drop)
    return ws.simulate("--stats", str(f))


def config_is_folder(ws):
    d = ws.root / "cfgdir"
    d.mkdir()
    return ws.simulate("--config", str(d), "--stats", str(ws.stats()))


def config_random_bytes(ws):
    f = ws.root / "cfg.json"
    f.write_bytes(_random_bytes(200))
    return ws.simulate("--config", str(f), "--stats", str(ws.stats()))


def _weights(ws, **changes) -> Path:
    from bertnpu.model.cpu_part import weight_dict_of
    from bertnpu.model.load import load_model

    w = {k: v.clone() for k, v in weight_dict_of(load_model(str(ws._model)).bert).items()}
    w.update(changes)
    path = ws.root / "weight_dict.pth"
    torch.save(w, path)
    return path


def weight_dict_wrong_hidden(ws):
    g = torch.Generator().manual_seed(0)
    return ws.eval_weights(_weights(
        ws, word_embeddings=torch.randn(100, 768, generator=g), token_type_embeddings=torch.randn(2, 768, generator=g),
        position_embeddings=torch.randn(512, 768, generator=g), layernorm_weight=torch.ones(768), layernorm_bias=torch.zeros(768)))


def weight_dict_nan(ws):
    t = torch.zeros(36)
    t[3] = float("nan")
    return ws.eval_weights(_weights(ws, layernorm_bias=t))


def weight_dict_int64(ws):
    return ws.eval_weights(_weights(ws, layernorm_weight=torch.ones(36, dtype=torch.int64)))


def weight_dict_truncated(ws):
    path = _weights(ws)
    os.truncate(path, 1000)
    return ws.eval_weights(path)


def weight_dict_with_code(ws):
    path = ws.root / "weight_dict.pth"
    torch.save({"word_embeddings": _Code()}, path)
    return ws.eval_weights(path)


def weight_dict_plain_pickle(ws):
    path = ws.root / "weight_dict.pth"
    path.write_bytes(pickle.dumps(_Code()))
    return ws.eval_weights(path)


def _recipe(ws, text: str | None = None, **changes) -> Path:
    """A recipe file as `bertnpu plan` writes it, with ``changes``, or the raw ``text``."""
    from bertnpu.quant.recipe import Recipe

    data = {**Recipe().to_dict(), "tool": "bertnpu 0.3.0", **changes}
    path = ws.root / "recipe.json"
    path.write_text(text if text is not None else json.dumps(data))
    return path


def _recipe_case(name: str, command: str, option: str, text: str | None = None, drop: str = "", **changes):
    """Issue 27: a recipe edited by hand or written by another tool, given to simulate or sweep."""
    def case(ws):
        path = _recipe(ws, text, **changes)
        if drop:
            data = json.loads(path.read_text())
            del data[drop]
            path.write_text(json.dumps(data))
        if command == "sweep":
            return _sweep_cli(option, str(path))(ws)
        return ws.simulate(option, str(path), "--stats", str(ws.stats()))

    case.__name__ = name
    return case


def manifest_schema_version_zero(ws):
    c = ws.calib()
    _edit_json(c / "manifest.json", schema_version=0)
    return ws.stats_cmd(c)


def manifest_tokens_disagree(ws):
    c = ws.calib()
    data = json.loads((c / "manifest.json").read_text())
    data["samples"][2]["tokens"] += 1
    (c / "manifest.json").write_text(json.dumps(data))
    return ws.stats_cmd(c)


def npy_header_claims_terabytes(ws):
    c = ws.calib()
    f = c / "calib_00001.npy"
    data = f.read_bytes()
    size = int.from_bytes(data[8:10], "little")  # format 1.0: magic, version, header length, padded header dict
    header = re.sub(r"'shape': \(1, (\d+), (\d+)\)", lambda m: f"'shape': (1, {10**11}, {m.group(2)})", data[10:10 + size].decode("latin1").rstrip())
    f.write_bytes(data[:10] + (header.ljust(size - 1) + "\n").encode("latin1") + data[10 + size:])
    return ws.stats_cmd(c)


def stats_without_schema_version(ws):
    f = ws.stats()

    def drop(content):
        meta = json.loads(content["__meta__"].tobytes())
        del meta["schema_version"]
        content["__meta__"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)

    _rewrite_npz(f, drop)
    return ws.simulate("--stats", str(f))


def config_hidden_size_huge(ws):
    m = ws.model()
    _edit_json(m / "config.json", hidden_size=10**9)
    return ws.info(m)


def pooling_mode_as_text(ws):
    m = ws.model()
    (m / "modules.json").write_text(json.dumps([{"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    (m / "1_Pooling").mkdir()
    (m / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": "false", "pooling_mode_mean_tokens": True}))
    return ws.info(m)


def out_below_a_file(ws):
    (ws.root / "afile").write_text("user data\n")
    return ws.export(ws.root / "afile" / "weight_dict.pth")


def _failing_write(code: int):
    def case(ws):
        def fail(self, data):
            raise OSError(code, os.strerror(code), str(self))

        ws.monkeypatch.setattr(Path, "write_bytes", fail)  # the byte write of export-embeddings
        return ws.export(ws.root / "out" / "weight_dict.pth")

    case.__name__ = f"write_fails_{errno.errorcode[code]}"
    return case


def _cli(*argv: str):
    """A bad number on the command line: refused while parsing, before anything is read."""
    def case(ws):
        return [a.format(root=ws.root) for a in argv]

    case.__name__ = "cli_" + "_".join(a.strip("-").replace(".", "p") or "empty" for a in argv if not a.startswith("{"))[:60]
    return case


def _sweep_cli(*extra: str):
    def case(ws):
        return ["sweep", "--model", str(ws.model()), "--stsb-dir", str(ws.stsb()), "--stats", str(ws.stats()), "--out", str(ws.root / "sw"), *extra]

    case.__name__ = "sweep_" + "_".join(a.strip("-").replace(".", "p") or "empty" for a in extra)
    return case


def out_is_a_file(command):
    def case(ws):
        (ws.root / "afile").write_text("user data\n")
        if command == "run":
            return ["run", "--model", str(ws.model()), "--stsb-dir", str(ws.stsb()), "--quick", "--out", str(ws.root / "afile")]
        return _sweep_cli("--out", str(ws.root / "afile"))(ws)

    case.__name__ = f"{command}_out_is_a_file"
    return case


@dataclass(frozen=True)
class Case:
    build: Callable
    says: str  # a phrase the one sentence must hold


CASES = [
    # issue 16 point 5
    Case(no_tokenizer, "no tokenizer files"),
    # point 6
    Case(config_not_utf8, "not UTF-8"),
    Case(safetensors_truncated, "Could not load the weights"),
    Case(safetensors_random, "Could not load the weights"),
    Case(hidden_size_mismatch, "do not match config.json"),
    Case(pytorch_bin_with_code, "holds code or objects"),
    Case(modules_json_broken, "not valid JSON"),
    Case(modules_json_object, "not a JSON list"),
    Case(max_seq_length_text, "max_seq_length 'long'"),
    Case(max_seq_length_negative, "max_seq_length -1"),
    Case(stsb_empty, "holds no sentence pairs"),
    Case(stsb_random_bytes, "not UTF-8"),
    Case(npy_truncated, "calib_00003.npy"),
    Case(npy_random, "not a valid .npy file"),
    Case(npy_object, "holds Python objects"),
    Case(manifest_broken_json, "not valid JSON"),
    Case(manifest_without_samples, "no list of samples"),
    Case(manifest_is_a_list, "not a JSON object"),
    Case(stats_truncated, "not a bertnpu stats file"),
    Case(stats_empty, "not a bertnpu stats file"),
    Case(stats_bad_metadata, "metadata"),
    Case(stats_missing_site, "layer.1.attention.softmax.out"),
    Case(stats_out_is_folder, "is a folder"),
    Case(config_is_folder, "is a folder"),
    Case(config_random_bytes, "not UTF-8"),
    Case(out_below_a_file, "is a file, not a folder"),
    Case(_failing_write(errno.EACCES), "permission denied"),
    Case(_failing_write(errno.ENOSPC), "No space left"),
    Case(weight_dict_truncated, "not a plain tensor file"),
    Case(weight_dict_with_code, "not a plain tensor file"),
    Case(weight_dict_plain_pickle, "not a plain tensor file"),
    Case(_cli("eval", "--batch-size", "0"), "--batch-size: '0' is not a whole number of 1 or more"),
    Case(_cli("stats", "--calib", "c", "--out", "o.npz", "--batch-size", "x"), "--batch-size: 'x' is not a whole number"),
    Case(_cli("simulate", "--limit", "1"), "--limit: '1' is not a whole number of 2 or more (or 0 for all pairs)"),
    Case(_sweep_cli("--percentiles", ""), "--percentiles '' holds no numbers"),
    Case(out_is_a_file("run"), "is a file, not a folder"),
    Case(out_is_a_file("sweep"), "is a file, not a folder"),
    # point 7
    Case(_cli("eval", "--batch-size", "-3"), "--batch-size: '-3' is not a whole number of 1 or more"),
    Case(_cli("eval", "--limit", "-5"), "--limit: '-5' is not a whole number"),
    Case(_cli("run", "--quick", "--no-plan", "--out", ""), "--out: '' is empty; give a path"),  # would have written into the current folder
    Case(_cli("compile", "--calib", "{root}", "--out", " "), "--out: ' ' is empty"),
    Case(_sweep_cli("--methods", "1.5"), "--methods '1.5' holds 1.5, not a whole number"),
    Case(_stsb_score("nan"), "Line 3"),
    Case(_stsb_score("inf"), "Line 3"),
    Case(_stsb_score("-7"), "outside STS-B's 0-5 range"),
    Case(_stsb_score("1e9"), "outside STS-B's 0-5 range"),
    Case(weight_dict_wrong_hidden, "36"),
    Case(weight_dict_nan, "NaN or inf"),
    Case(weight_dict_int64, "torch.int64"),
    Case(npy_huge, "3e+38"),
    Case(npy_nan, "NaN or inf"),
    Case(weights_with_nan, "NaN or inf"),
    # point 8
    Case(manifest_file_outside, "points outside"),
    Case(modules_path_outside, "points outside"),
    Case(vocab_symlink_outside, "links outside the model folder"),
    # issue 27: readers of user files validate at the boundary
    Case(_recipe_case("recipe_prediction_list", "simulate", "--recipe", prediction=[1, 2]), "prediction=[1, 2] is invalid"),
    Case(_recipe_case("recipe_prediction_null_sweep", "sweep", "--config", prediction=None), "prediction=None is invalid"),
    Case(_recipe_case("recipe_prediction_string", "simulate", "--config", prediction="high"), "prediction='high' is invalid"),
    Case(_recipe_case("recipe_nested_5000_deep", "simulate", "--recipe", text="[" * 5000 + "]" * 5000), "nested deeper than the 32 levels"),
    Case(_recipe_case("recipe_schema_version_5000_digits", "sweep", "--config", text='{"schema_version": ' + "7" * 5000 + "}"),
         "more digits than bertnpu reads"),
    Case(_recipe_case("recipe_schema_version_0", "simulate", "--recipe", schema_version=0), "schema_version=0 is invalid"),
    Case(_recipe_case("recipe_schema_version_minus_1", "sweep", "--config", schema_version=-1), "schema_version=-1 is invalid"),
    Case(_recipe_case("recipe_schema_version_missing", "simulate", "--recipe", drop="schema_version"), "has no schema_version"),
    Case(_recipe_case("recipe_duplicate_key", "simulate", "--recipe", text='{"schema_version": 2, "profile": "aries", "profile": "optimistic"}'),
         "holds the key 'profile' twice"),
    Case(manifest_schema_version_zero, "schema_version=0 is invalid"),
    Case(manifest_tokens_disagree, "calib_00002.npy"),
    Case(npy_header_claims_terabytes, "header promises shape"),
    Case(stats_without_schema_version, "has no schema_version"),
    Case(config_hidden_size_huge, "hidden_size=1000000000"),
    Case(pooling_mode_as_text, "pooling_mode_cls_token='false'"),
]


def _snapshot(root: Path) -> dict[str, tuple]:
    """Every entry under ``root`` with its kind, size and modification time."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(root))] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def saved_stats(tiny_stats, tmp_path_factory) -> Path:
    return tiny_stats.save(tmp_path_factory.mktemp("stats") / "stats.npz")


@pytest.mark.parametrize("case", CASES, ids=[c.build.__name__ for c in CASES])
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(case, tmp_path, monkeypatch, capsys, tiny_model_dir, stsb_dir, tiny_calib, saved_stats):
    from bertnpu.cli import main

    root = tmp_path / "work"
    root.mkdir()
    ws = Workspace(root, tiny_model_dir, stsb_dir, Path(tiny_calib.source), saved_stats, monkeypatch)
    argv = case.build(ws)
    monkeypatch.chdir(root)
    before = _snapshot(root)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:  # a warning would be another line on stderr
        warnings.simplefilter("always")
        code = main(argv)
    monkeypatch.undo()
    captured = capsys.readouterr()
    err = captured.err
    lines = err.strip("\n").split("\n")
    assert code == 2, err
    assert len(lines) == 1 and re.match(r"bertnpu( [a-z-]+)?: error: ", lines[0]), err  # argparse names the command
    assert case.says in lines[0], lines[0]
    assert lines[0].endswith("."), lines[0]
    assert _snapshot(root) == before
    assert not caught, [str(w.message) for w in caught]
    assert "code ran" not in captured.out + err


def _all_sites(model) -> list[str]:
    from bertnpu.quant.sites import list_sites

    return [s.name for s in list_sites(model)]


@pytest.mark.parametrize("name,changes,says", [
    # clipped share = topk_ratio * (1 - percentile) = 0.01 of every site's values
    ("low_percentile", {"calibration": {"method": 1, "output": 0, "mode": 1, "percentile": 1e-300, "topk_ratio": 0.01, "bits": 8}},
     "percentile=1e-300 in the recipe file 'recipe.json' clips 0.01 of every site's values"),
    # floor(1e-9 * 0.001 * N) = 0 for any N this tiny calibration set gives
    ("tiny_topk", {"calibration": {"method": 1, "output": 0, "mode": 1, "percentile": 0.999, "topk_ratio": 1e-9, "bits": 8}},
     "topk_ratio=1e-09 with percentile=0.999 in the file 'recipe.json' keeps fewer than one"),
    ("every_site_16bit", {"activation_16bits": None}, "activation_16bits names all"),
])
def test_legal_but_pointless_values_run_with_one_note_line(name, changes, says, tmp_path, monkeypatch, capsys, tiny_model_dir, tiny_model,
                                                           stsb_dir, saved_stats):
    """Issue 27 point 3: accepted (exit 0, the usual output) with exactly one note naming the consequence."""
    from bertnpu.cli import main
    from bertnpu.quant.recipe import Recipe

    if name == "every_site_16bit":
        # a calibration that clips something even on the tiny set, so the sites' note is the only one
        changes = {"activation_16bits": _all_sites(tiny_model), "calibration": {"method": 1, "output": 0, "mode": 1, "percentile": 0.9,
                                                                               "topk_ratio": 0.5, "bits": 8}}
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({**Recipe().to_dict(), **changes}))
    capsys.readouterr()
    code = main(["simulate", "--model", str(tiny_model_dir), "--stsb-dir", str(stsb_dir), "--limit", "8", "--json", "--recipe", str(recipe),
                 "--stats", str(saved_stats)])
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if line.startswith("bertnpu: note:")]
    assert code == 0, captured.err
    assert len(notes) == 1 and says in notes[0], captured.err
    assert "spearman" in json.loads(captured.out)
