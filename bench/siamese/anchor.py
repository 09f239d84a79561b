#!/usr/bin/python3
"""Siamese bench data: the SAME planted data, pairs and 80/20 pair split that
../shared/bench/siamese_torch.py builds (planted.make(n, d=512), all pairs i < j, numpy
default_rng(0).permutation, first max_pairs, cut at 80%), written for siamese_bench.c.
With RDML_BENCH_H5 set, the data are the demo's (planted_demo.py) instead.
usage: anchor.py DIR N [max_pairs]"""
import os, sys
import numpy as np
sys.path.insert(0, os.environ.get("RDML_SHARED_BENCH", "/work/shared/bench"))
if os.environ.get("RDML_BENCH_H5"):  # the learnable problem: the demo's data (planted_demo.py)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import planted_demo as planted
else:
    import planted

d, n = sys.argv[1], int(sys.argv[2])
maxp = int(sys.argv[3]) if len(sys.argv) > 3 else 0
E, R = planted.make(n=n, d=512)
iu = np.triu_indices(n, 1); P = np.stack(iu, 1); y = R[iu].astype(np.float32)
rng = np.random.default_rng(0); perm = rng.permutation(len(P))
if maxp: perm = perm[:maxp]
cut = int(0.8 * len(perm)); tr, te = perm[:cut], perm[cut:]
os.makedirs(d, exist_ok=True)
np.save(f"{d}/emb.npy", E.astype(np.float32))
np.save(f"{d}/train_ij.npy", P[tr].astype(np.int64)); np.save(f"{d}/train_y.npy", y[tr])
np.save(f"{d}/test_ij.npy", P[te].astype(np.int64)); np.save(f"{d}/test_y.npy", y[te])
print(f"anchor data: {n} images, {len(tr)} train / {len(te)} test pairs (pair split, as siamese_torch.py)")
