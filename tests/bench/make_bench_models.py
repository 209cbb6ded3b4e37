#!/usr/bin/env python3
"""Makes the benchmark-only model: a wide MLP (512-2048-2048-512, ReLU, fp32, 17 MB), big enough
that batching pays (at batch 1 every request streams all weights; batched, a request shares them).
Not a test fixture and not committed: tests/bench/run.sh writes it into the build tree.
Needs Debian's python3-onnx and python3-numpy:  make_bench_models.py <out-dir>"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1] if len(sys.argv) > 1 else "build/bench/models"
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(11)
sizes = [512, 2048, 2048, 512]
nodes, inits = [], []
x = "input"
for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
    w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
    bias = (rng.standard_normal(b) * 0.01).astype(np.float32)
    inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
    y = "output" if i == len(sizes) - 2 else f"h{i}"
    nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y if i == len(sizes) - 2 else f"g{i}"]))
    if i != len(sizes) - 2:
        nodes.append(helper.make_node("Relu", [f"g{i}"], [y]))
    x = y
graph = helper.make_graph(nodes, "wide_mlp",
                          [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", sizes[0]])],
                          [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", sizes[-1]])], inits)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, os.path.join(out, "wide_mlp.onnx"))
print(f"wrote {os.path.join(out, 'wide_mlp.onnx')}")
