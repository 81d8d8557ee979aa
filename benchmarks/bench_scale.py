"""How a ``bertnpu run`` grows with the model: wall time and peak memory of every stage, per model size.

Sizes: ``tiny`` (a 3 x 36 random BERT), ``minilm`` (the default model, 6 x 384), ``base`` (random
weights, 12 x 768, 12 heads, 3072 intermediate: BERT-base size) and, with ``--large``, ``large``
(24 x 1024, 16 heads, 4096). ``--layers N`` builds base and large with N layers instead (per-layer
costs, to extrapolate when the full size does not fit the time at hand). Each size runs in its own
process, so its peak resident memory (RSS) is its own; each stage's peak is measured by resetting the
kernel's high-water mark (``/proc/self/clear_refs``) at the stage's start. The reference is one FP32
evaluation of the same model (the test split's unique sentences encoded once) timed in the same process:
a stage's ratio says how many FP32 evaluations it costs, which carries over between machines.

Targets (issue 23): the default model's full run <= 2.0 GB peak; BERT-base size <= 5 GB and at most
4x the default model's wall time measured in the same benchmark run.

The machine is shared, and a run of the same size drifted by a quarter between benchmark runs here (BERT-base
size's sweep took 207 s, 235 s and 310 s at the same settings). ``--bracket`` runs the default model before and after the
big sizes: the ratio is then taken to the mean of its two runs and printed with the range the two runs span
(ratio to the faster and to the slower), so a ratio inside that range is not told apart from it.
Run: .venv/bin/python benchmarks/bench_scale.py [--quick] [--sizes tiny,minilm,base] [--large] [--layers N] [--bracket]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, stsb_dir

SIZES = {  # hidden, layers, heads, intermediate (None: the default model as shipped)
    "tiny": (36, 3, 3, 70),
    "minilm": None,
    "base": (768, 12, 12, 3072),
    "large": (1024, 24, 16, 4096),
}


def build_random_bert(folder: Path, hidden: int, layers: int, heads: int, intermediate: int) -> Path:
    """A random BertModel of the given size with the default model's tokenizer (as tests/conftest.py builds its tiny one)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from bertnpu.model.load import default_model_path

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                         intermediate_size=intermediate, max_position_embeddings=512)).eval().save_pretrained(folder)
    AutoTokenizer.from_pretrained(default_model_path()).save_pretrained(folder)
    return folder


def _reset_peak() -> None:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass


def one_size(size: str, layers: int, quick: bool, plan: bool, tmp: Path, threads: int = 0) -> dict:
    """Run every stage for one size in this process; per stage: seconds, peak RSS (bytes), ratio to one FP32 evaluation.
    ``threads`` > 0: that many torch threads for the whole size (the same for every size, so the ratios compare
    on a machine shared with other work); 0: the kernel policy's own choice (it looks at the load once)."""
    if threads:
        from bertnpu.quant.kernel_policy import KernelPolicy, apply_policy

        apply_policy(KernelPolicy(threads=threads))
    from bertnpu.memory import peak_rss_bytes, rss_bytes
    from bertnpu.run_config import RunConfig
    from bertnpu.ui.run import run_pipeline  # what `bertnpu run` calls: the stages, their figures and report.html

    spec = SIZES[size]
    layers = layers if size in ("base", "large") else 0  # --layers shrinks the big sizes only
    model_dir = None
    if spec is not None:
        hidden, full_layers, heads, inter = spec
        model_dir = str(build_random_bert(tmp / f"model-{size}", hidden, layers or full_layers, heads, inter))
    from bertnpu import load_model, load_stsb
    from bertnpu.model.sentence_encoder import SentenceEncoder
    from bertnpu.tune.evaluate import unique_sentences

    model = load_model(model_dir)
    test = load_stsb("test", stsb_dir())
    if quick:
        test = test.subset(RunConfig.quick().test_pairs)
    sentences = unique_sentences(test)[0]
    encode = SentenceEncoder(model, progress=False)
    encode(sentences[:64])  # warm-up
    start = time.perf_counter()
    encode(sentences)
    fp32 = time.perf_counter() - start
    del model, encode
    stages: dict[str, dict] = {}
    current = {}

    def log(line: str) -> None:
        print(f"  [{size}] {line}", flush=True)
        name = line.split("] ", 1)[-1].split(":", 1)[0].split(" ", 1)[0]
        if line.endswith(" ..."):
            _reset_peak()
            current.update(name=name, start=time.perf_counter())
        elif " done in " in line and current.get("name") == name:
            stages[name] = {"seconds": time.perf_counter() - current["start"], "peak_rss": peak_rss_bytes(), "rss": rss_bytes()}

    start = time.perf_counter()
    _reset_peak()
    config = (RunConfig.quick if quick else RunConfig.full)(model=model_dir, stsb_dir=stsb_dir(), out=str(tmp / f"run-{size}"), force=True, plan=plan)
    run_pipeline(config, log=log)
    total = time.perf_counter() - start
    with open("/proc/self/status") as fh:
        hwm = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM"))
    import torch

    return {"size": size, "threads": torch.get_num_threads(), "layers": layers or (spec[1] if spec else 6), "fp32_seconds": fp32, "total_seconds": total,
            "peak_rss": max([hwm] + [s["peak_rss"] for s in stages.values() if s["peak_rss"]]), "stages": stages,
            "sentences": len(sentences), "load": open("/proc/loadavg").read().split()[:3]}


