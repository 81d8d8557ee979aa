"""Compile this bundle's BERT to an .mxq with Mobilint's qbcompiler, exactly as its recipe.json says (run inside the qbcompiler image).

Standalone: needs only qbcompiler, torch and transformers, and works from any working directory.
Reads, from this folder:
  model/            the Hugging Face model folder (weights, config, tokenizer)
  calib/            calibration data: one [1, seq_len, hidden] float32 .npy per sample, npy_files.txt
  recipe.json       calibration config, 16-bit sites, equivalent transformations (bertnpu's names)
  sites.json        the model's site names; mblt_map.py maps them to qbcompiler's operator names
  bundle.json       model name, feed sentence, what the compiled model returns
Every qbcompiler call is built by the qb_calls functions inserted below (the same text bertnpu's adapter uses): every
argument by keyword (1.3 reordered mblt_compile's positional ones), target_device from recipe.json or --target-device
(required by 1.3), wrap_tensor/set_attention_mask from the 1.0-1.2 layout or 1.3's model_dict_legacy.
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

# --- bertnpu/device/qb_calls.py, inserted here by bertnpu's bundle writer (the one description of the calls) ---


def read_json(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as fh:
        return json.load(fh)


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


def build_bundle_feed(bundle):
    from transformers import BertTokenizer

    tokenizer = BertTokenizer.from_pretrained(os.path.join(HERE, "model"))  # local folder: no remote code
    return build_feed(dict(tokenizer(bundle["feed_sentence"], return_tensors="pt")))


def map_sites_to_operators(qbcompiler, module, feed, sites, recipe, workdir, target_device):
    """Pass 1: the operator name of each wanted site (in the recipe's order), from the MBLT graph's structure, then the
    recipe's raw operator names."""
    sys.path.insert(0, HERE)
    import mblt_map

    wanted = list(recipe.get("activation_16bits", []))
    mblt = os.path.join(workdir, "pass1.mblt")
    qbcompiler.mblt_compile(**mblt_compile_kwargs(module, mblt, feed, target_device))
    parsed, _ = mblt_reader()(mblt)
    ops = mblt_map.graph_ops(parsed)
    site_map = mblt_map.map_sites(ops, sites)
    try:
        names = site_map.resolve(wanted)
        check_operator_names(recipe.get("activation_16bits_operators", []), [o.name for o in ops])
    except ValueError as exc:
        sys.exit(str(exc))
    raw = [n for n in recipe.get("activation_16bits_operators", []) if n not in names]
    return names + raw


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output .mxq (default: from bundle.json, in this folder)")
    parser.add_argument("--device", default=None, choices=["cpu", "gpu"], help="compile device (default: qbcompiler's choice)")
    parser.add_argument("--force", action="store_true", help="replace an existing .mxq")
    parser.add_argument("--allow-missing-knobs", action="store_true", help="compile with a qbcompiler that lacks a knob the recipe uses")
    parser.add_argument("--target-device", default=None, help=f"qbcompiler's target_device (overrides recipe.json): one of {', '.join(TARGET_DEVICES)}")
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
    try:
        generation = api_generation(qbcompiler)
        check_version(recipe.get("qbcompiler_version"), qbcompiler)
        target_device = resolve_target_device(generation, recipe.get("target_device"), args.target_device)
        missing = [k for k in needed_knobs(dict(recipe, target_device=target_device)) if k not in supported_knobs(qbcompiler)]
        if missing and not args.allow_missing_knobs:
            sys.exit(missing_knobs_sentence(qbcompiler, missing, "recipe.json"))
        module = build_module(bundle)
        feed = build_bundle_feed(bundle)
    except ValueError as exc:
        sys.exit(str(exc))
    kwargs = calibration_kwargs(qbcompiler, recipe["calibration"])
    target_device = target_device if "target_device" not in missing else None
    passed = {"calibration": recipe["calibration"], **target_kwargs(target_device)}
    if "equivalent_transformation_config" in supported_knobs(qbcompiler):
        etc_kwargs, passed["equivalent_transformation"] = transformation_kwargs(qbcompiler, recipe.get("equivalent_transformation", {}))
        kwargs.update(etc_kwargs)
    api = API_LABELS[generation]

    workdir = tempfile.mkdtemp(prefix=".compile.", dir=os.path.dirname(out))
    tmp = os.path.join(workdir, "model.mxq")
    sites_16bit, operators_16bit = [], []  # bertnpu site names, and the qbcompiler operator names passed for them
    try:
        if (recipe.get("activation_16bits") or recipe.get("activation_16bits_operators")) and "bit_config" not in missing:
            operators_16bit = map_sites_to_operators(qbcompiler, module, feed, sites, recipe, workdir, target_device)
            sites_16bit = list(recipe.get("activation_16bits", []))
            kwargs.update(bit_kwargs(qbcompiler, operators_16bit))
        qbcompiler.mxq_compile(**mxq_compile_kwargs(module, tmp, calibration_listing(workdir), feed, kwargs, target_device, args.device))
        record = {"schema_version": bundle["record_schema_version"], "tool": f"{bundle['tool']} (bundle script)", "model": bundle["model"],
                  "recipe": recipe, "sites_16bit": sites_16bit, "operators_16bit": operators_16bit, "passed": passed,
                  "knobs_dropped": missing, "qbcompiler_api": api, "qbcompiler_version": installed_version(qbcompiler),
                  "output": bundle["output"]}
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
