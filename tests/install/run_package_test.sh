#!/usr/bin/env bash
# ctest package_test (#17): CPack's two packages, checked as a packager and a user would:
#   - the .deb's control fields (name, version, architecture, dependencies) and file list
#     (dpkg-deb -I / -c), its postinst, and no file outside /usr;
#   - the .tar.gz's tree (the install layout in a folder of its own);
#   - the .deb unpacked (dpkg-deb -x) into an empty root: its server starts from there with the
#     shipped config's settings and serves the demo model.
#   run_package_test.sh <build-dir> <version>
set -euo pipefail
build=$1
version=$2
source "$(dirname "$0")/common.sh" package

start=$(date +%s)
(cd "$work" && cpack --config "$build/CPackConfig.cmake" -B "$work/out" >/dev/null)
deb="$work/out/mlos-native_${version}_amd64.deb"
tgz="$work/out/mlos-native-${version}-Linux.tar.gz"
[ -f "$deb" ] || fail "no $deb ($(ls "$work/out"))"
[ -f "$tgz" ] || fail "no $tgz"
echo "packed in $(( $(date +%s) - start )) s: .deb $(du -h "$deb" | cut -f1), .tar.gz $(du -h "$tgz" | cut -f1)"

field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = mlos-native ] || fail "Package: $(field Package)"
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version)"
[ "$(field Architecture)" = amd64 ] || fail "Architecture: $(field Architecture)"
for dep in libc6 libgcc-s1 libstdc++6; do
  grep -qw "$dep" <<<"$(field Depends)" || fail "Depends lacks $dep: $(field Depends)"
done
for script in postinst prerm postrm; do
  dpkg-deb -I "$deb" "$script" >/dev/null || fail "no $script"
  sh -n <(dpkg-deb -I "$deb" "$script") || fail "$script does not parse"
done

files=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/mlos_core ./usr/bin/mlos_plugin_host ./usr/lib/libmlos_core.so \
         ./usr/lib/mlos/plugins/libmlos_onnx_plugin.so ./usr/lib/mlos/plugins/libonnxruntime.so \
         ./usr/lib/mlos/plugins/libmlos_torch_plugin.so ./usr/lib/mlos/plugins/libmlos_python_plugin.so \
         ./usr/lib/mlos/plugins/triton_python/mlos_triton_python.py ./usr/include/mlos/mlos_core.h \
         ./usr/lib/cmake/MlosNative/MlosNativeConfig.cmake ./usr/lib/pkgconfig/mlos-core.pc \
         ./usr/lib/systemd/system/mlos_core.service ./usr/share/mlos/config.json ./usr/share/mlos/models/mlp.onnx; do
  grep -qxF "$f" <<<"$files" || fail ".deb lacks $f"
done
outside=$(grep -v -e '^\./$' -e '^\./usr/' <<<"$files" || true)
[ -z "$outside" ] || fail ".deb has files outside /usr: $outside"
[ "$(dpkg-deb -c "$deb" | awk '$6 == "./usr/bin/mlos_core" {print $1}')" = "-rwxr-xr-x" ] || fail "mlos_core is not 0755"
echo ".deb: $(wc -l <<<"$files") entries, Depends: $(field Depends)"

listed=$(tar -tzf "$tgz") # listed once: grep -q would end the pipe early (SIGPIPE under pipefail)
for f in bin/mlos_core bin/mlos_plugin_host lib/libmlos_core.so lib/mlos/plugins/libmlos_onnx_plugin.so \
         lib/cmake/MlosNative/MlosNativeConfig.cmake share/mlos/models/mlp.onnx; do
  grep -qxF "mlos-native-${version}-Linux/$f" <<<"$listed" || fail ".tar.gz lacks mlos-native-${version}-Linux/$f"
done
echo ".tar.gz: $(wc -l <<<"$listed") entries"

# The unpacked .deb: its own config's settings (a free port and a repository here instead of
# /var/lib/mlos/models), its plugins found from /usr/bin/../lib/mlos/plugins.
dpkg-deb -x "$deb" "$work/root"
mkdir -p "$work/repo/demo/1"
cp "$work/root/usr/share/mlos/models/mlp.onnx" "$work/repo/demo/1/model.onnx"
port=$(free_port)
/usr/bin/python3 - "$work/root/usr/share/mlos/config.json" "$work/config.json" "$port" "$work/repo" <<'PY'
import json, sys
config = json.load(open(sys.argv[1]))
assert config["model_repository"] == "/var/lib/mlos/models", config
config.update(http_port=int(sys.argv[3]), grpc=False, model_repository=sys.argv[4])
json.dump(config, open(sys.argv[2], "w"))
PY
serve_demo "$port" "$work/root/usr/bin/mlos_core" -c "$work/config.json"
echo "unpacked .deb: its server serves the demo model from a repository"
echo "package test: passed"
