#!/usr/bin/env bash
# The container test (#17): builds the OCI image from deploy/container/Containerfile and runs it
# with podman as the deploy/ manifests run it, then writes tests/container/RESULTS.md (what ran,
# the image size, the layers, every check's output). Not in ctest: it needs podman, root and a few
# minutes (the first run also makes the Debian base with debootstrap, ~3 minutes).
#
#   bash tests/container/run.sh
#
# Steps: the build; the .deb (CPack); a Debian bookworm base (debootstrap --variant=minbase, less
# its package lists, documentation and locales, then podman import: no registry is reachable); the
# image (the .deb installed with dpkg, a user of its own); then the checks of
# tests/Mlos.Server.Tests/ContainerImageTests.cs (dotnet test --filter Category=Container), which
# take image, arguments, ports and probe paths from the manifests: the KServe runtime's container
# serving a mounted repository over REST and gRPC, the ModelMesh runtime's container serving the
# model-runtime SPI, each on a read-only root as uid 10001, each stopped with SIGTERM.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$repo/build
work=$build/container
here=$repo/tests/container
cd "$repo"
version=$(cat VERSION)
image=localhost/mlos-native:$version
base=localhost/mlos-bookworm-base:latest

# --- Tools: podman with runc (crun fails on setrlimit and hybrid cgroups here), debootstrap.
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p "$work"
printf '[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n' > "$work/containers.conf"
export CONTAINERS_CONF=$work/containers.conf
for port in 8080 8081 8001 8002; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "port $port is in use: the containers run on the host's network with the manifests' ports"; exit 1
  fi
done
started=$(date +%s)

# --- The build and the .deb.
cmake --preset default >/dev/null
cmake --build --preset default >/dev/null
rm -rf "$work/pack" "$work/context" && mkdir -p "$work/pack" "$work/context"
(cd "$work/pack" && cpack --config "$build/CPackConfig.cmake" -G DEB -B "$work/pack" >/dev/null)
cp "$work/pack/mlos-native_${version}_amd64.deb" "$work/context/mlos-native.deb"

# --- The base, made once: a minimal bookworm without what serving never reads.
if ! podman image exists "$base"; then
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" http://deb.debian.org/debian > "$work/debootstrap.log"
  rm -rf "$work/rootfs"/var/cache/apt/* "$work/rootfs"/var/lib/apt/lists/* \
         "$work/rootfs"/usr/share/doc/* "$work/rootfs"/usr/share/man/* "$work/rootfs"/usr/share/locale/*
  tar -C "$work/rootfs" -c . | podman import - "$base" >/dev/null
  rm -rf "$work/rootfs"
fi

# --- The image.
# --no-cache: the step that installs the .deb bind-mounts it, and a bind mount is not part of the
# step's cache key, so a cached layer would keep serving an older .deb.
podman build -q --no-cache --format docker -f deploy/container/Containerfile -t "$image" "$work/context" >/dev/null
size=$(podman image inspect "$image" --format '{{.Size}}')
base_size=$(podman image inspect "$base" --format '{{.Size}}')
built=$(( $(date +%s) - started ))

# --- The checks.
log=$work/checks.txt
set +e
dotnet test tests/Mlos.Server.Tests -c Release --nologo --filter "Category=Container" \
  --logger "console;verbosity=detailed" > "$log" 2>&1
rc=$?
set -e
elapsed=$(( $(date +%s) - started ))

# --- RESULTS.md
{
  echo "# Container test results"
  echo
  echo "\`bash tests/container/run.sh\` at commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown), $(date -u '+%Y-%m-%d %H:%M UTC'), podman $(podman --version | awk '{print $3}') with runc, $(nproc) cores."
  echo
  echo "| | |"
  echo "|---|---|"
  echo "| image | \`$image\` |"
  echo "| image size | $(( size / 1000000 )) MB (base $(( base_size / 1000000 )) MB: Debian bookworm minbase without package lists, docs and locales) |"
  echo "| .deb | $(( $(stat -c %s "$work/context/mlos-native.deb") / 1000000 )) MB |"
  echo "| build, package and image | $built s |"
  echo "| whole run | $elapsed s |"
  echo "| result | $([ $rc -eq 0 ] && echo passed || echo "FAILED (exit $rc)") |"
  echo
  echo "## Layers"
  echo
  echo '```'
  podman history --no-trunc --format '{{.Size}}\t{{.CreatedBy}}' "$image" | cut -c1-160
  echo '```'
  echo
  echo "## Checks (tests/Mlos.Server.Tests/ContainerImageTests.cs)"
  echo
  echo '```'
  grep -E '^\s+(Passed|Failed) Mlos|^ (podman run|healthy|REST|gRPC|runtimeStatus|loadModel|inference|unloadModel|runs as|SIGTERM)|^(Passed!|Failed!)|Total tests|Passed:|Failed:' "$log" | sed 's/^ *//'
  echo '```'
} > "$here/RESULTS.md"
cat "$here/RESULTS.md"
[ $rc -eq 0 ] || { echo "checks failed: see $log"; exit $rc; }
