#!/usr/bin/env bash
# c-tests/robustness/run_fuzz.sh FUZZER SECONDS WORK_DIR: runs the core_api_fuzz libFuzzer harness
# for SECONDS from a fresh copy of the committed corpus in WORK_DIR/corpus, prints
#   fuzz core_api: N execs at R/s, peak RSS M MB, K findings
# and exits 1 on any crash, broken promise or timeout, with each finding hex-dumped and replayed
# under MLOS_FUZZ_TRACE=1 (the calls it made, their answers, the promise it broke).
# MLOS_FUZZ_SKIP (see core_api_fuzz.c) passes through, to fuzz past a class of reported bugs.
set -uo pipefail

[ $# -eq 3 ] || { echo "usage: $0 FUZZER SECONDS WORK_DIR" >&2; exit 2; }
fuzzer=$1 seconds=$2 work=$3
here=$(cd "$(dirname "$0")" && pwd)
[ -x "$fuzzer" ] || { echo "no fuzzer at $fuzzer" >&2; exit 2; }

rm -rf "$work"
mkdir -p "$work/findings"
cp -r "$here/corpus" "$work/corpus"

# ASan's leak checker cannot see through the GC heap (core_api_fuzz.c says why): leaks are bounded
# by -rss_limit_mb instead. -close_fd_mask=1: the guide plugin prints on stdout. -timeout: one
# input normally takes milliseconds; 30 s is a hang even on a loaded 2-core machine.
export ASAN_OPTIONS="detect_leaks=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}"
"$fuzzer" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -detect_leaks=0 -close_fd_mask=1 \
    -print_final_stats=1 -dict="$here/core_api.dict" -artifact_prefix="$work/findings/" \
    "$work/corpus" >"$work/fuzz.log" 2>&1
status=$?

stat_of() {
    local v
    v=$(sed -n "s/^stat::$1: *//p" "$work/fuzz.log" | tail -n 1)
    echo "${v:-?}"
}
shopt -s nullglob
findings=("$work"/findings/*)
echo "fuzz core_api: $(stat_of number_of_executed_units) execs at $(stat_of average_exec_per_sec)/s," \
    "peak RSS $(stat_of peak_rss_mb) MB, ${#findings[@]} findings (log: $work/fuzz.log)"
grep -a "broken promises of class" "$work/fuzz.log"
[ $status -eq 0 ] && [ ${#findings[@]} -eq 0 ] && exit 0

grep -a -m1 -B2 -A3 "broken promise\|ERROR: \|ALARM" "$work/fuzz.log" >&2
for input in "${findings[@]}"; do
    echo "---- $input ($(wc -c <"$input") bytes):" >&2
    od -A x -t x1 -v -N 512 "$input" >&2
    echo "---- replayed with MLOS_FUZZ_TRACE=1 (last 40 lines):" >&2
    MLOS_FUZZ_TRACE=1 timeout 120 "$fuzzer" -close_fd_mask=1 -detect_leaks=0 "$input" 2>&1 |
        grep -av '^INFO\|^\*\*\*\|^    #[0-9]' | tail -n 40 >&2
done
exit 1
