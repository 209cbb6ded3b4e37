#!/usr/bin/python3
"""Makes the small ONNX test models and their reference outputs.

Run with Debian's python3 (apt-get install python3-onnx python3-numpy):

    /usr/bin/python3 tests/models/make_onnx_fixtures.py

Outputs, committed, in tests/models/onnx/:
  mlp.onnx          input[N,16] FP32 -> Gemm 16x32 -> Relu -> Gemm 32x4 -> output[N,4]
  multi_io.onnx     input_ids[N,8] INT64 + features[N,4] FP32 ->
                    logits[N,3] FP32, ids_sum[N,1] INT64, mask[N,8] BOOL
  strings.onnx      text[N] BYTES -> upper[N] BYTES (StringNormalizer), length-free
  dtypes.onnx       one Identity per numeric dtype: in_<dtype>[N] -> out_<dtype>[N], so every
                    dtype the plugin claims crosses the boundary both ways
  slow.onnx         x[1,64] FP32, iterations[] INT64 -> y[1,64]: a Loop of Tanh(x @ W) run
                    `iterations` times, so a test can make one run last as long as it likes
                    (the deadline tests: ONNX Runtime's terminate flag stops it between ops)
  *.ref             inputs and expected outputs, computed here with numpy (not with ONNX
                    Runtime, so the plugin is checked against an independent computation)

Reference format, one tensor per line:
  <in|out> <name> <DATATYPE> <ndim> <dim>... <value>...
values are decimal (BOOL as 0/1; FP16 and BF16 as their 16-bit patterns); BYTES values are hex
of the UTF-8 text ("-" for empty).
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "onnx")
OPSET = [helper.make_opsetid("", 17)]
rng = np.random.default_rng(20261125)


def save(model, name):
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, os.path.join(HERE, name))


def fmt(value, dtype):
    if dtype == "BYTES":
        return value.encode("utf-8").hex() or "-"
    if dtype == "BOOL":
        return "1" if value else "0"
    if dtype in ("FP32", "FP64"):
        return repr(float(value))
    if dtype == "FP16":
        return str(int(np.float16(value).view(np.uint16)))
    return str(int(value))


def write_ref(name, tensors):
    with open(os.path.join(HERE, name), "w") as f:
        f.write("# made by tests/models/make_onnx_fixtures.py\n")
        for role, tname, dtype, array in tensors:
            array = np.asarray(array)
            flat = array.reshape(-1)
            f.write(" ".join([role, tname, dtype, str(array.ndim)] + [str(d) for d in array.shape]
                             + [fmt(v, dtype) for v in flat]) + "\n")


def mlp():
    w1 = rng.standard_normal((16, 32)).astype(np.float32) * 0.5
    b1 = rng.standard_normal(32).astype(np.float32) * 0.1
    w2 = rng.standard_normal((32, 4)).astype(np.float32) * 0.5
    b2 = rng.standard_normal(4).astype(np.float32) * 0.1
    graph = helper.make_graph(
        [
            helper.make_node("Gemm", ["input", "w1", "b1"], ["h"]),
            helper.make_node("Relu", ["h"], ["hr"]),
            helper.make_node("Gemm", ["hr", "w2", "b2"], ["output"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 16])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])],
        [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
         numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2")],
    )
    save(helper.make_model(graph, opset_imports=OPSET, producer_name="mlos-fixtures"), "mlp.onnx")
    x = rng.standard_normal((3, 16)).astype(np.float32)
    y = np.maximum(x @ w1 + b1, 0) @ w2 + b2
    write_ref("mlp.ref", [("in", "input", "FP32", x), ("out", "output", "FP32", y.astype(np.float32))])


def multi_io():
    w = rng.standard_normal((8, 3)).astype(np.float32) * 0.01
    v = rng.standard_normal((4, 3)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Cast", ["input_ids"], ["ids_f"], to=TensorProto.FLOAT),
            helper.make_node("MatMul", ["ids_f", "w"], ["a"]),
            helper.make_node("MatMul", ["features", "v"], ["b"]),
            helper.make_node("Add", ["a", "b"], ["logits"]),
            helper.make_node("ReduceSum", ["input_ids", "axes"], ["ids_sum"], keepdims=1),
            helper.make_node("Greater", ["input_ids", "zero"], ["mask"]),
        ],
        "multi_io",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", 8]),
         helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 3]),
         helper.make_tensor_value_info("ids_sum", TensorProto.INT64, ["batch", 1]),
         helper.make_tensor_value_info("mask", TensorProto.BOOL, ["batch", 8])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(v, "v"),
         numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
         numpy_helper.from_array(np.array(0, dtype=np.int64), "zero")],
    )
    save(helper.make_model(graph, opset_imports=OPSET, producer_name="mlos-fixtures"), "multi_io.onnx")
    ids = rng.integers(0, 100, size=(2, 8)).astype(np.int64)
    ids[1, 5:] = 0  # padding, as a tokeniser leaves it
    feats = rng.standard_normal((2, 4)).astype(np.float32)
    logits = (ids.astype(np.float32) @ w + feats @ v).astype(np.float32)
    write_ref("multi_io.ref", [
        ("in", "input_ids", "INT64", ids), ("in", "features", "FP32", feats),
        ("out", "logits", "FP32", logits), ("out", "ids_sum", "INT64", ids.sum(axis=1, keepdims=True)),
        ("out", "mask", "BOOL", ids > 0)])


def strings():
    graph = helper.make_graph(
        # locale "C": ONNX Runtime builds "<locale>.UTF-8", and C.UTF-8 is on every glibc system
        # while en_US (the default) needs a locales package.
        [helper.make_node("StringNormalizer", ["text"], ["upper"], case_change_action="UPPER", locale="C")],
        "strings",
        [helper.make_tensor_value_info("text", TensorProto.STRING, ["n"])],
        [helper.make_tensor_value_info("upper", TensorProto.STRING, ["n"])],
    )
    save(helper.make_model(graph, opset_imports=OPSET, producer_name="mlos-fixtures"), "strings.onnx")
    text = np.array(["hello", "SMI plugins", "mixed Case 42"], dtype=object)
    write_ref("strings.ref", [("in", "text", "BYTES", text),
                              ("out", "upper", "BYTES", np.array([t.upper() for t in text], dtype=object))])


DTYPES = [  # (KServe name, ONNX type, numpy type)
    ("BOOL", TensorProto.BOOL, np.bool_), ("INT8", TensorProto.INT8, np.int8),
    ("INT16", TensorProto.INT16, np.int16), ("INT32", TensorProto.INT32, np.int32),
    ("INT64", TensorProto.INT64, np.int64), ("UINT8", TensorProto.UINT8, np.uint8),
    ("UINT16", TensorProto.UINT16, np.uint16), ("UINT32", TensorProto.UINT32, np.uint32),
    ("UINT64", TensorProto.UINT64, np.uint64), ("FP16", TensorProto.FLOAT16, np.float16),
    ("FP32", TensorProto.FLOAT, np.float32), ("FP64", TensorProto.DOUBLE, np.float64),
]


def dtypes():
    names = [d[0].lower() for d in DTYPES]
    graph = helper.make_graph(
        [helper.make_node("Identity", [f"in_{n}"], [f"out_{n}"]) for n in names],
        "dtypes",
        [helper.make_tensor_value_info(f"in_{n}", t, ["n"]) for n, (_, t, _) in zip(names, DTYPES)],
        [helper.make_tensor_value_info(f"out_{n}", t, ["n"]) for n, (_, t, _) in zip(names, DTYPES)],
    )
    save(helper.make_model(graph, opset_imports=OPSET, producer_name="mlos-fixtures"), "dtypes.onnx")
    tensors = []
    for n, (name, _, np_type) in zip(names, DTYPES):
        if np_type == np.bool_:
            values = np.array([True, False, True, True])
        elif np.issubdtype(np_type, np.integer):
            info = np.iinfo(np_type)
            values = np.array([info.min, 0, 7, info.max], dtype=np_type)
        else:
            values = np.array([-1.5, 0.0, 3.25, 1e3], dtype=np_type)
        tensors.append(("in", f"in_{n}", name, values))
        tensors.append(("out", f"out_{n}", name, values))
    write_ref("dtypes.ref", [t for t in tensors if t[0] == "in"] + [t for t in tensors if t[0] == "out"])


def slow():
    # Made last: the random weights of the models above stay what they were.
    w = (rng.standard_normal((64, 64)) / 8).astype(np.float32)
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("MatMul", ["x_in", "W"], ["xw"]),
         helper.make_node("Tanh", ["xw"], ["x_out"])],
        "step",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_in", TensorProto.FLOAT, [1, 64])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("x_out", TensorProto.FLOAT, [1, 64])],
        [numpy_helper.from_array(w, "W")],
    )
    graph = helper.make_graph(
        [helper.make_node("Constant", [], ["true"], value=numpy_helper.from_array(np.array(True), "true")),
         helper.make_node("Loop", ["iterations", "true", "x"], ["y"], body=body)],
        "slow",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64]),
         helper.make_tensor_value_info("iterations", TensorProto.INT64, [])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 64])],
    )
    save(helper.make_model(graph, opset_imports=OPSET, producer_name="mlos-fixtures"), "slow.onnx")


if __name__ == "__main__":
    os.makedirs(HERE, exist_ok=True)
    mlp()
    multi_io()
    strings()
    dtypes()
    slow()
    print("wrote", ", ".join(sorted(os.listdir(HERE))))
