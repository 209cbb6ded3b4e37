#!/usr/bin/env python3
"""Makes the benchmark-only models (not test fixtures, not committed: tests/bench/run.sh writes
them into the build tree), each an fp32 ReLU MLP with input "input" [batch, n] and output
"output" [batch, m], from its own seeded generator (so each file is the same on every run):
  - wide_mlp.onnx: 512-2048-2048-512 (25 MB), big enough that batching pays (at batch 1 every
    request streams all weights; batched, a request shares them);
  - mlp256.onnx: 256-512-512-10 (1.6 MB), the model of the default-settings comparisons.
Needs Debian's python3-onnx and python3-numpy:  make_bench_models.py <out-dir>"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def mlp(name, sizes, seed):
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    x = "input"
    last = len(sizes) - 2
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        w = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(np.float32)
        bias = (rng.standard_normal(b) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(bias, f"b{i}")]
        y = "output" if i == last else f"h{i}"
        nodes.append(helper.make_node("Gemm", [x, f"w{i}", f"b{i}"], [y if i == last else f"g{i}"]))
        if i != last:
            nodes.append(helper.make_node("Relu", [f"g{i}"], [y]))
        x = y
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", sizes[0]])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", sizes[-1]])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


out = sys.argv[1] if len(sys.argv) > 1 else "build/bench/models"
os.makedirs(out, exist_ok=True)
for file, sizes, seed in [("wide_mlp.onnx", [512, 2048, 2048, 512], 11), ("mlp256.onnx", [256, 512, 512, 10], 12)]:
    onnx.save(mlp(os.path.splitext(file)[0], sizes, seed), os.path.join(out, file))
    print(f"wrote {os.path.join(out, file)}")
