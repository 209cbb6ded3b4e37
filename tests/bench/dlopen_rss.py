#!/usr/bin/env python3
"""What loading shared libraries costs in resident memory: a bare process reads its own VmRSS,
dlopens the given libraries in order (RTLD_NOW | RTLD_GLOBAL, as the Torch plugin loads
libtorch), reads VmRSS again and prints both in kB:  dlopen_rss.py <lib.so>...  ->  "<before> <after>"."""
import ctypes
import sys


def rss_kb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))


before = rss_kb()
handles = [ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL) for lib in sys.argv[1:]]  # ctypes adds RTLD_NOW
print(before, rss_kb())
