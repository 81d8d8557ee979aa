"""Compile this bundle's BERT to an .mxq with Mobilint's qbcompiler, exactly as its recipe.json says (run inside the qbcompiler image).

Standalone: needs only qbcompiler, torch and transformers, and works from any working directory.
Reads, from this folder:
  model/            the Hugging Face model folder (weights, config, tokenizer)
  calib/            calibration data: one [1, seq_len, hidden] float32 .npy per sample, npy_files.txt
  recipe.json       calibration config, 16-bit sites, equivalent transformations (bertnpu's names)
  sites.json        the model's site names; mblt_map.py maps them to qbcompiler's operator names
  bundle.json       model name, feed sentence, what the compiled model returns
Two passes: mblt_compile to a temp file, map the 16-bit sites to operators by graph structure
(stop if one has none), then mxq_compile with calibration_config, bit_config and
equivalent_transformation_config. Writes <model name>.mxq and <model name>.mxq.recipe.json
(temp names first, then renamed) unless they exist (pass --force).
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
KNOB_WHAT = {"bit_config": "16-bit activations per operator (BitConfig)",
             "equivalent_transformation_config": "equivalent transformations (EquivalentTransformationConfig)",
             "target_device": "target_device"}


def read_json(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as fh:
        return json.load(fh)


def needed_knobs(recipe):
    knobs = []
    if recipe.get("activation_16bits"):
        knobs.append("bit_config")
    if any(recipe.get("equivalent_transformation", {}).values()):
        knobs.append("equivalent_transformation_config")
    if recipe.get("target_device"):
        knobs.append("target_device")
    return knobs


def supported_knobs(qbcompiler):
    have = set()
    if hasattr(qbcompiler, "BitConfig"):
        try:
            from qbcompiler.model_dict.serialize import load_mblt_model  # noqa: F401
            have.add("bit_config")
        except ImportError:
            pass
    if hasattr(qbcompiler, "EquivalentTransformationConfig"):
        have.add("equivalent_transformation_config")
    if hasattr(qbcompiler, "CalibrationConfig"):
        have.add("target_device")
    return have


def calibration_listing(workdir):
    """A listing of absolute paths, so qbcompiler finds the samples whatever its working directory."""
    calib = os.path.join(HERE, "calib")
    with open(os.path.join(calib, "npy_files.txt")) as fh:
        names = [line.strip() for line in fh if line.strip()]
    listing = os.path.join(workdir, "npy_files.txt")
    with open(listing, "w") as fh:
        fh.writelines(os.path.join(calib, n) + "\n" for n in names)
    return listing


def build_module(bundle):
    import torch
    from transformers import BertModel

    class PoolingReadyBert(torch.nn.Module):
        """BertModel returning exactly what the pooling needs (bundle.json "output")."""

        def __init__(self, bert, returns):
            super().__init__()
            self.bert, self.returns = bert, returns

        def forward(self, input_ids, attention_mask=None, token_type_ids=None):
            out = self.bert(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
            return out.pooler_output if self.returns == "pooler_output" else out.last_hidden_state

    bert = BertModel.from_pretrained(os.path.join(HERE, "model"))
    return PoolingReadyBert(bert, bundle["output"]["returns"]).eval()


def build_feed(bundle):
    from qbcompiler.model_dict.parser.backend.torch.object_wrapper import set_attention_mask
    from qbcompiler.model_dict.parser.backend.torch.util import wrap_tensor
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(os.path.join(HERE, "model"))  # local folder: no remote code
    feed = {}
    for key, value in tokenizer(bundle["feed_sentence"], return_tensors="pt").items():
        wrapped = wrap_tensor(key, value)
        wrapped.src_shape[1].set_dynamic()
        feed[key] = wrapped
    set_attention_mask(feed["attention_mask"], "padding_mask")
    return feed


def calibration_kwargs(qbcompiler, cfg):
    if hasattr(qbcompiler, "CalibrationConfig"):  # qbcompiler 1.1+
        cc = qbcompiler.CalibrationConfig
        return {"calibration_config": cc(method=cfg["method"], output=cfg["output"], mode=cfg["mode"],
                                         max_percentile=cc.MaxPercentile(percentile=cfg["percentile"], topk_ratio=cfg["topk_ratio"]))}
    return {"quantization_config": qbcompiler.QuantizationConfig.from_kwargs(  # qbcompiler 1.0.x
        quantization_method=cfg["method"], quantization_output=cfg["output"], quantization_mode=cfg["mode"],
        percentile=cfg["percentile"], topk_ratio=cfg["topk_ratio"])}


def map_sites_to_operators(qbcompiler, module, feed, sites, wanted, workdir, target):
    """Pass 1: the operator name of each wanted site, from the MBLT graph's structure."""
    from qbcompiler.model_dict.serialize import load_mblt_model

    sys.path.insert(0, HERE)
    import mblt_map

    mblt = os.path.join(workdir, "pass1.mblt")
    qbcompiler.mblt_compile(model=module, mblt_save_path=mblt, backend="torch", feed_dict=feed, cpu_offload=True, **target)
    parsed, _ = load_mblt_model(mblt)
    site_map = mblt_map.map_sites(mblt_map.graph_ops(parsed), sites)
    try:
        names = site_map.resolve(wanted)
    except ValueError as exc:
        sys.exit(str(exc))
    return dict(zip(wanted, names)), names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output .mxq (default: from bundle.json, in this folder)")
    parser.add_argument("--device", default=None, choices=["cpu", "gpu"], help="compile device (default: qbcompiler's choice)")
    parser.add_argument("--force", action="store_true", help="replace an existing .mxq")
    parser.add_argument("--allow-missing-knobs", action="store_true", help="compile with a qbcompiler that lacks a knob the recipe uses")
    args = parser.parse_args()

    bundle, recipe, sites = read_json("bundle.json"), read_json("recipe.json"), read_json("sites.json")
    out = os.path.abspath(args.out or os.path.join(HERE, bundle["mxq_name"]))
    record_path = out + ".recipe.json"
    if os.path.exists(out) and not args.force:
        sys.exit(f"{out} already exists; pass --force to replace it.")

    try:
        import qbcompiler
    except ImportError:
        sys.exit("qbcompiler is not installed: run this script inside Mobilint's qbcompiler Docker image (see README.md).")
    api = "1.1+" if hasattr(qbcompiler, "CalibrationConfig") else "1.0.x"
    missing = [k for k in needed_knobs(recipe) if k not in supported_knobs(qbcompiler)]
    if missing and not args.allow_missing_knobs:
        sys.exit(f"The installed qbcompiler ({api} API) lacks {', '.join(f'{k} ({KNOB_WHAT[k]})' for k in missing)}, which recipe.json uses; "
                 "use a qbcompiler 1.1+ image, or pass --allow-missing-knobs to compile without them.")

    module = build_module(bundle)
    feed = build_feed(bundle)
    kwargs = calibration_kwargs(qbcompiler, recipe["calibration"])
    target = {"target_device": recipe["target_device"]} if recipe.get("target_device") and "target_device" not in missing else {}
    passed = {"calibration": recipe["calibration"], **target}
    if "equivalent_transformation_config" in supported_knobs(qbcompiler):
        etc = qbcompiler.EquivalentTransformationConfig
        t = {k: bool(recipe.get("equivalent_transformation", {}).get(k, False)) for k in ("norm_conv", "qk", "vo", "ud")}
        kwargs["equivalent_transformation_config"] = etc(norm_conv=etc.NormConv(apply=t["norm_conv"]), qk=etc.Qk(apply=t["qk"]),
                                                         vo=etc.Vo(apply=t["vo"]), ud=etc.Ud(apply=t["ud"]))
        passed["equivalent_transformation"] = t
    extra = {"device": args.device} if args.device else {}

    workdir = tempfile.mkdtemp(prefix=".compile.", dir=os.path.dirname(out))
    tmp = os.path.join(workdir, "model.mxq")
    operators = {}
    try:
        wanted = list(recipe.get("activation_16bits", []))
        if wanted and "bit_config" not in missing:
            operators, names = map_sites_to_operators(qbcompiler, module, feed, sites, wanted, workdir, target)
            kwargs["bit_config"] = qbcompiler.BitConfig(layer_overrides=qbcompiler.BitConfig.LayerOverrides(activation_16bits=names))
            passed["activation_16bits"] = names
        qbcompiler.mxq_compile(model=module, save_path=tmp, calib_data_path=calibration_listing(workdir), backend="torch",
                               feed_dict=feed, **kwargs, **target, **extra)
        record = {"schema_version": 1, "tool": f"{bundle['tool']} (bundle script)", "model": bundle["model"], "recipe": recipe,
                  "operators": operators, "passed": passed, "knobs_dropped": missing, "qbcompiler_api": api, "output": bundle["output"]}
        with open(os.path.join(workdir, "record.json"), "w") as fh:
            json.dump(record, fh, indent=2, sort_keys=True)
        os.replace(os.path.join(workdir, "record.json"), record_path)  # an .mxq never appears without its record
        os.replace(tmp, out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"wrote {out} and {record_path}")
    if missing:
        print(f"compiled WITHOUT {', '.join(missing)} (--allow-missing-knobs): the .mxq is not the recipe that was simulated", file=sys.stderr)


if __name__ == "__main__":
    main()
