"""TEST DOUBLE of Mobilint's qbruntime (see tests/doubles/README.md): runs the double's .mxq in FP32 on the CPU."""

import json

IS_TEST_DOUBLE = True
disposed = []


class Accelerator:
    def __init__(self, dev_no=0):
        self.dev_no = dev_no


class ModelConfig:
    pass


class Model:
    def __init__(self, path, config):
        import torch
        from safetensors import safe_open
        from transformers import BertConfig
        from transformers.models.bert.modeling_bert import BertEncoder, BertPooler

        with safe_open(path, "pt") as fh:
            meta = fh.metadata()
            state = {k: fh.get_tensor(k) for k in fh.keys()}
        cfg = BertConfig(**json.loads(meta["config"]))
        self.encoder = BertEncoder(cfg).eval()
        self.encoder.load_state_dict({k[len("encoder."):]: v for k, v in state.items() if k.startswith("encoder.")})
        self.returns = meta.get("returns", "last_hidden_state")  # what the compiled module's forward returned
        self.pooler = None
        if self.returns == "pooler_output":
            self.pooler = BertPooler(cfg).eval()
            self.pooler.load_state_dict({k[len("pooler."):]: v for k, v in state.items() if k.startswith("pooler.")})
        self.launched = False
        self.path = path
        self.torch = torch

    def launch(self, acc):
        self.launched = True

    def infer(self, inputs):
        assert self.launched, "launch() first"
        (x,) = inputs
        assert x.dtype.name == "float32" and x.ndim == 3 and x.shape[0] == 1
        with self.torch.no_grad():
            out = self.encoder(self.torch.from_numpy(x)).last_hidden_state
            if self.pooler is not None:
                out = self.pooler(out)
        return [out.numpy()]

    def dispose(self):
        disposed.append(self.path)
