#!/usr/bin/env python3
"""Makes the benchmark-only models (not test fixtures, not committed: tests/bench/run.sh writes
them into the build tree). Two fp32 ReLU MLPs with input "input" [batch, n] and output "output"
[batch, m], each from its own seeded generator (so each file is the same on every run):
  - wide_mlp.onnx: 512-2048-2048-512 (25 MB), big enough that batching pays (at batch 1 every
    request streams all weights; batched, a request shares them);
  - mlp256.onnx: 256-512-512-10 (1.6 MB), the model of the default-settings comparisons;
and two that move bytes and barely compute, so that what a run measures is the transport:
  - big_identity.onnx: "input" FP32 [batch, 1048576] (4 MiB a row) to "output" = input * 1.0
    (a Mul rather than an Identity, so that the output is a tensor of its own, not the input passed on);
  - many_outputs.onnx: "input" FP32 [batch, 262144] (1 MiB a row) to "out0".."out11", each the
    input times its own constant (12 MiB of outputs a row), for requested-output selection.
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


def scaled(name, width, outputs):
    """Input "input" [batch, width]; outputs[i] = input * (i + 1.0); one output named "output" when alone."""
    names = ["output"] if outputs == 1 else [f"out{i}" for i in range(outputs)]
    inits = [numpy_helper.from_array(np.array(i + 1.0, dtype=np.float32), f"k{i}") for i in range(outputs)]
    nodes = [helper.make_node("Mul", ["input", f"k{i}"], [n]) for i, n in enumerate(names)]
    graph = helper.make_graph(nodes, name,
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", width])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", width]) for n in names], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


out = sys.argv[1] if len(sys.argv) > 1 else "build/bench/models"
os.makedirs(out, exist_ok=True)
for file, sizes, seed in [("wide_mlp.onnx", [512, 2048, 2048, 512], 11), ("mlp256.onnx", [256, 512, 512, 10], 12)]:
    onnx.save(mlp(os.path.splitext(file)[0], sizes, seed), os.path.join(out, file))
    print(f"wrote {os.path.join(out, file)}")
for file, width, outputs in [("big_identity.onnx", 1048576, 1), ("many_outputs.onnx", 262144, 12)]:
    onnx.save(scaled(os.path.splitext(file)[0], width, outputs), os.path.join(out, file))
    print(f"wrote {os.path.join(out, file)}")
