#!/bin/bash
# Builds a Triton model repository, laid out as Triton's documentation lays them out, from the
# committed fixtures (tests/models/onnx, tests/models/torch), into the folder given:
#
#   make_triton_repository.sh OUT
#
#   mlp/        ONNX MLP, platform onnxruntime_onnx, max_batch_size 8 and dynamic_batching {},
#               versions 1 and 2 under latest {num_versions: 1} (only 2 is served); folders 0/,
#               01/ and notes/ are not versions and are ignored
#   mlp_all/    the same under all {} with versions 1 and 3, backend "onnxruntime", no batching
#               (max_batch_size 0, whole shapes), an ONNX Runtime parameter and two fields we
#               do not act on (response_cache, input format)
#   torch_mlp/  TorchScript MLP, Triton's PyTorch names INPUT__0 / OUTPUT__0, max_batch_size 8
#   mlp_bare/   no config.pbtxt at all: one version folder (auto-complete)
#   mlp_pair/   instance_group [{count: 2, kind: KIND_CPU}], preferred_batch_size [4]
#   mlp_warm/   model_warmup: a zero sample of 4 rows and a file sample, run before ready
#   mlp_reshape/  the ONNX MLP seen by clients as [-1,4,4] in and [-1,2,2] out (reshape),
#               max_batch_size 8 with dynamic batching
#   strings_fixed/  the ONNX strings model (text [n] -> upper [n]) with config dims [3]: the
#               config fixes the model's free dimension, so a request of 2 strings is refused
#   add_sub/    Triton's Python backend: 1/model.py (tests/models/triton_python/add_sub.py, which
#               imports add_sub_limits.py beside it),
#               OUTPUT0 = INPUT0 + INPUT1, OUTPUT1 = INPUT0 - INPUT1, FP32 [4], max_batch_size 8
#   torch_reshape/  the TorchScript MLP the same way with max_batch_size 0: whole shapes with
#               a free dimension on both sides ([-1,4,4] for the model's [-1,16])
set -euo pipefail
out=${1:?usage: make_triton_repository.sh OUT}
here=$(cd "$(dirname "$0")" && pwd)
onnx=$here/onnx/mlp.onnx
torch=$here/torch/mlp.pt
mkdir -p "$out"

version() { mkdir -p "$out/$1/$2" && cp "$3" "$out/$1/$2/${4:-$(basename "$3" | sed 's/^mlp/model/')}"; }

version mlp 1 "$onnx"
version mlp 2 "$onnx"
mkdir -p "$out/mlp/0" "$out/mlp/01" "$out/mlp/notes"
cat > "$out/mlp/config.pbtxt" <<'EOF'
# The ONNX MLP of tests/models/onnx, as Triton's quick-start writes a config.
name: "mlp"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [
  {
    name: "input"
    data_type: TYPE_FP32
    dims: [ 16 ]
  }
]
output [
  {
    name: "output"
    data_type: TYPE_FP32
    dims: [ 4 ]
  }
]
dynamic_batching { }
version_policy: { latest: { num_versions: 1 } }
EOF

version mlp_all 1 "$onnx"
version mlp_all 3 "$onnx"
cat > "$out/mlp_all/config.pbtxt" <<'EOF'
backend: "onnxruntime"
max_batch_size: 0
input { name: "input", data_type: TYPE_FP32, dims: [ -1, 16 ], format: FORMAT_NONE }
output { name: "output", data_type: TYPE_FP32, dims: [ -1, 4 ] }
version_policy { all { } }
parameters { key: "intra_op_thread_count" value: { string_value: "1" } }
response_cache { enable: true }
EOF

version torch_mlp 1 "$torch"
cat > "$out/torch_mlp/config.pbtxt" <<'EOF'
name: "torch_mlp"
platform: "pytorch_libtorch"
max_batch_size: 8
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ 4 ] } ]
EOF

version mlp_bare 1 "$onnx"

version mlp_pair 1 "$onnx"
cat > "$out/mlp_pair/config.pbtxt" <<'EOF'
max_batch_size: 8
dynamic_batching { preferred_batch_size: [ 4 ] max_queue_delay_microseconds: 50000 }
instance_group [ { count: 2, kind: KIND_CPU } ]
EOF

version mlp_warm 1 "$onnx"
mkdir -p "$out/mlp_warm/warmup"
# 16 FP32 ones, raw little-endian, as Triton's input_data_file reads them.
printf '\x00\x00\x80\x3f%.0s' $(seq 16) > "$out/mlp_warm/warmup/ones"
cat > "$out/mlp_warm/config.pbtxt" <<'EOF'
max_batch_size: 8
model_warmup [
  {
    name: "zeros"
    batch_size: 4
    inputs { key: "input" value: { data_type: TYPE_FP32 dims: [ 16 ] zero_data: true } }
  },
  {
    name: "ones from a file"
    batch_size: 1
    count: 2
    inputs { key: "input" value: { data_type: TYPE_FP32 dims: [ 16 ] input_data_file: "ones" } }
  }
]
EOF

version mlp_reshape 1 "$onnx"
cat > "$out/mlp_reshape/config.pbtxt" <<'EOF'
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "input" data_type: TYPE_FP32 dims: [ 4, 4 ] reshape: { shape: [ 16 ] } } ]
output [ { name: "output" data_type: TYPE_FP32 dims: [ 2, 2 ] reshape: { shape: [ 4 ] } } ]
dynamic_batching { max_queue_delay_microseconds: 2000 }
EOF

version torch_reshape 1 "$torch"
cat > "$out/torch_reshape/config.pbtxt" <<'EOF'
platform: "pytorch_libtorch"
max_batch_size: 0
input [ { name: "INPUT__0" data_type: TYPE_FP32 dims: [ -1, 4, 4 ] reshape: { shape: [ -1, 16 ] } } ]
output [ { name: "OUTPUT__0" data_type: TYPE_FP32 dims: [ -1, 2, 2 ] reshape: { shape: [ -1, 4 ] } } ]
EOF

version strings_fixed 1 "$here/onnx/strings.onnx" model.onnx
cat > "$out/strings_fixed/config.pbtxt" <<'EOF'
platform: "onnxruntime_onnx"
max_batch_size: 0
input [ { name: "text" data_type: TYPE_STRING dims: [ 3 ] } ]
output [ { name: "upper" data_type: TYPE_STRING dims: [ -1 ] } ]
EOF

version add_sub 1 "$here/triton_python/add_sub.py" model.py
cp "$here/triton_python/add_sub_limits.py" "$out/add_sub/1/"
cat > "$out/add_sub/config.pbtxt" <<'EOF'
name: "add_sub"
backend: "python"
max_batch_size: 8
input [
  { name: "INPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
  { name: "INPUT1" data_type: TYPE_FP32 dims: [ 4 ] }
]
output [
  { name: "OUTPUT0" data_type: TYPE_FP32 dims: [ 4 ] },
  { name: "OUTPUT1" data_type: TYPE_FP32 dims: [ 4 ] }
]
instance_group [ { count: 2, kind: KIND_CPU } ]
EOF
echo "wrote a Triton model repository in $out"
