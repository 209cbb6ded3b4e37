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
source "$(dirname "$0")/common.sh" install

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
  [ -e "$prefix/$f" ] || fail "the install has no $f"
done
[ -x "$prefix/bin/mlos_core" ] && [ -x "$prefix/bin/mlos_plugin_host" ] || fail "bin/ not executable"
grep -q 'SONAME.*\[libmlos_core.so\]' <<<"$(readelf -d "$prefix/lib/libmlos_core.so")" || fail "libmlos_core.so has no soname"
echo "layout: ok ($(du -sh "$prefix" | cut -f1))"

# find_package, from a copy of the consumer project (no path back into the source tree).
cp -r "$src/tests/install" "$work/consumer-src"
cmake -S "$work/consumer-src" -B "$work/consumer" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$work/consumer" >/dev/null
grep -q 'NEEDED.*\[libmlos_core.so\]' <<<"$(readelf -d "$work/consumer/cmake_host")" || fail "cmake_host does not need libmlos_core.so by name"
(cd / && "$work/consumer/cmake_host" "$prefix")

# pkg-config
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
[ "$(pkg-config --modversion mlos-core)" = "$(pkg-config --modversion mlos-smi)" ] || fail "versions differ"
cc "$work/consumer-src/pkgconfig_host.c" -o "$work/pkgconfig_host" $(pkg-config --cflags --libs mlos-core) \
   -Wl,-rpath,"$(pkg-config --variable=libdir mlos-core)"
(cd / && "$work/pkgconfig_host" "$(pkg-config --variable=plugindir mlos-core)")
cc -c -fPIC -Wall -Werror "$work/consumer-src/smi_only_plugin.c" -o "$work/smi_only_plugin.o" $(pkg-config --cflags mlos-smi)
echo "pkg-config: ok (mlos-core $(pkg-config --modversion mlos-core))"

# The installed server: its plugins from ../lib/mlos/plugins, the demo model from share/.
port=$(free_port)
serve_demo "$port" "$prefix/bin/mlos_core" --http-port "$port" --no-grpc --model-root "$prefix/share/mlos/models" --model demo=mlp.onnx
grep -q '"onnx-runtime"' <<<"$(curl -sf "http://127.0.0.1:$port/plugins")" || fail "the server did not find its plugins"
echo "installed server: ok"
echo "install test: passed"
