#!/usr/bin/env python3
"""Speed of rdmlearn's RDM comparisons against scipy, on the same data in the same run.

    /usr/bin/python3 bench/rsa/bench_rsa.py [P] [seed]

P defaults to 48,417,720: the upper triangle of a 9841-image RDM (subject 1 of NSD). The
data are RDM-like float32 values (1 - r, in [0, 2], so ties occur as they do in real RDMs)
for two correlated "subjects", written once as float64 files that bench_rsa.c (built here
from src/core and src/rsa with mpicc) reads. The anchors are scipy.stats.spearmanr and
scipy.stats.kendalltau (tau-b, O(P log P) as well); tau-a is recovered from scipy's tau-b
with the tie counts from numpy.unique, tau_a = tau_b * sqrt((n0 - n1)(n0 - n2)) / n0, so the
two values can be compared. Prints seconds, values and the ratio scipy / rdmlearn (> 1 means
rdmlearn is faster). Not a test: nothing here fails on time. Needs ~6 GB of memory at full P.
"""
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
import scipy.stats as st

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def build(tmp):
    exe = os.path.join(tmp, "bench_rsa")
    srcs = sorted(os.path.join(ROOT, "src", d, f) for d in ("core", "rsa")
                  for f in os.listdir(os.path.join(ROOT, "src", d)) if f.endswith(".c"))
    cmd = ["mpicc", "-std=c11", "-O2", "-D_POSIX_C_SOURCE=200809L", "-D_DEFAULT_SOURCE",
           "-I" + os.path.join(ROOT, "include"), "-I" + os.path.join(ROOT, "src"), *srcs,
           os.path.join(ROOT, "bench", "rsa", "bench_rsa.c"), "-o", exe, "-lm"]
    subprocess.run(cmd, check=True)
    return exe


def ties(x):
    _, c = np.unique(x, return_counts=True)
    c = c.astype(np.float64)
    return float(np.sum(c * (c - 1) / 2))


def main():
    p = int(float(sys.argv[1])) if len(sys.argv) > 1 else 9841 * 9840 // 2
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 2023
    rng = np.random.default_rng(seed)
    shared = rng.standard_normal(p, dtype=np.float32)
    a = np.clip(1.0 + 0.3 * (shared + rng.standard_normal(p, dtype=np.float32)), 0, 2).astype(np.float32)
    b = np.clip(1.0 + 0.3 * (shared + 1.5 * rng.standard_normal(p, dtype=np.float32)), 0, 2).astype(np.float32)
    del shared
    with tempfile.TemporaryDirectory() as tmp:
        exe = build(tmp)
        fa, fb = os.path.join(tmp, "a.f64"), os.path.join(tmp, "b.f64")
        a.astype(np.float64).tofile(fa)
        b.astype(np.float64).tofile(fb)
        out = subprocess.run([exe, fa, fb, str(p)], check=True, capture_output=True, text=True)
    ours = {}
    for line in out.stdout.splitlines():
        name, sec, val = line.split()
        ours[name] = (float(sec), float(val))

    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    t0 = time.perf_counter()
    rho = float(st.spearmanr(a64, b64).correlation)
    t_sp = time.perf_counter() - t0
    t0 = time.perf_counter()
    with warnings.catch_warnings():  # scipy's p-value variance overflows at this P; unused
        warnings.simplefilter("ignore", RuntimeWarning)
        tau_b = float(st.kendalltau(a64, b64).correlation)
    t_kt = time.perf_counter() - t0
    n0 = p * (p - 1) / 2
    tau_a = tau_b * np.sqrt((n0 - ties(a64)) * (n0 - ties(b64))) / n0

    n_img = (1 + (1 + 8 * p) ** 0.5) / 2
    print(f"P = {p} pairs (the upper triangle of a {n_img:.0f}-image RDM), seed {seed}")
    print(f"{'method':<16}{'rdmlearn s':>12}{'scipy s':>10}{'ratio':>8}   values (rdmlearn / scipy)")
    for name, t_ref, ref in (("spearman", t_sp, rho), ("kendall_tau_a", t_kt, tau_a)):
        t, v = ours[name]
        print(f"{name:<16}{t:>12.2f}{t_ref:>10.2f}{t_ref / t:>8.2f}   {v:.12f} / {ref:.12f}"
              f"  (diff {abs(v - ref):.1e})")
    t, v = ours["pearson"]
    print(f"{'pearson':<16}{t:>12.2f}{'':>10}{'':>8}   {v:.12f} / "
          f"{float(st.pearsonr(a64, b64)[0]):.12f}")


if __name__ == "__main__":
    main()
