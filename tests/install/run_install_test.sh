#!/usr/bin/env bash
# ctest install_test (#17): `cmake --install` into a temporary prefix, the tree moved elsewhere
# (it must be relocatable), then, with nothing of the source or build tree:
#   - the layout: binaries, library, plugins with their native libraries, headers, package files;
#   - a C++ host built out of tree with find_package(MlosNative CONFIG), run on the installed
#     plugins (in process and in the installed plugin host) and the installed demo model;
#   - a C host built with pkg-config alone (mlos-core.pc), and a plugin compiled with mlos-smi.pc;
#   - the installed server, started from its own bin/, finding its plugins relative to itself.
#   run_install_test.sh <build-dir> <source-dir>
set -euo pipefail
build=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/mlos-install-XXXXXX")
server=
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

cmake --install "$build" --prefix "$work/staged" >/dev/null
mv "$work/staged" "$work/moved"
prefix="$work/moved"

for f in bin/mlos_core bin/mlos_plugin_host lib/libmlos_core.so \
         lib/mlos/plugins/libmlos_onnx_plugin.so lib/mlos/plugins/libonnxruntime.so \
         lib/mlos/plugins/libmlos_torch_plugin.so lib/mlos/plugins/libtorch_cpu.so \
         lib/mlos/plugins/libmlos_echo_plugin.so lib/mlos/plugins/libmlos_python_plugin.so \
         lib/mlos/plugins/triton_python/mlos_triton_python.py \
         include/mlos/mlos_core.h include/mlos/smi_spec.h \
         lib/cmake/MlosNative/MlosNativeConfig.cmake lib/cmake/MlosNative/MlosNativeConfigVersion.cmake \
         lib/pkgconfig/mlos-core.pc lib/pkgconfig/mlos-smi.pc share/mlos/models/mlp.onnx; do
  [ -e "$prefix/$f" ] || { echo "FAIL: the install has no $f"; exit 1; }
done
[ -x "$prefix/bin/mlos_core" ] && [ -x "$prefix/bin/mlos_plugin_host" ] || { echo "FAIL: bin/ not executable"; exit 1; }
grep -q 'SONAME.*\[libmlos_core.so\]' <<<"$(readelf -d "$prefix/lib/libmlos_core.so")" || { echo "FAIL: libmlos_core.so has no soname"; exit 1; }
echo "layout: ok ($(du -sh "$prefix" | cut -f1))"

# find_package, from a copy of the consumer project (no path back into the source tree).
cp -r "$src/tests/install" "$work/consumer-src"
cmake -S "$work/consumer-src" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" >/dev/null
grep -q 'NEEDED.*\[libmlos_core.so\]' <<<"$(readelf -d "$work/consumer/cmake_host")" || { echo "FAIL: cmake_host does not need libmlos_core.so by name"; exit 1; }
(cd / && "$work/consumer/cmake_host" "$prefix")

# pkg-config
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion mlos-core)" = "$(pkg-config --modversion mlos-smi)" ] || { echo "FAIL: versions differ"; exit 1; }
cc "$work/consumer-src/pkgconfig_host.c" -o "$work/pkgconfig_host" $(pkg-config --cflags --libs mlos-core) \
   -Wl,-rpath,"$(pkg-config --variable=libdir mlos-core)"
(cd / && "$work/pkgconfig_host" "$(pkg-config --variable=plugindir mlos-core)")
cc -c -fPIC -Wall -Werror "$work/consumer-src/smi_only_plugin.c" -o "$work/smi_only_plugin.o" $(pkg-config --cflags mlos-smi)
echo "pkg-config: ok (mlos-core $(pkg-config --modversion mlos-core))"

# The installed server: its plugins from ../lib/mlos/plugins, the demo model from share/.
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(cd / && exec "$prefix/bin/mlos_core" --http-port "$port" --no-grpc --model-root "$prefix/share/mlos/models" --model demo=mlp.onnx) \
  >"$work/server.log" 2>&1 &
server=$!
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null 2>&1 && break
  kill -0 "$server" 2>/dev/null || { cat "$work/server.log"; echo "FAIL: the installed server exited"; exit 1; }
  sleep 0.1
done
answer=$(curl -sf "http://127.0.0.1:$port/v2/models/demo/infer" -H 'Content-Type: application/json' \
  -d '{"inputs":[{"name":"input","shape":[1,16],"datatype":"FP32","data":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16]}]}') \
  || { cat "$work/server.log"; echo "FAIL: the installed server did not answer"; exit 1; }
grep -q '"name":"output"' <<<"$answer" || { echo "FAIL: answer $answer"; exit 1; }
grep -q '"onnx-runtime"' <<<"$(curl -sf "http://127.0.0.1:$port/plugins")" || { echo "FAIL: the server did not find its plugins"; exit 1; }
echo "installed server: ok"
echo "install test: passed"