def table(results: list[dict]) -> str:
    names = [n for r in results for n in r["stages"]]
    names = list(dict.fromkeys(names))
    lines = ["| size | stage | wall s | x FP32 eval | peak RSS GB |", "|---|---|---:|---:|---:|"]
    for r in results:
        label = f"{r['size']} ({r['layers']} layers)"
        lines.append(f"| {label} | FP32 evaluation ({r['sentences']} sentences) | {r['fp32_seconds']:.1f} | 1.0 | |")
        for n in names:
            s = r["stages"].get(n)
            if s:
                lines.append(f"| {label} | {n} | {s['seconds']:.1f} | {s['seconds'] / r['fp32_seconds']:.1f} | {s['peak_rss'] / 1e9:.2f} |")
        lines.append(f"| {label} | **whole run** | {r['total_seconds']:.1f} | {r['total_seconds'] / r['fp32_seconds']:.1f} | {r['peak_rss'] / 1e9:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="tiny,minilm,base")
    ap.add_argument("--large", action="store_true", help="also the BERT-large size (24 x 1024)")
    ap.add_argument("--layers", type=int, default=0, help="layers of the random sizes (0: their own)")
    ap.add_argument("--quick", action="store_true", help="bertnpu run --quick (the smoke run) instead of the full run")
    ap.add_argument("--no-plan", action="store_true")
    ap.add_argument("--bracket", action="store_true", help="run the default model before and after the other sizes (the ratio's noise)")
    ap.add_argument("--threads", type=int, default=0, help="torch threads for every size (0: the kernel policy decides per size)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    ap.add_argument("--json", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:  # the child: one size, its numbers as JSON
        with tempfile.TemporaryDirectory() as tmp:
            result = one_size(args.one, args.layers, args.quick, not args.no_plan, Path(tmp), args.threads)
        Path(args.json).write_text(json.dumps(result))
        return
    sizes = args.sizes.split(",") + (["large"] if args.large else [])
    if args.bracket:  # the default model first and last, whatever --sizes says
        sizes = ["minilm"] + [s for s in sizes if s != "minilm"] + ["minilm"]
    results = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            cmd = [sys.executable, __file__, "--one", size, "--json", str(out), "--layers", str(args.layers)]
            cmd += ["--quick"] if args.quick else []
            cmd += ["--no-plan"] if args.no_plan else []
            cmd += ["--threads", str(args.threads)]
            subprocess.run(cmd, check=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
            results.append(json.loads(out.read_text()))
    print(table(results))
    by = {r["size"]: r for r in results}
    default = [r["total_seconds"] for r in results if r["size"] == "minilm"]
    if default:
        runs = " and ".join(f"{s:.0f} s" for s in default)
        print(f"default model: peak RSS {max(r['peak_rss'] for r in results if r['size'] == 'minilm') / 1e9:.2f} GB (target <= 2.0 GB), {runs}")
    for big in ("base", "large"):
        if big in by and default:
            r = by[big]
            mean = sum(default) / len(default)
            spread = (f" (to the default model's {len(default)} runs: {r['total_seconds'] / max(default):.2f}x-{r['total_seconds'] / min(default):.2f}x)"
                      if len(default) > 1 else "")
            print(f"{big} ({r['layers']} layers): peak RSS {r['peak_rss'] / 1e9:.2f} GB, wall {r['total_seconds']:.0f} s = "
                  f"{r['total_seconds'] / mean:.2f}x the default model's{spread} (target for base: <= 5 GB, <= 4x)")
    print("torch threads per size:", {r["size"]: r["threads"] for r in results})
    print("load average (1, 5, 15 min):", open("/proc/loadavg").read().split()[:3])


if __name__ == "__main__":
    main()
