#!/usr/bin/python3
"""The numpy float32 BLAS anchor of bench/rdm/run.sh on a given .npy matrix.

The timed computation is copied verbatim from shared/bench/rdm_numpy.py (method blas32):
    Z = X - X.mean(1, keepdims=True); Z /= np.linalg.norm(Z, axis=1, keepdims=True)
    R = 1 - Z @ Z.T
The only change: X is loaded from the .npy file that rdmlearn reads (the anchor draws the
same matrix with np.random.default_rng(0).standard_normal((n, v), dtype=np.float32), which
is how run.sh writes it). Loading is not timed, as generation is not timed in the anchor.
usage: anchor.py X.npy REPS [R_OUT.npy]   prints the load time, one line per repetition and
the kernel.
"""
import ctypes
import ctypes.util
import sys
import time

import numpy as np


def blas_info():
    for name in ("libblas.so.3", "libopenblas.so.0"):
        try:
            lib = ctypes.CDLL(name)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return "%s threads=%d (%s)" % (lib.openblas_get_corename().decode(),
                                          lib.openblas_get_num_threads(),
                                          lib.openblas_get_config().decode())
        except (OSError, AttributeError):
            continue
    return "unknown BLAS"


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
        print(f"numpy float32 z@z.T n={n} v={v}: {t:.3f} s  ({2.0*n*n*v/t/1e9:.1f} GF/s gemm-equivalent)",
              flush=True)
        del Z
    if len(sys.argv) > 3:
        np.save(sys.argv[3], R)


if __name__ == "__main__":
    main()
