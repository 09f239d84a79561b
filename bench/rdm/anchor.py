#!/usr/bin/python3
"""The numpy float32 BLAS anchor of bench/rdm/run.sh on a given .npy matrix.

The timed computation is the float32 BLAS route a numpy user takes to 1 - Pearson:
    Z = X - X.mean(1, keepdims=True); Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    R = 1 - Z @ Z.T                      (numpy turns Z @ Z.T into one SYRK call)
X is loaded from the .npy file that rdmlearn reads (run.sh writes
np.random.default_rng(0).standard_normal((n, v), dtype=np.float32)); loading is not timed.
The BLAS line names the OpenBLAS kernel numpy runs (bench/common/blas_probe.py).
usage: anchor.py X.npy REPS [R_OUT.npy]   prints the load time, one line per repetition and
the kernel.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
from blas_probe import describe  # noqa: E402


def blas_info():
    i = describe()
    return "kernel %s, threads %s (%s)" % (i["kernel"], i["threads"], i["config"])


def main():
    t = time.perf_counter()
    X = np.load(sys.argv[1])
    t = time.perf_counter() - t
    print(f"numpy load of {sys.argv[1]}: {t:.3f} s (not part of the anchor's timing)", flush=True)
    reps = int(sys.argv[2])
    n, v = X.shape
    print(f"numpy {np.__version__} BLAS: {blas_info()}", flush=True)
    for _ in range(reps):
        t = time.perf_counter()
        Z = X - X.mean(1, keepdims=True); Z /= np.linalg.norm(Z, axis=1, keepdims=True)
        R = 1 - Z @ Z.T; t = time.perf_counter() - t
        print(f"numpy float32 z@z.T n={n} v={v}: {t:.3f} s  ({float(n)*(n+1)*v/t/1e9:.1f} GF/s useful: N(N+1)V flops)",
              flush=True)
        del Z
    if len(sys.argv) > 3:
        np.save(sys.argv[3], R)


if __name__ == "__main__":
    main()
