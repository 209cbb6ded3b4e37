#!/usr/bin/env bash
# The one benchmark command: builds what it needs, runs every benchmark on loopback in one go, and
# writes tests/bench/RESULTS.md (machine, date, every ratio against a baseline measured in the same
# run) and tests/bench/results.png (throughput and p99 per HTTP configuration). Not a test: CTest
# never runs it. About 7 minutes on a 2-core machine once built.
#
#   bash tests/bench/run.sh            (or: cmake --build --preset default --target bench_all)
#
# One section of the server benchmarks, against the current build (no rebuild, no RESULTS.md):
#   dotnet run -c Release --project tests/Mlos.Benchmarks.Server -- build build/bench/node/node_modules --only mlp256
# (sections: startup, threads, ceiling, peer, mlp256, batching, grpc, shm, outputs, isolation; comma-separate
# several; grpc, shm and outputs need the benchmark models below and h2load).
#
# The benchmarks print tab-separated lines, collected into build/bench/results.tsv:
#   RATIO <benchmark> <configuration> <measured> <baseline> <ratio> <goal>
#   HTTP  <configuration> <connections> <req/s> <p50 ms> <p99 ms> <errors>
#   FACT  <section> <what> <value>
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=$repo/build
bench=$build/bench
here=$repo/tests/bench
cd "$repo"

# --- What the benchmarks need beyond the build: wrk (load), h2load (load over HTTP/2, for gRPC),
# gnuplot (chart), python3-onnx (the benchmark-only models), onnxruntime-node (the peer).
need=()
command -v wrk >/dev/null || need+=(wrk)
command -v h2load >/dev/null || need+=(nghttp2-client)
command -v gnuplot >/dev/null || need+=(gnuplot-nox)
/usr/bin/python3 -c 'import onnx, numpy' 2>/dev/null || need+=(python3-onnx python3-numpy)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p "$bench/node"
[ -d "$bench/node/node_modules/onnxruntime-node" ] ||
  (cd "$bench/node" && npm install --silent --no-audit --no-fund onnxruntime-node@1.30.0 >/dev/null)
[ -s "$bench/models/wide_mlp.onnx" ] && [ -s "$bench/models/mlp256.onnx" ] &&
  [ -s "$bench/models/big_identity.onnx" ] && [ -s "$bench/models/many_outputs.onnx" ] ||
  /usr/bin/python3 "$here/make_bench_models.py" "$bench/models"

cmake --preset default >/dev/null
cmake --build --preset default --target all core_dispatch_bench >/dev/null
for project in Onnx Torch Server; do
  dotnet build -c Release --nologo -v quiet "tests/Mlos.Benchmarks.$project" >/dev/null
done

# --- Run everything; keep the whole log, collect the result lines.
log=$bench/log.txt
results=$bench/results.tsv
started=$(date +%s)
{
  echo "== C API dispatch"
  "$build/c-tests/core_dispatch_bench" "$build" --benchmark_min_time=0.3s 2>/dev/null
  echo "== ONNX Runtime framework overhead"
  dotnet run -c Release --no-build --project tests/Mlos.Benchmarks.Onnx -- "$build"
  echo "== TorchSharp framework overhead"
  dotnet run -c Release --no-build --project tests/Mlos.Benchmarks.Torch -- "$build"
  echo "== HTTP"
  dotnet run -c Release --no-build --project tests/Mlos.Benchmarks.Server -- "$build" "$bench/node/node_modules"
} 2>&1 | tee "$log" | grep -v -E '^(RATIO|HTTP|FACT)'
grep -E '^(RATIO|HTTP|FACT)' "$log" > "$results"
elapsed=$(( $(date +%s) - started ))

# --- RESULTS.md
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
{
  echo "# Benchmark results"
  echo
  echo "Made by \`bash tests/bench/run.sh\` on $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit, in ${elapsed} s."
  echo "Machine: $(nproc) cores ($cpu), $mem, $(uname -sr). Load generator and servers share these cores."
  echo "Every ratio's baseline was measured in the same run (or is a fixed limit, where the baseline says so); machines here are noisy, so compare ratios, not absolutes."
  echo
  echo "## Ratios"
  echo
  echo "| benchmark | configuration | measured | baseline | ratio | goal | met |"
  echo "| --- | --- | --- | --- | ---: | --- | --- |"
  awk -F'\t' '$1 == "RATIO" {
      met = "-"
      if ($7 ~ /^<=/) { split($7, g, " "); met = ($6 + 0 <= g[2] + 0) ? "yes" : "**no**" }
      if ($7 ~ /^>=/) { split($7, g, " "); met = ($6 + 0 >= g[2] + 0) ? "yes" : "**no**" }
      printf "| %s | %s | %s | %s | %.3f | %s | %s |\n", $2, $3, $4, $5, $6, ($7 == "" ? "-" : $7), met
    }' "$results"
  echo
  echo "## HTTP runs (wrk, and h2load for gRPC: 5 s after a 1 s warm-up; the C# client of shm and outputs: after a warm-up of its own; paired comparisons: the median of 3 alternating 3 s runs, 2 s for outputs)"
  echo
  echo "| configuration | connections | req/s | p50 ms | p99 ms | errors |"
  echo "| --- | ---: | ---: | ---: | ---: | ---: |"
  awk -F'\t' '$1 == "HTTP" { printf "| %s | %s | %s | %.2f | %.2f | %s |\n", $2, $3, $4, $5, $6, $7 }' "$results"
  echo
  echo "## Start-up, memory, threads, allocations, answer sizes"
  echo
  echo "| section | what | value |"
  echo "| --- | --- | ---: |"
  awk -F'\t' '$1 == "FACT" { printf "| %s | %s | %s |\n", $2, $3, $4 }' "$results"
  echo
  echo "![throughput and p99 per configuration](results.png)"
} > "$here/RESULTS.md"

# --- results.png: throughput and p99 per HTTP configuration.
awk -F'\t' '$1 == "HTTP" { printf "%d \"%s, %s conn\" %s %s\n", n++, $2, $3, $4, $6 }' "$results" > "$bench/http.dat"
gnuplot <<EOF
set terminal pngcairo size 2000,1100 font "sans,9"
set output "$here/results.png"
set multiplot layout 2,1 title noenhanced "mlos_core HTTP and gRPC benchmarks, $(date -u +%Y-%m-%d), $(nproc) cores (wrk, h2load, C# client)"
set style fill solid 0.8
set boxwidth 0.6
set grid ytics
set xtics rotate by -20 left noenhanced
set bmargin 14
set rmargin 40
set yrange [0:*]
unset key
set ylabel "requests / s"
plot "$bench/http.dat" using 1:3:xtic(2) with boxes lc rgb "#3465a4", "" using 1:3:(sprintf("%.0f", \$3)) with labels offset 0,0.7
set ylabel "p99 latency (ms)"
plot "$bench/http.dat" using 1:4:xtic(2) with boxes lc rgb "#cc0000", "" using 1:4:(sprintf("%.1f", \$4)) with labels offset 0,0.7
unset multiplot
EOF
echo "wrote $here/RESULTS.md and $here/results.png (${elapsed} s of benchmarks)"
