#!/usr/bin/env bash
# Runs the guide's test_plugin_integration.sh, unchanged, from the repository root, as the guide
# expects it: ./build/mlos_core, the guide's C plugin at ./plugins/libtest_plugin.so and a model
# file at ./models/test_model.bin (both made here, untracked). The script only prints; this
# wrapper checks that its inference answered 200 with the echoed "test data".
#   run_integration.sh <repo-root> <guide-plugin.so>
set -euo pipefail
root=$1
plugin=$2
cd "$root"
mkdir -p plugins models
cp "$plugin" plugins/libtest_plugin.so
printf 'test model bytes' > models/test_model.bin
trap 'rm -f plugins/libtest_plugin.so models/test_model.bin; rmdir plugins models 2>/dev/null || true' EXIT
out=$(bash c-tests/guide/test_plugin_integration.sh 2>&1)
echo "$out"
grep -q '"status":"success","plugin_id":"test-plugin"' <<<"$out" || { echo "FAIL: plugin registration"; exit 1; }
grep -q '"status":"success","model_id":"test-model"' <<<"$out" || { echo "FAIL: model registration"; exit 1; }
grep -q '"status":"success","model_id":"test-model".*"outputs":"test data"' <<<"$out" || { echo "FAIL: inference did not echo test data"; exit 1; }
echo "guide integration script: passed"
