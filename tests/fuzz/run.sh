#!/usr/bin/env bash
# tests/fuzz/run.sh TARGET SECONDS: coverage-guided fuzzing of one parser (kserve | convention | core)
# with afl-fuzz for SECONDS. Builds the JIT harness, instruments the parser assemblies with
# SharpFuzz, fuzzes from the committed corpus, prints
#   fuzz TARGET: N execs, M crashes, K hangs, P paths
# and exits 1 if afl-fuzz saved any crash or hang (each is listed and hex-dumped, and each crash
# replayed to show its exception).
# Everything it writes goes under $MLOS_BUILD_DIR/fuzz (default: build/fuzz).
set -euo pipefail

usage() { echo "usage: $0 kserve|convention|core SECONDS" >&2; exit 2; }
[ $# -eq 2 ] || usage
target=$1 seconds=$2
case $target in kserve | convention | core) ;; *) usage ;; esac
[[ $seconds =~ ^[1-9][0-9]*$ ]] || usage

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build="${MLOS_BUILD_DIR:-$root/build}/fuzz"
work="$build/$target"
command -v afl-fuzz >/dev/null || { echo "afl-fuzz is missing: apt-get install afl++" >&2; exit 1; }

# The harness and the projects it references build with their bin/ and obj/ under the build tree,
# so this never races a build of the same projects in the source tree.
dotnet build "$here/Mlos.Fuzz" -c Release --artifacts-path "$build/dotnet" --nologo -v quiet
plain="$build/dotnet/bin/Mlos.Fuzz/release"

# Crashes found before are regression tests: each must now be answered as a client mistake.
shopt -s nullglob
known=("$here/crashes/$target"/*)
if [ ${#known[@]} -gt 0 ] && ! dotnet "$plain/Mlos.Fuzz.dll" "$target" "${known[@]}"; then
    echo "fuzz $target: a crash found before is back (tests/fuzz/crashes/$target)" >&2
    exit 1
fi
shopt -u nullglob

# sharpfuzz rewrites an assembly in place and refuses one it has seen: instrument a fresh copy.
# In the harness only the parser files compiled in from the server (namespace Mlos.Server) are
# instrumented; Mlos.Smi holds the convention and the dtype and value encoders both parsers use.
(cd "$root" && dotnet tool restore >/dev/null)
rm -rf "$work"
mkdir -p "$work"
cp -r "$plain" "$work/harness"
(cd "$root" && dotnet tool run sharpfuzz "$work/harness/Mlos.Fuzz.dll" Mlos.Server. &&
    dotnet tool run sharpfuzz "$work/harness/Mlos.Smi.dll")
# The core target's code under test is Mlos.Core itself (config, options, input and answer checks).
if [ "$target" = core ]; then (cd "$root" && dotnet tool run sharpfuzz "$work/harness/Mlos.Core.dll"); fi

# The fuzzed program is dotnet itself, which carries no afl instrumentation (SharpFuzz's fork
# server fills the coverage map); no tty in CI; a container can neither set the CPU governor nor
# be sure of a free core to pin to; crashes are managed exceptions that SharpFuzz reports, so a
# core_pattern that pipes core dumps elsewhere (common in containers, and not ours to change) is
# no reason to stop.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1 \
    AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
# -t: a generous 2 s per input (one normally takes well under a millisecond), so only a real
# hang counts as one even on a loaded machine.
if ! afl-fuzz -i "$here/corpus/$target" -o "$work/findings" -x "$here/dict/$target.dict" \
    -t 2000 -V "$seconds" -- dotnet "$work/harness/Mlos.Fuzz.dll" "$target" >"$work/afl-fuzz.log" 2>&1; then
    tail -n 40 "$work/afl-fuzz.log" >&2
    echo "fuzz $target: afl-fuzz failed (log: $work/afl-fuzz.log)" >&2
    exit 1
fi

stat_of() { awk -v k="$1" '$1 == k { print $3 }' "$work/findings/default/fuzzer_stats"; }
crashes=$(stat_of saved_crashes) hangs=$(stat_of saved_hangs)
echo "fuzz $target: $(stat_of execs_per_sec) execs/s over $(stat_of run_time) s, stability $(stat_of stability)"
echo "fuzz $target: $(stat_of execs_done) execs, $crashes crashes, $hangs hangs, $(stat_of corpus_count) paths"
[ "$crashes" -eq 0 ] && [ "$hangs" -eq 0 ] && exit 0

# Each finding: where it is and its bytes; then the crashes replayed on the uninstrumented build,
# which names each one's exception and the line under test that threw it.
shopt -s nullglob
for input in "$work"/findings/default/{crashes,hangs}/id:*; do
    echo "---- $input ($(wc -c <"$input") bytes; the first 256:)"
    od -A x -t x1z -v -N 256 "$input"
done
[ "$crashes" -eq 0 ] || dotnet "$plain/Mlos.Fuzz.dll" "$target" "$work"/findings/default/crashes/id:* || true
exit 1
