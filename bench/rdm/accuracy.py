#!/usr/bin/env python3
"""Accuracy of rdmlearn's RDM arithmetics against float64 (docs/rdm.md "Arithmetic").

For each vertex count V and two kinds of data, writes an N x V float32 matrix, runs
rdm_bench (built by bench/rdm/run.sh) with [rdm] arithmetic = float32 and int16 on 2 ranks,
and compares the correlation RDMs with numpy's float64 1 - Pearson r of the same float32
values: the largest and the rms error over the upper triangle, and how many of the K = 1% most
and least similar pairs (the paper's extremes) differ from float64's.

usage: bench/rdm/accuracy.py BUILD_DIR [N]    (BUILD_DIR holds rdm_bench; N default 500)
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np


def data(kind, n, v, rng):
    if kind == "gaussian":
        return rng.standard_normal((n, v), dtype=np.float32)
    # fMRI-like: shared low-rank signal, noise, per-image offsets and scales, heavy tails
    f = rng.standard_normal((n, 20)) @ rng.standard_normal((20, v)) * 0.3
    x = f + rng.standard_t(4, (n, v))
    x = x * rng.uniform(0.5, 2.0, (n, 1)) + rng.uniform(-3, 3, (n, 1))
    return x.astype(np.float32)


def run(exe, x, arith, tmp):
    np.save(f"{tmp}/x.npy", x)
    env = dict(os.environ, RDM_BENCH_ARITH=arith, OPENBLAS_NUM_THREADS="1")
    cmd = ["mpirun", "-n", "2", "--bind-to", "none"]
    if os.geteuid() == 0:
        cmd.append("--allow-run-as-root")
    subprocess.run(cmd + [exe, f"{tmp}/x.npy", f"{tmp}/r.h5", "1"], env=env, check=True,
                   stdout=subprocess.DEVNULL)
    with h5py.File(f"{tmp}/r.h5", "r") as f:
        return f["/rdm"][...].astype(np.float64)


def extremes(r, iu, k):
    o = np.argsort(r[iu], kind="stable")
    return set(o[:k]), set(o[-k:])


def main():
    exe = os.path.join(sys.argv[1], "rdm_bench")
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 500
    rng = np.random.default_rng(5)
    iu = np.triu_indices(n, 1)
    k = len(iu[0]) // 100
    print(f"N = {n}; errors of 1 - r against float64 over the {len(iu[0])} pairs; "
          f"extremes: of the {k} most and {k} least similar pairs, how many differ from float64's")
    print("| data | V | float32: max | rms | extremes changed | int16: max | rms | extremes changed |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("gaussian", "fmri-like"):
            for v in (300, 2000, 20000, 39548):
                x = data(kind, n, v, rng)
                ref = 1 - np.corrcoef(x.astype(np.float64))
                np.fill_diagonal(ref, 0)
                lo0, hi0 = extremes(ref, iu, k)
                row = [kind, str(v)]
                for arith in ("float32", "int16"):
                    r = run(exe, x, arith, tmp)
                    e = np.abs(r - ref)[iu]
                    lo, hi = extremes(r, iu, k)
                    row += [f"{e.max():.1e}", f"{np.sqrt((e ** 2).mean()):.1e}",
                            f"{len(lo - lo0) + len(hi - hi0)} of {2 * k}"]
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
