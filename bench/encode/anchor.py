#!/usr/bin/python3
"""scikit-learn side of bench/encode/run.sh: RidgeCV(alphas, alpha_per_target=True) on the same
data as rdmlearn's ridge_bench.

  anchor.py prepare DIR N V D NALPHAS  writes DIR/X.npy (N x D float32), DIR/Y.npy (N x V
                                       float32), DIR/alphas.npy (logspace(-1, 5, NALPHAS))
  anchor.py fit DIR                    one timed RidgeCV(...).fit(X, Y); appends the time to
                                       DIR/sklearn_times.txt, writes DIR/best_sklearn.npy
  anchor.py report DIR                 medians, the ratio sklearn / rdmlearn and how many
                                       targets got the same alpha

Data: features with a decaying spectrum (like an embedding), responses a sparse linear
read-out of them plus noise of 10 levels, so the chosen alphas spread over the grid.
sklearn computes in float64 (RidgeCV casts float32 input); rdmlearn in float32.
"""
import os
import sys
import time

import numpy as np


def prepare(d, n, v, dim, na):
    rng = np.random.default_rng(0)
    X = (rng.standard_normal((n, dim)) * (1 + 4 * np.exp(-np.arange(dim) / 32))).astype(np.float32)
    B = rng.standard_normal((32, v)) * 0.1
    Y = X[:, :32] @ B + rng.standard_normal((n, v)) * (1.0 + np.arange(v) % 10)
    np.save(os.path.join(d, "X.npy"), X)
    np.save(os.path.join(d, "Y.npy"), Y.astype(np.float32))
    np.save(os.path.join(d, "alphas.npy"), np.logspace(-1, 5, na))


def fit(d):
    from sklearn.linear_model import RidgeCV
    X, Y = np.load(os.path.join(d, "X.npy")), np.load(os.path.join(d, "Y.npy"))
    alphas = np.load(os.path.join(d, "alphas.npy"))
    t0 = time.perf_counter()
    m = RidgeCV(alphas=alphas, alpha_per_target=True).fit(X, Y)
    t = time.perf_counter() - t0
    with open(os.path.join(d, "sklearn_times.txt"), "a") as f:
        f.write("%.6f\n" % t)
    best = np.searchsorted(alphas, m.alpha_)
    np.save(os.path.join(d, "best_sklearn.npy"), best.astype(np.int64))
    print("sklearn run: %.2f s" % t, flush=True)


def report(d):
    ts = np.loadtxt(os.path.join(d, "sklearn_times.txt"), ndmin=1)
    tr = np.loadtxt(os.path.join(d, "rdml_times.txt"), ndmin=1)
    bs, br = np.load(os.path.join(d, "best_sklearn.npy")), np.load(os.path.join(d, "best_rdml.npy"))
    X, Y = np.load(os.path.join(d, "X.npy"), mmap_mode="r"), np.load(os.path.join(d, "Y.npy"), mmap_mode="r")
    print("size: %d images x %d targets x %d features, %d alphas" % (X.shape[0], Y.shape[1], X.shape[1],
                                                                     len(np.load(os.path.join(d, "alphas.npy")))))
    print("sklearn  RidgeCV(alpha_per_target=True): median %.2f s of %d (%s)" % (np.median(ts), len(ts), " ".join("%.2f" % x for x in ts)))
    print("rdmlearn rdml_ridge (LOO):               median %.2f s of %d (%s)" % (np.median(tr), len(tr), " ".join("%.2f" % x for x in tr)))
    print("ratio sklearn / rdmlearn: %.1fx" % (np.median(ts) / np.median(tr)))
    same = (bs == br).mean()
    near = (np.abs(bs - br) <= 1).mean()
    print("same chosen alpha: %.4f of targets (within one grid step: %.4f)" % (same, near))


if __name__ == "__main__":
    cmd, d = sys.argv[1], sys.argv[2]
    if cmd == "prepare":
        prepare(d, *[int(x) for x in sys.argv[3:7]])
    elif cmd == "fit":
        fit(d)
    else:
        report(d)
