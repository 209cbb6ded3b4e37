#!/usr/bin/env bash
# Installs Debian's python3-torch (1.13) when /usr/bin/python3 cannot import torch: the test
# that serves a TorchScript model on the TorchSharp plugin beside a Python class importing torch
# (#16, TorchBesidePythonTorchTests) needs both libtorch builds. ctest runs this as the setup of
# the python_torch fixture; about a minute on a fresh machine, nothing once installed.
set -euo pipefail
if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo "python3-torch: present ($(/usr/bin/python3 -c 'import torch; print(torch.__version__)'))"
  exit 0
fi
# Not installed, the one test that needs it fails and says so; the other tests still run (a
# failed fixture setup would keep all of dotnet_tests from running).
warn() { echo "WARNING: $* (TorchBesidePythonTorchTests will fail)" >&2; exit 0; }
[ "$(id -u)" -eq 0 ] || warn "python3-torch is missing and this is not root: run 'apt-get install --no-install-recommends python3-torch' as root"
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends python3-torch >/dev/null 2>&1 \
  || { apt-get update -q >/dev/null 2>&1; apt-get install -y -q --no-install-recommends python3-torch >/dev/null 2>&1; } \
  || warn "apt-get could not install python3-torch"
/usr/bin/python3 -c 'import torch; print("python3-torch: installed", torch.__version__)' || warn "python3-torch installed but torch does not import"
