#!/usr/bin/python3
"""Makes the small TorchScript test models and their reference outputs.

Run with Debian's python3 (apt-get install python3-torch):

    /usr/bin/python3 tests/models/make_torch_fixtures.py

TorchScript saved by torch 1.13 loads in libtorch 2.10 with identical outputs. Outputs, committed,
in tests/models/torch/ (the .ref format is described in make_onnx_fixtures.py):
  mlp.pt      input_0[N,16] FP32 -> Linear 16x32 -> ReLU -> Linear 32x4 -> [N,4]
  tokens.pt   input_ids[N,8] INT64, attention_mask[N,8] INT64 -> Embedding(100,6), masked mean,
              Linear 6x3 -> [N,3] FP32 (a tokenised-text model)
  tuple.pt    x[N,4] FP32 -> (2x, sum over dim 1)
  dict.pt     x[N,4] FP32 -> {"double": 2x, "negated": -x}
"""
import os
from typing import Dict, Tuple

import torch

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch")
torch.manual_seed(20261125)
DTYPES = {torch.float32: "FP32", torch.int64: "INT64", torch.float64: "FP64", torch.int32: "INT32", torch.bool: "BOOL"}


def fmt(v, dtype):
    return repr(float(v)) if dtype in ("FP32", "FP64") else str(int(v))


def write_ref(name, tensors):
    with open(os.path.join(HERE, name), "w") as f:
        f.write("# made by tests/models/make_torch_fixtures.py with torch " + torch.__version__ + "\n")
        for role, tname, t in tensors:
            dtype = DTYPES[t.dtype]
            f.write(" ".join([role, tname, dtype, str(t.dim())] + [str(d) for d in t.shape]
                             + [fmt(v, dtype) for v in t.reshape(-1).tolist()]) + "\n")


class Mlp(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = torch.nn.Linear(16, 32)
        self.fc2 = torch.nn.Linear(32, 4)

    def forward(self, input_0: torch.Tensor) -> torch.Tensor:
        return self.fc2(torch.relu(self.fc1(input_0)))


class Tokens(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = torch.nn.Embedding(100, 6)
        self.head = torch.nn.Linear(6, 3)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        mask = attention_mask.unsqueeze(-1).to(torch.float32)
        pooled = (self.embedding(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1.0)
        return self.head(pooled)


class TupleOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        return x * 2, x.sum(1)


class DictOut(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> Dict[str, torch.Tensor]:
        return {"double": x * 2, "negated": -x}


def save(module, name):
    scripted = torch.jit.script(module.eval())
    scripted.save(os.path.join(HERE, name))
    return scripted


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    with torch.no_grad():
        m = save(Mlp(), "mlp.pt")
        x = torch.randn(3, 16)
        write_ref("mlp.ref", [("in", "input_0", x), ("out", "output_0", m(x))])

        m = save(Tokens(), "tokens.pt")
        ids = torch.randint(0, 100, (2, 8), dtype=torch.int64)
        mask = torch.ones(2, 8, dtype=torch.int64)
        mask[1, 5:] = 0
        write_ref("tokens.ref", [("in", "input_ids", ids), ("in", "attention_mask", mask), ("out", "output_0", m(ids, mask))])

        m = save(TupleOut(), "tuple.pt")
        x = torch.randn(2, 4)
        a, b = m(x)
        write_ref("tuple.ref", [("in", "x", x), ("out", "output_0", a), ("out", "output_1", b)])

        m = save(DictOut(), "dict.pt")
        d = m(x)
        write_ref("dict.ref", [("in", "x", x), ("out", "double", d["double"]), ("out", "negated", d["negated"])])
    print("wrote", ", ".join(sorted(os.listdir(HERE))))
