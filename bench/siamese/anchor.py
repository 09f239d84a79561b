#!/usr/bin/python3
"""Siamese bench data for siamese_bench.c: the SAME embeddings, pairs and 80/20 pair split that
torch_anchor.py trains on (bench_data.pairs: planted data of bench/common/planted.py, or the
demo's with RDML_BENCH_H5 set), written as .npy files.
usage: anchor.py DIR N [max_pairs]"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench_data  # noqa: E402

d, n = sys.argv[1], int(sys.argv[2])
maxp = int(sys.argv[3]) if len(sys.argv) > 3 else 0
E, P, y, tr, te, _ = bench_data.pairs(n, maxp)
os.makedirs(d, exist_ok=True)
np.save(f"{d}/emb.npy", E.astype(np.float32))
np.save(f"{d}/train_ij.npy", P[tr].astype(np.int64)); np.save(f"{d}/train_y.npy", y[tr])
np.save(f"{d}/test_ij.npy", P[te].astype(np.int64)); np.save(f"{d}/test_y.npy", y[te])
print(f"anchor data: {n} images, {len(tr)} train / {len(te)} test pairs (pair split, as torch_anchor.py)")
