"""Compile this bundle's BERT to an INT8 .mxq with Mobilint's qbcompiler (run inside the qbcompiler image).

Standalone: needs only qbcompiler, torch and transformers. Reads, from this folder:
  model/               the Hugging Face model folder (weights, config, tokenizer)
  calib/               calibration data: one [1, seq_len, hidden] float32 .npy per sample
  quant_config.json    method / output / mode / percentile / topk_ratio
Writes <model name>.mxq (to a temp name first, then renamed) unless it exists (pass --force).
"""

import argparse
import json
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="output .mxq (default: from bundle.json)")
    parser.add_argument("--device", default=None, choices=["cpu", "gpu"], help="compile device (default: qbcompiler's choice)")
    parser.add_argument("--force", action="store_true", help="replace an existing .mxq")
    args = parser.parse_args()

    with open(os.path.join(HERE, "bundle.json")) as fh:
        bundle = json.load(fh)
    with open(os.path.join(HERE, "quant_config.json")) as fh:
        cfg = json.load(fh)
    out = os.path.abspath(args.out or os.path.join(HERE, bundle["mxq_name"]))
    if os.path.exists(out) and not args.force:
        sys.exit(f"{out} already exists; pass --force to replace it.")

    try:
        import qbcompiler
        from qbcompiler.model_dict.parser.backend.torch.object_wrapper import set_attention_mask
        from qbcompiler.model_dict.parser.backend.torch.util import wrap_tensor
    except ImportError:
        sys.exit("qbcompiler is not installed: run this script inside Mobilint's qbcompiler Docker image (see README.md).")
    from transformers import BertModel, BertTokenizer  # noqa: E402  (the image ships transformers with qbcompiler)

    model_dir = os.path.join(HERE, "model")
    tokenizer = BertTokenizer.from_pretrained(model_dir)  # local folder: no remote code
    model = BertModel.from_pretrained(model_dir)
    model.eval()

    inputs = tokenizer(bundle["feed_sentence"], return_tensors="pt")
    feed_dict = {}
    for key, value in inputs.items():
        wrapped = wrap_tensor(key, value)
        wrapped.src_shape[1].set_dynamic()
        feed_dict[key] = wrapped
    set_attention_mask(feed_dict["attention_mask"], "padding_mask")

    if hasattr(qbcompiler, "CalibrationConfig"):  # qbcompiler 1.1+
        cc = qbcompiler.CalibrationConfig
        quant = {"calibration_config": cc(method=cfg["method"], output=cfg["output"], mode=cfg["mode"],
                                          max_percentile=cc.MaxPercentile(percentile=cfg["percentile"], topk_ratio=cfg["topk_ratio"]))}
    else:  # qbcompiler 1.0.x
        quant = {"quantization_config": qbcompiler.QuantizationConfig.from_kwargs(
            quantization_method=cfg["method"], quantization_output=cfg["output"], quantization_mode=cfg["mode"],
            percentile=cfg["percentile"], topk_ratio=cfg["topk_ratio"])}
    extra = {"device": args.device} if args.device else {}

    fd, tmp = tempfile.mkstemp(prefix=".compile.", suffix=".tmp.mxq", dir=os.path.dirname(out))
    os.close(fd)
    try:
        qbcompiler.mxq_compile(model=model, save_path=tmp, calib_data_path=os.path.join(HERE, "calib"), backend="torch",
                               feed_dict=feed_dict, **quant, **extra)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
